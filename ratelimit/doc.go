// Package ratelimit provides per-client token buckets for the public API:
// a client (an IPv4 address, or an IPv6 prefix) may make Burst requests at
// once and Rate per second in the long run; past that, Allow says how long
// until its next token.
//
// The buckets live in a fixed-size, sharded, set-associative table, so a
// flood of spoofed or rotating source addresses cannot grow memory: a new
// client takes an empty slot of its set, else the slot whose bucket is the
// fullest (a full bucket is the same as no entry, so reusing it loses
// nothing). Only when every slot of a set still holds a client that is
// draining its bucket is one of them forgotten; that client's worst case is
// one fresh burst. The table is allocated once by New; Allow allocates
// nothing.
//
// It owns no clock, socket or request: the caller passes the client address
// and the time, so tests run on explicit times. Which address is the client
// (trusted proxies, PROXY protocol) is the caller's decision.
package ratelimit
