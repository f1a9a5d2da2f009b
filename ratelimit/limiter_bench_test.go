package ratelimit_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/ratelimit"
)

// The cost per request, at the default table size (100000 clients,
// 2.4 MB): a client already in the table, a new client taking a free or
// refilled slot, and a new client in a table full of draining buckets
// (every call evicts one: a spoofed-source flood).
func BenchmarkAllow(b *testing.B) {
	newLimiter := func(b *testing.B, maxEntries int) *ratelimit.Limiter {
		l, err := ratelimit.New(ratelimit.Config{Rate: 1e6, Burst: 1000, MaxEntries: maxEntries}, t0)
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	addr := func(i int) netip.Addr {
		return netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	}
	b.Run("known client", func(b *testing.B) {
		l := newLimiter(b, 0)
		a := netip.MustParseAddr("192.0.2.1")
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			l.Allow(a, now)
		}
	})
	b.Run("known client ipv6", func(b *testing.B) {
		l := newLimiter(b, 0)
		a := netip.MustParseAddr("2001:db8:1:2::1")
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			l.Allow(a, now)
		}
	})
	b.Run("new client", func(b *testing.B) {
		// Every client is new, and the clients before it have their full
		// bucket again (the steady state of many one-off visitors): the
		// slot taken is an empty or a reusable one, never an eviction.
		l := newLimiter(b, 0)
		i := 0
		now := t0
		for ; i < 1_000_000; i++ {
			now = now.Add(time.Millisecond)
			l.Allow(addr(i), now) // every page of the table touched
		}
		b.ReportAllocs()
		for b.Loop() {
			i++
			now = now.Add(time.Millisecond)
			l.Allow(addr(i), now)
		}
	})
	b.Run("full table", func(b *testing.B) {
		// A flood: every client is new and every slot holds a bucket still
		// draining, so each call evicts one.
		l := newLimiter(b, 0)
		for i := range 1_000_000 {
			l.Allow(addr(i), t0)
		}
		i := 1_000_000
		b.ReportAllocs()
		for b.Loop() {
			i++
			l.Allow(addr(i), t0)
		}
	})
	b.Run("known client parallel", func(b *testing.B) {
		l := newLimiter(b, 0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			a := netip.AddrFrom4([4]byte{192, 0, 2, byte(time.Now().UnixNano())})
			for pb.Next() {
				l.Allow(a, t0)
			}
		})
	})
}
