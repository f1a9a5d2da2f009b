package balancer

import (
	"net"
	"syscall"
)

// nodeConn is one connection to a node. Besides the watchdog's timeouts it
// knows two things exchange needs: whether a write to the node failed (so a
// failed request write is told apart from a request that cannot be written,
// the client's fault), and whether the connection became readable while it
// sat idle in the pool (stale).
type nodeConn struct {
	watchedConn
	raw         syscall.RawConn // nil when the connection is not a socket
	peek        func(fd uintptr)
	peekByte    byte
	readable    bool
	writeFailed bool

	// awaitAnswer: the next Write is a request's last and the answer is
	// read next, so Write parks after it without a futile read
	// (writeThenPark); exchange sets it around its flush.
	awaitAnswer bool
	parkCB      func(fd uintptr) bool
	wp          writePark
}

// newNodeConn wraps c; the peek callback is built once here so stale does
// not allocate.
func newNodeConn(c net.Conn) *nodeConn {
	nc := &nodeConn{watchedConn: watchedConn{Conn: c, rs: newRawSock(c)}}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			nc.raw = raw
			nc.peek = nc.peekFD
			// Writing inside RawConn.Read (writepark.go) only on plain
			// TCP: a wrapping conn (a test's dial hook that counts the
			// stale checks through RawConn.Control) sees its own Write.
			if _, plain := c.(*net.TCPConn); plain {
				nc.parkCB = nc.parkFD
			}
		}
	}
	return nc
}

// stale reports whether an idle connection must not carry another request:
// the node sent bytes nobody asked for (the rest of an answer whose length
// lied, a late second answer) or closed or reset it. Such bytes would
// otherwise be read as the answer to the next request, usually another
// client's. Connections that are not sockets (in-memory pipes in tests) are
// never stale. The look is one non-blocking recv(MSG_PEEK) (staleness.go).
func (c *nodeConn) stale() bool {
	if c.raw == nil {
		return false
	}
	if err := c.raw.Control(c.peek); err != nil {
		return true
	}
	return c.readable
}

// Write remembers that the node side failed, for exchange's classification.
func (c *nodeConn) Write(p []byte) (int, error) {
	if c.awaitAnswer && c.parkCB != nil {
		c.awaitAnswer = false
		return c.writeThenPark(p)
	}
	n, err := c.write(p)
	if err != nil {
		c.writeFailed = true
	}
	return n, err
}

// Close also forgets the connection in the watchdog, when it was watched.
func (c *nodeConn) Close() error {
	if c.w != nil {
		c.w.forget(&c.watchedConn)
	}
	return c.Conn.Close()
}
