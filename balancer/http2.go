//lint:file-ignore SA1019 x/net/http2.Server is deprecated for net/http, which has no way to serve one connection fasthttp hands over (ServeConn); issue 14 names x/net/http2.

package balancer

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/net/http2"
)

// HTTP/2 to clients (issue 14). A TLS connection that negotiated "h2" by
// ALPN is handed by fasthttp (Server.NextProto, after the handshake) to
// serveH2, which runs golang.org/x/net/http2 on it. Each stream becomes a
// fasthttp.RequestCtx, pooled, holding the TLS connection the way fasthttp
// would, and goes through Server.handle: the one code path for routing,
// guards, forwarding headers, client address, rate limits, retries, edge
// CSS, compression and the access log, and on to the nodes over the same
// HTTP/1.1 pools. The answer in ctx.Response is then written to the stream
// without the connection-specific fields HTTP/2 forbids (RFC 9113 8.2.2).
//
// x/net/http2 runs one goroutine per stream; the adapter adds none.
// Timeouts: the watchdog's per-request phases (timeouts.go) cannot follow
// concurrent streams, so an h2 connection leaves it and x/net keeps them:
// timeouts.client_read per stream (reading its headers and body),
// timeouts.idle for a connection without streams, timeouts.request for a
// write that makes no progress.

// h2Front holds the x/net servers: one per idle timeout (x/net reads it
// from the server, not per connection), and per runtime the per-listener
// settings every connection is served with.
type h2Front struct {
	cur atomic.Pointer[h2Settings]

	mu      sync.Mutex
	engines map[time.Duration]*h2Engine
	stopped bool

	// Counters for the status page and metrics.
	conns       atomic.Int64  // h2 connections open now
	rapidResets atomic.Uint64 // connections closed for resetting too many streams
	reqH1       atomic.Uint64 // requests served over HTTP/1.x
	reqH2       atomic.Uint64 // requests served over HTTP/2
}

// h2Engine is one x/net server; hs exists to shut it down gracefully
// (GOAWAY to every connection, then each closes when its streams are done).
type h2Engine struct {
	hs  *http.Server
	srv *http2.Server
}

// h2Settings are the per-listener settings of one runtime; a nil entry is a
// listener without h2.
type h2Settings struct {
	rt        *Runtime
	listeners []*h2Listener
}

type h2Listener struct {
	base      *http.Server // per-stream limits x/net reads from a BaseConfig
	engine    *h2Engine
	maxResets int
	window    time.Duration
}

// settings returns rt's listener index settings, built once per runtime.
func (f *h2Front) settings(rt *Runtime, index int, logger *zap.Logger) *h2Listener {
	cur := f.cur.Load()
	if cur == nil || cur.rt != rt {
		cur = f.build(rt, logger)
		f.cur.Store(cur)
	}
	if index >= len(cur.listeners) {
		return nil
	}
	return cur.listeners[index]
}

func (f *h2Front) build(rt *Runtime, logger *zap.Logger) *h2Settings {
	set := &h2Settings{rt: rt, listeners: make([]*h2Listener, len(rt.cfg.Listen))}
	errLog := log.New(h2Log{logger}, "", 0)
	for i, l := range rt.cfg.Listen {
		h := l.HTTP2
		if !h.On() {
			continue
		}
		set.listeners[i] = &h2Listener{
			base: &http.Server{
				// Per stream: its headers and body within client_read.
				ReadTimeout: rt.clientRead,
				// SETTINGS_MAX_HEADER_LIST_SIZE; x/net answers 431 over it.
				MaxHeaderBytes: rt.cfg.Limits.MaxHeaderBytes,
				ErrorLog:       errLog,
				HTTP2: &http.HTTP2Config{
					MaxConcurrentStreams:          h.MaxConcurrentStreams,
					MaxReceiveBufferPerStream:     h.StreamWindowBytes,
					MaxReceiveBufferPerConnection: h.ConnWindowBytes,
					// Like an HTTP/1.1 response write: timeouts.request.
					WriteByteTimeout: rt.timeout,
					// The RFC's initial 16 KiB rather than x/net's 1 MiB:
					// no mosparo request needs larger frames, a client
					// sending one gets FRAME_SIZE_ERROR (h2spec 4.2/3),
					// and a peer that sizes its DATA by the advertised
					// value stays within the stream window (h2spec 4.2/1).
					MaxReadFrameSize: h2MaxFrameSize,
				},
			},
			engine:    f.engine(rt.idle, errLog),
			maxResets: h.MaxResets,
			window:    h.ResetWindow.D(),
		}
	}
	return set
}

