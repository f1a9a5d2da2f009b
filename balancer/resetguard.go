package balancer

import (
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// Rapid reset (CVE-2023-44487): a client opens streams and resets them at
// once, so each costs the server a handler start while the client is never
// held back by max_concurrent_streams. x/net/http2 bounds only the handlers
// queued behind that limit (4x), and gives no hook for RST_STREAM frames a
// client sends, so resetGuard counts them on the way in: it follows the
// frame headers in the byte stream the server reads (the 24-byte preface,
// then 9-byte headers and their payloads) without parsing or copying
// anything else, and fails the read once a client has reset more than max
// streams within window. x/net then closes the connection.

// errRapidReset fails the connection of a client over the reset bound.
var errRapidReset = errors.New("balancer: http2 client reset too many streams")

// http2PrefaceLen is the length of the client connection preface (RFC 9113 3.4).
const http2PrefaceLen = len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// frameRSTStream is the RST_STREAM frame type (RFC 9113 6.4).
const frameRSTStream = 0x3

// resetGuard is a server-side h2 connection that counts the RST_STREAM
// frames the client sends. Only the serving goroutine reads it (x/net's
// frame reader), so its state needs no lock.
type resetGuard struct {
	net.Conn
	max    int
	window time.Duration
	now    func() time.Time

	skip    int     // bytes of preface or payload still to pass over
	started bool    // the preface has been set to be skipped
	hdr     [9]byte // a frame header being read
	have    int     // bytes of hdr read so far

	resets  int       // in the window starting at since
	since   time.Time //
	tripped bool      // the bound was passed; the connection is failing
}

// Read reads from the connection and counts the resets in what was read.
func (g *resetGuard) Read(p []byte) (int, error) {
	if g.tripped {
		return 0, errRapidReset
	}
	n, err := g.Conn.Read(p)
	if n > 0 && g.scan(p[:n]) {
		g.tripped = true
		// What was read may already hold the next streams: none of it
		// is passed on.
		return 0, errRapidReset
	}
	return n, err
}

// scan follows the frame boundaries through b and reports whether the
// reset bound was passed.
func (g *resetGuard) scan(b []byte) bool {
	if !g.started {
		g.started = true
		g.skip = http2PrefaceLen
	}
	for len(b) > 0 {
		if g.skip > 0 {
			n := min(g.skip, len(b))
			g.skip -= n
			b = b[n:]
			continue
		}
		n := copy(g.hdr[g.have:], b)
		g.have += n
		b = b[n:]
		if g.have < len(g.hdr) {
			return false
		}
		g.have = 0
		g.skip = int(g.hdr[0])<<16 | int(g.hdr[1])<<8 | int(g.hdr[2])
		if g.hdr[3] == frameRSTStream && g.reset() {
			return true
		}
	}
	return false
}

// reset counts one RST_STREAM in fixed windows, and reports whether the
// client is over the bound.
func (g *resetGuard) reset() bool {
	now := g.now()
	if g.resets == 0 || now.Sub(g.since) >= g.window {
		g.resets, g.since = 0, now
	}
	g.resets++
	return g.resets > g.max
}

// ConnectionState lets x/net see the TLS state of the connection under the
// guard (it refuses h2 below TLS 1.2 and with weak ciphers).
func (g *resetGuard) ConnectionState() tls.ConnectionState {
	if tc, ok := g.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}
