// Command readwait tests the idea of issue 16 to skip the read that returns
// EAGAIN before a goroutine parks on a socket: after a read that drained the
// socket, wait for readiness first through syscall.RawConn.Read with a
// callback that declines its first call, and read only when the netpoller
// has reported new bytes.
//
// It runs pairs of goroutines over loopback TCP that ping-pong a short
// message; each client reads the answer either the usual way (conn.Read) or
// with the skip. A read that has not returned within -stall (the answer is
// sent at once, so it is in the socket within microseconds) counts as a lost
// wake-up; the client then reads normally and goes on. The usual way never
// stalls. The skip does: RawConn.Read starts with internal/poll's
// prepareRead, which calls runtime_pollReset and forgets a readiness the
// netpoller recorded before the call (pd.rg = pdNil); when the answer's edge
// was already consumed by another P's netpoll, no new edge comes, and the
// goroutine parks on bytes that are already there (docs/benchmarks.md).
//
//	readwait -mode skip -pairs 32 -n 20000
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	mode := flag.String("mode", "skip", "skip: wait through RawConn.Read first; read: conn.Read")
	pairs := flag.Int("pairs", 32, "connections ping-ponging at once")
	n := flag.Int("n", 20000, "round trips per connection")
	stall := flag.Duration("stall", 500*time.Millisecond, "a read that takes longer lost its wake-up")
	flag.Parse()
	if *mode != "skip" && *mode != "read" {
		fmt.Fprintln(os.Stderr, "readwait: -mode is skip or read")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "readwait:", err)
		os.Exit(1)
	}
	defer ln.Close()
	go echo(ln)
	var stalls, trips atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *pairs {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fmt.Fprintln(os.Stderr, "readwait:", err)
			os.Exit(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			s, l := client(c.(*net.TCPConn), *mode == "skip", *n, *stall)
			stalls.Add(s)
			trips.Add(l)
		}()
	}
	wg.Wait()
	fmt.Printf("mode %s: %d round trips in %v, %d lost wake-ups (reads stalled over %v)\n",
		*mode, trips.Load(), time.Since(start).Round(time.Millisecond), stalls.Load(), *stall)
	if stalls.Load() > 0 {
		os.Exit(1)
	}
}

// echo answers every message at once.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

var msg = []byte("ping-0123456789abcdef")

// client ping-pongs n times and returns the stalled reads and round trips.
func client(c *net.TCPConn, skip bool, n int, stall time.Duration) (stalls, trips int64) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0
	}
	buf := make([]byte, 4096)
	got := 0
	var rerr error
	for range n {
		if _, err := c.Write(msg); err != nil {
			return stalls, trips
		}
		for have := 0; have < len(msg); {
			_ = c.SetReadDeadline(time.Now().Add(stall))
			if skip {
				// Every answer fits buf, so the previous read always
				// drained the socket: decline the first call.
				first := true
				err = raw.Read(func(fd uintptr) bool {
					if first {
						first = false
						return false
					}
					got, rerr = unix.Read(int(fd), buf)
					return !errors.Is(rerr, syscall.EAGAIN)
				})
			} else {
				got, err = c.Read(buf)
				rerr = nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				stalls++
				_ = c.SetReadDeadline(time.Now().Add(10 * stall))
				got, err = c.Read(buf) // the bytes were there all along
			}
			if err != nil || rerr != nil || got <= 0 {
				return stalls, trips
			}
			have += got
		}
		trips++
	}
	return stalls, trips
}