// engine returns the x/net server for connections idle for at most idle.
func (f *h2Front) engine(idle time.Duration, errLog *log.Logger) *h2Engine {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.engines[idle]; e != nil {
		return e
	}
	e := &h2Engine{hs: &http.Server{ErrorLog: errLog}, srv: &http2.Server{IdleTimeout: idle}}
	// Registers the graceful shutdown of e.srv's connections with e.hs; it
	// cannot fail for a server without TLS settings of its own.
	if err := http2.ConfigureServer(e.hs, e.srv); err != nil {
		panic("balancer: http2.ConfigureServer: " + err.Error())
	}
	if f.engines == nil {
		f.engines = make(map[time.Duration]*h2Engine)
	}
	f.engines[idle] = e
	if f.stopped {
		go e.hs.Shutdown(context.Background())
	}
	return e
}

// shutdown sends GOAWAY on every h2 connection: each closes once its
// streams have finished, so fasthttp's Shutdown, which waits for every
// connection it handed over, can return within shutdown.grace.
func (f *h2Front) shutdown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	for _, e := range f.engines {
		// Never served a listener: Shutdown only runs the GOAWAY hooks
		// and returns.
		_ = e.hs.Shutdown(context.Background())
	}
}

// serveH2 serves a TLS connection that negotiated h2; fasthttp calls it
// after the handshake and closes c when it returns.
func (s *Server) serveH2(c net.Conn) error {
	rt := s.rt.Load()
	index := 0
	wc := netClientConn(c)
	if wc != nil {
		index = wc.ln.index
		wc.leaveWatchdog()
	}
	l := s.h2.settings(rt, index, s.logger)
	if l == nil {
		// Not offered on this listener (a reload turned it off after
		// the handshake): nothing this client may be answered with.
		return nil
	}
	s.h2.conns.Add(1)
	defer s.h2.conns.Add(-1)
	g := &resetGuard{Conn: c, max: l.maxResets, window: l.window, now: s.now}
	l.engine.srv.ServeConn(g, &http2.ServeConnOpts{
		BaseConfig: l.base,
		Handler:    &h2Handler{srv: s, conn: c},
	})
	if g.tripped {
		s.h2.rapidResets.Add(1)
		if ce := s.logger.Check(zap.InfoLevel, "http2 connection closed: rapid reset"); ce != nil {
			ce.Write(zap.Stringer("client", c.RemoteAddr()), zap.Int("max_resets", l.maxResets), zap.Duration("window", l.window))
		}
	}
	return nil
}

// netClientConn finds the watched connection under a (TLS) connection.
func netClientConn(c net.Conn) *watchedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	wc, _ := c.(*watchedConn)
	return wc
}

// h2Handler serves the streams of one connection through Server.handle.
type h2Handler struct {
	srv  *Server
	conn net.Conn // the TLS connection: ctx.IsTLS and clientConn read it
}

// h2MaxFrameSize is SETTINGS_MAX_FRAME_SIZE, the largest frame a client
// may send (RFC 9113 6.5.2's initial value; HAProxy and nginx advertise it
// too).
const h2MaxFrameSize = 16 << 10

// h2Stream is a pooled request context with scratch space for the body.
type h2Stream struct {
	ctx fasthttp.RequestCtx
	buf [4 << 10]byte
}

var h2StreamPool = sync.Pool{New: func() any { return new(h2Stream) }}

