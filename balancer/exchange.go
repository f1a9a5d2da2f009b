package balancer

import (
	"bytes"
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// maxResponseBody bounds what a node may answer; a larger answer is a 502.
const maxResponseBody = 64 << 20

// Errors exchange returns besides those of the connection; classify turns
// each into a cause.
var (
	// errQueueFull: no connection to the node became free within
	// timeouts.queue (or what was left of the request's time).
	errQueueFull = errors.New("every connection to the node stayed busy for timeouts.queue")
	// errInterim: the final answer was a 1xx (fasthttp skips 100, 102 and
	// 103, so in practice an unrequested 101 Switching Protocols).
	errInterim = errors.New("the node answered with an interim 1xx status as its final answer")
	// errStalePool: every pooled connection the node left had unread bytes.
	errStalePool = errors.New("every idle connection to the node had unread bytes")
	// errMalformed: an answer fasthttp reads but a client must not get: a
	// version other than HTTP/1.0 or 1.1, a status outside 100-599, a field
	// name that is not a token.
	errMalformed = errors.New("the node's answer is not well-formed HTTP/1.x (version, status or field name)")
)

// requestError is a request that could not be written as it is, with the
// connection to the node intact: the client's doing, not the node's.
type requestError struct{ err error }

func (e *requestError) Error() string { return "request cannot be sent: " + e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// exchange sends req to u over one of u's pooled connections and reads the
// answer into resp, all before deadline (unix ns). It is HostClient.Do without
// Do's per-request clock reads and deadlines: the connection's limit is one
// store the server's watchdog enforces. The pool, dialing, the wait queue and
// idle cleanup stay the HostClient's; whether a connection may be reused is
// decided here.
func (u *upstream) exchange(req *fasthttp.Request, resp *fasthttp.Response, deadline, now int64) error {
	hc := u.hc
	cc, err := hc.AcquireConn(max(time.Duration(deadline-now), time.Millisecond), false)
	for n := 0; err == nil && isStale(cc.Conn()); n++ {
		hc.CloseConn(cc)
		if n >= hc.MaxConns {
			return errStalePool
		}
		cc, err = hc.AcquireConn(max(time.Duration(deadline-now), time.Millisecond), false)
	}
	if err != nil {
		if errors.Is(err, fasthttp.ErrNoFreeConns) || errors.Is(err, fasthttp.ErrTimeout) {
			// Dials are bounded by timeouts.connect and fail as dialError;
			// these two only come from waiting in the queue.
			return errQueueFull
		}
		return err
	}
	c := cc.Conn()
	nc, _ := c.(*nodeConn)
	if nc != nil && nc.w != nil {
		nc.armAt(deadline)
	} else if err := c.SetDeadline(time.Unix(0, deadline)); err != nil {
		hc.CloseConn(cc)
		return err
	}
	bw := hc.AcquireWriter(c)
	err = req.Write(bw)
	if err == nil {
		if nc != nil {
			nc.awaitAnswer = true // the flush is the request's last write (writepark.go)
		}
		err = bw.Flush()
		if nc != nil {
			nc.awaitAnswer = false
		}
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		if nc != nil && !nc.writeFailed {
			err = &requestError{err: err}
		}
		disarm(nc)
		hc.CloseConn(cc)
		return err
	}
	// A HEAD answer's length cannot be checked: body bytes a node sends
	// anyway may arrive after the headers, so the connection is not reused.
	resp.SkipBody = req.Header.IsHead()
	br := hc.AcquireReader(c)
	// fasthttp reads status 000 as 200; the bytes that came with the first
	// one show it (ReadLimitBody waits for them anyway).
	zero := false
	if p, perr := br.Peek(1); perr == nil && len(p) > 0 {
		p, _ = br.Peek(br.Buffered())
		zero = statusZero(p)
	}
	err = resp.ReadLimitBody(br, maxResponseBody)
	// Bytes already read past the answer belong to no request.
	leftover := br.Buffered() > 0
	hc.ReleaseReader(br)
	// Before the connection goes back: the next exchange on it arms it anew.
	disarm(nc)
	if err == nil {
		err = checkAnswer(&resp.Header, zero)
	}
	if err != nil || leftover || resp.SkipBody || resp.ConnectionClose() || req.ConnectionClose() {
		hc.CloseConn(cc)
		return err
	}
	hc.ReleaseConn(cc)
	return nil
}

// checkAnswer refuses a final answer fasthttp has read but a client must
// not get. zero tells a status 000, which fasthttp reports as 200.
func checkAnswer(h *fasthttp.ResponseHeader, zero bool) error {
	switch code := h.StatusCode(); {
	case zero || code > 599:
		return errMalformed
	case code < 200:
		return errInterim
	}
	if p := h.Protocol(); !bytes.Equal(p, strHTTP11) && !bytes.Equal(p, strHTTP10) {
		return errMalformed
	}
	if !validAnswerNames(h) {
		return errMalformed
	}
	return nil
}

var (
	strHTTP11 = []byte("HTTP/1.1")
	strHTTP10 = []byte("HTTP/1.0")
)

// statusZero reports whether the status line at the start of p (after the
// empty lines fasthttp skips) has the code 000.
func statusZero(p []byte) bool {
	p = bytes.TrimLeft(p, "\r\n")
	_, rest, ok := bytes.Cut(p, space)
	if !ok {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(rest, " "), zeroCode)
}

var (
	space    = []byte(" ")
	zeroCode = []byte("000")
)

// validAnswerNames reports whether every field name of an answer is a
// token. fasthttp lets a space through ("X A: b"), which the client or a
// later hop may split differently (RFC 9112 section 5.1); like HAProxy,
// such an answer is not forwarded. Trailer fields are named in the Trailer
// list fasthttp keeps (it lists the received ones too), and reach the
// client as header fields once hopHeaders drops Trailer.
func validAnswerNames(h *fasthttp.ResponseHeader) bool {
	for k, v := range h.All() {
		if !isToken(k) || string(k) == fasthttp.HeaderTrailer && !tokenList(v) {
			return false
		}
	}
	return true
}

var comma = []byte(",")

// tokenList reports whether a comma-separated list holds only tokens.
func tokenList(v []byte) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, comma)
		if item = bytes.TrimSpace(item); len(item) > 0 && !isToken(item) {
			return false
		}
	}
	return true
}

func disarm(nc *nodeConn) {
	if nc != nil {
		nc.disarm()
	}
}

func isStale(c net.Conn) bool {
	nc, ok := c.(*nodeConn)
	return ok && nc.stale()
}
