package balancer

import (
	"golang.org/x/sys/unix"
)

// Writing a request to a node and then waiting for its answer costs Go a
// futile read: conn.Read reads first, finds nothing (EAGAIN) and only then
// parks on the netpoller, one wasted system call per proxied request. Skipping
// that read is only safe when the poller cannot have reported the answer
// before the wait began: internal/poll starts every read, RawConn.Read
// included, by resetting the descriptor's readiness (runtime_pollReset), so a
// readiness reported earlier is forgotten and, the netpoller being
// edge-triggered, never reported again (scripts/bench/readwait shows such
// waits hanging). So the last write of a request happens inside
// RawConn.Read's callback, after that reset: the answer cannot arrive before
// the request is out, its bytes raise an edge the wait will see, and the
// goroutine parks at once. The answer is then read the usual way; its first
// read finds bytes.

// writeThenPark writes p (the rest of a request whose answer is awaited) on
// the socket and returns once the socket is readable (or the wait failed:
// a past deadline from the watchdog, a closed connection; the read that
// follows reports it). It falls back to the ordinary Write for what the
// socket does not take at once. The callback is built once per connection
// (newNodeConn), so this allocates nothing.
func (c *nodeConn) writeThenPark(p []byte) (int, error) {
	c.wp = writePark{pending: p}
	_ = c.raw.Read(c.parkCB)
	n, err := c.wp.n, c.wp.err
	rest := c.wp.pending[n:]
	c.wp = writePark{}
	if err != nil {
		c.writeFailed = true
		return n, err
	}
	if len(rest) > 0 { // the socket buffer was full: the usual way
		m, err := c.write(rest)
		if err != nil {
			c.writeFailed = true
		}
		return n + m, err
	}
	return n, nil
}

// writePark is writeThenPark's state, read by the callback.
type writePark struct {
	pending []byte
	n       int
	err     error
	written bool // the callback ran once: the next call follows a wake-up
}

// parkFD is the RawConn.Read callback: the first call writes and asks to
// wait (false) when everything went out; the call after the wake-up stops.
func (c *nodeConn) parkFD(fd uintptr) bool {
	if c.wp.written {
		return true
	}
	c.wp.written = true
	for c.wp.n < len(c.wp.pending) {
		m, err := rawWrite(fd, c.wp.pending[c.wp.n:]) // rawio.go
		switch {
		case err == unix.EAGAIN:
			return true // the rest goes the usual way, which waits for room
		case err != 0:
			c.wp.err = err
			return true
		}
		c.wp.n += m
	}
	return false
}