// ServeHTTP serves one stream: x/net has checked the HTTP/2 rules
// (pseudo-headers, connection-specific fields, header list size, content
// length against DATA), fill adds the LB's, handle does the rest.
func (h *h2Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := h2StreamPool.Get().(*h2Stream)
	ctx := &st.ctx
	ctx.Init2(h.conn, fasthttpLogger{h.srv.logger}, false)
	if h.fill(ctx, r, st.buf[:]) {
		h.srv.handle(ctx)
	} else {
		h.srv.h2Refused(ctx)
	}
	writeH2(w, r.Method == http.MethodHead, &ctx.Response)
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Init2(nil, nil, false) // keep no connection alive in the pool
	h2StreamPool.Put(st)
}

// fill copies the stream's request into ctx.Request as the HTTP/1.1
// request handle expects, reading the body within its class's limit. It
// reports false after writing the error answer.
func (h *h2Handler) fill(ctx *fasthttp.RequestCtx, r *http.Request, buf []byte) bool {
	req := &ctx.Request
	if r.Method == http.MethodConnect {
		// CONNECT, extended (RFC 8441) or not, opens a tunnel: mosparo
		// has none, and no node may see one. HTTP/1.1's CONNECT target
		// fails checkRequest the same way.
		return badRequest(ctx)
	}
	req.Header.SetMethod(r.Method)
	req.Header.SetRequestURI(r.RequestURI) // :path
	req.Header.SetHost(r.Host)             // :authority, else Host
	for k, vs := range r.Header {
		switch k {
		case "Host", "Content-Length":
			continue // r.Host above; the body's length below
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.ContentLength >= 0 {
		req.Header.SetContentLength(int(r.ContentLength))
	}
	limit := h.srv.headerReceived(&req.Header).MaxRequestBodySize
	if r.ContentLength > int64(limit) {
		writeError(ctx, Admin, fasthttp.StatusRequestEntityTooLarge, bodyTooLarge)
		return false
	}
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if len(req.Body())+n > limit {
				writeError(ctx, Admin, fasthttp.StatusRequestEntityTooLarge, bodyTooLarge)
				return false
			}
			req.AppendBody(buf[:n])
		}
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			// Reset by the client, or client_read passed: the answer
			// goes nowhere, the status is for the access log.
			writeError(ctx, Admin, fasthttp.StatusRequestTimeout, bodyReqTimeout)
			return false
		}
	}
}

// h2Refused accounts for a stream fill refused before handle saw it.
func (s *Server) h2Refused(ctx *fasthttp.RequestCtx) {
	if rt := s.rt.Load(); rt.noNode != nil {
		rt.noNode.Observe(Admin, ctx.Response.StatusCode(), 0, 0)
	}
}

