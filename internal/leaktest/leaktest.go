// Package leaktest holds the goleak options shared by the project's tests:
// fasthttp starts package-level janitor goroutines (server date, worker-pool
// and client cleaners, the TCP dialer's address cache) that sleep in loops
// and end on their own; they are not leaks of ours.
package leaktest

import "go.uber.org/goleak"

// Options ignores fasthttp's own background goroutines.
func Options() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).workerFunc"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
		// certmagic's process-wide ACME rate limiter per CA and account, and
		// the refresher of a file-storage lock, which ends once the lock
		// file is gone (at most 5s later); neither has a stop.
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"),
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	}
}