// writeH2 writes the answer handle left in resp to the stream. Fields that
// are about one HTTP/1.1 connection are dropped: HTTP/2 forbids them (RFC
// 9113 8.2.2), and handle may have set Connection: close for its own
// reasons (a bad request), which in h2 means nothing.
func writeH2(w http.ResponseWriter, head bool, resp *fasthttp.Response) {
	hdr := w.Header()
	status := resp.StatusCode()
	if status < 200 || status > 999 {
		// A final answer is due; handle never leaves an interim one.
		status = fasthttp.StatusBadGateway
	}
	body := resp.Body()
	withBody := !head && bodyAllowed(status)
	// One backing array for every value of the answer: each field's
	// []string is a one-element window of it (capacity one, so a second
	// value of the same field appends elsewhere), not an allocation each.
	n := resp.Header.Len() + 1
	vals := make([]string, 0, n)
	for k, v := range resp.Header.All() {
		if h2Forbidden(k) {
			continue
		}
		if !head && string(k) == fasthttp.HeaderContentLength {
			continue // set from the body below
		}
		key := h2FieldName(k)
		if old := hdr[key]; len(old) > 0 {
			hdr[key] = append(old, string(v))
			continue
		}
		vals = append(vals, string(v))
		hdr[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if withBody {
		vals = append(vals, strconv.Itoa(len(body)))
		hdr[fasthttp.HeaderContentLength] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	w.WriteHeader(status)
	if withBody && len(body) > 0 {
		_, _ = w.Write(body)
	}
}

// h2FieldName is k as a string, without an allocation for the fields
// mosparo and the LB send on most answers.
func h2FieldName(k []byte) string {
	switch string(k) {
	case fasthttp.HeaderContentType:
		return fasthttp.HeaderContentType
	case fasthttp.HeaderContentLength:
		return fasthttp.HeaderContentLength
	case fasthttp.HeaderContentEncoding:
		return fasthttp.HeaderContentEncoding
	case fasthttp.HeaderCacheControl:
		return fasthttp.HeaderCacheControl
	case fasthttp.HeaderDate:
		return fasthttp.HeaderDate
	case fasthttp.HeaderServer:
		return fasthttp.HeaderServer
	case fasthttp.HeaderVary:
		return fasthttp.HeaderVary
	case fasthttp.HeaderETag:
		return fasthttp.HeaderETag
	case fasthttp.HeaderLastModified:
		return fasthttp.HeaderLastModified
	case fasthttp.HeaderExpires:
		return fasthttp.HeaderExpires
	case fasthttp.HeaderLocation:
		return fasthttp.HeaderLocation
	case fasthttp.HeaderSetCookie:
		return fasthttp.HeaderSetCookie
	case fasthttp.HeaderAccessControlAllowOrigin:
		return fasthttp.HeaderAccessControlAllowOrigin
	}
	return string(k)
}

func bodyAllowed(status int) bool {
	return status != fasthttp.StatusNoContent && status != fasthttp.StatusNotModified
}

// h2Forbidden reports a connection-specific field (RFC 9113 8.2.2), in
// fasthttp's canonical spelling.
func h2Forbidden(k []byte) bool {
	switch string(k) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer":
		return true
	}
	return false
}

// h2Log passes x/net's log lines (client protocol errors, mostly) to the
// logger at debug: a hostile client must not fill the log.
type h2Log struct{ l *zap.Logger }

func (h h2Log) Write(p []byte) (int, error) {
	if ce := h.l.Check(zap.DebugLevel, "http2"); ce != nil {
		ce.Write(zap.ByteString("msg", p))
	}
	return len(p), nil
}

// HTTP2Stats are the HTTP/2 counters of a Server.
type HTTP2Stats struct {
	Conns       int64  // h2 connections open now
	RapidResets uint64 // connections closed for resetting streams over listen[].http2.max_resets
	RequestsH1  uint64 // requests served over HTTP/1.x
	RequestsH2  uint64 // requests served over HTTP/2
}

// HTTP2Stats reports the h2 connections open and closed for rapid reset.
func (s *Server) HTTP2Stats() HTTP2Stats {
	return HTTP2Stats{Conns: s.h2.conns.Load(), RapidResets: s.h2.rapidResets.Load(),
		RequestsH1: s.h2.reqH1.Load(), RequestsH2: s.h2.reqH2.Load()}
}

// listenerTLS is the TLS configuration for a new connection on l: h2
// offered or not as the current runtime's listen[].http2 says.
func (l *watchingListener) listenerTLS(rt *Runtime, index int) *tls.Config {
	if index < len(rt.cfg.Listen) && !rt.cfg.Listen[index].HTTP2.On() && l.tlsNoH2 != nil {
		return l.tlsNoH2
	}
	return l.tls
}

// withoutH2 is c offering every protocol but h2.
func withoutH2(c *tls.Config) *tls.Config {
	out := c.Clone()
	out.NextProtos = nil
	for _, p := range c.NextProtos {
		if p != http2.NextProtoTLS {
			out.NextProtos = append(out.NextProtos, p)
		}
	}
	return out
}

// Interface guards.
var (
	_ http.Handler = (*h2Handler)(nil)
	_ io.Writer    = h2Log{}
)

// count counts one request by protocol.
func (f *h2Front) count(h2 bool) {
	if h2 {
		f.reqH2.Add(1)
	} else {
		f.reqH1.Add(1)
	}
}

// protoName is the access log's proto field.
func protoName(h2 bool) string {
	if h2 {
		return "h2"
	}
	return "h1"
}
