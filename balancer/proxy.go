package balancer

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/internal/contentcoding"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// reqState is per-request scratch space, pooled so the hot path does not
// allocate. Nothing in it refers to the RequestCtx after the handler returns.
type reqState struct {
	cand    candidates
	weights [maxPoolNodes]int32
	buf     []byte
	addr    []byte
	fields  [9]zap.Field

	// compression (compress.go): scratch for bodies and header values, and
	// the variant ETags the client named in If-None-Match.
	zbuf, hbuf []byte
	inm        contentcoding.Set
}

var statePool = sync.Pool{New: func() any { return new(reqState) }}

// outcome is what the access log and metrics learn of one request: plain
// values copied out of the request (STYLE 6).
type outcome struct {
	class   Class
	node    *upstream
	status  int
	retries int
	h2      bool // served over HTTP/2 (http2.go)
}

// handle is the fasthttp handler: classify, guard, edge-serve, forward.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	rt := s.rt.Load()
	var peer netip.Addr
	wc := clientConn(ctx)
	h2 := false
	if wc != nil {
		wc.handling()
		h2 = wc.isH2()
	}
	s.h2.count(h2)
	if !checkRequest(ctx) {
		if rt.noNode != nil {
			rt.noNode.Observe(Classify(ctx.Path()), fasthttp.StatusBadRequest, time.Since(start), 0)
		}
		return
	}
	if wc != nil {
		// http-01 answers come before the HTTPS redirect (issue 14).
		if !wc.ln.tls && rt.serveACMEChallenge(ctx) {
			return
		}
		if ln := wc.ln; !ln.tls && ln.index < len(rt.cfg.Listen) && rt.cfg.Listen[ln.index].RedirectHTTPS {
			redirect(ctx, &rt.cfg.Listen[ln.index])
			return
		}
		peer = wc.peer
	} else {
		peer = peerAddr(ctx)
	}
	st := statePool.Get().(*reqState)
	path := ctx.Path()
	canon, routable := Canonical(path)
	class := classify(canon)
	if len(canon) != len(path) {
		// The node gets the path it is classified by: no base-URL detection
		// of its own can then route it elsewhere (docs/operations.md).
		st.buf = setPath(&ctx.Request, canon, st.buf)
		path = ctx.Path()
	}
	o := rt.serve(ctx, st, class, routable, peer, path, start)
	o.h2 = h2
	if rt.deps.AccessLog == nil && rt.noNode == nil {
		statePool.Put(st)
		return
	}
	took := time.Since(start)
	if rt.deps.AccessLog != nil {
		rt.accessLog(ctx, st, o, peer, took)
	}
	statePool.Put(st)
	if rt.noNode != nil {
		rec := rt.noNode
		if o.node != nil {
			rec = o.node.rec
		}
		rec.Observe(o.class, o.status, took, o.retries)
	}
}

func (rt *Runtime) serve(ctx *fasthttp.RequestCtx, st *reqState, class Class, routable bool, peer netip.Addr, path []byte, start time.Time) outcome {
	o := outcome{class: class}
	switch {
	case !routable:
		writeError(ctx, class, fasthttp.StatusNotFound, bodyNoRoute)
		o.status = fasthttp.StatusNotFound
		return o
	case class == Health && !allowed(rt.allowHealth, peer), class == Cron && !allowed(rt.allowCron, peer):
		// Infrastructure endpoints guarded only by IP allow lists that a
		// proxy defeats (FACTS 1.2, 6.1): refused unless listed.
		writeError(ctx, class, fasthttp.StatusForbidden, bodyForbidden)
		o.status = fasthttp.StatusForbidden
		return o
	case rt.rate.byClass[class] != nil && rt.rateLimited(ctx, st, &o, peer, start):
		return o
	case class == Resources && rt.deps.CSS != nil && (ctx.IsGet() || ctx.IsHead()):
		scheme, host, prefix, buf := rt.fwd.clientFacing(&ctx.Request.Header, peer, ctx.IsTLS(), st.buf)
		st.buf = buf
		if rt.deps.CSS.Serve(ctx, scheme, host, prefix) {
			o.status = ctx.Response.StatusCode()
			return o
		}
		rt.forward(ctx, st, &o, peer, path, start)
		if o.node != nil { // a node answered, not the LB (ServeStale included)
			rt.deps.CSS.Observe(ctx)
		}
		return o
	}
	rt.forward(ctx, st, &o, peer, path, start)
	return o
}

// setPath makes canon the request's path. URI.SetPathBytes decodes percent
// escapes again, so a literal "%" (a client's "%25") is escaped first: a
// path must not be decoded twice on its way to the node. buf is scratch
// space, returned for reuse.
func setPath(req *fasthttp.Request, canon, buf []byte) []byte {
	buf = buf[:0]
	for _, c := range canon {
		if c == '%' {
			buf = append(buf, "%25"...)
			continue
		}
		buf = append(buf, c)
	}
	req.URI().SetPathBytes(buf)
	return buf
}

var (
	strSlash = []byte("/")
	strHTTP  = []byte("http")
	strHTTPS = []byte("https")
)

// forward sends the request to a node, retrying on others as the rule of
// DESIGN.md step 6 allows, and leaves the node's answer (or a JSON error)
// in ctx.Response.
func (rt *Runtime) forward(ctx *fasthttp.RequestCtx, st *reqState, o *outcome, peer netip.Addr, path []byte, start time.Time) {
	req := &ctx.Request
	resp := &ctx.Response
	clientClose := req.Header.ConnectionClose()
	var key uint64
	if rt.hashClients {
		key = rt.clientKey(req, peer)
	}
	if len(req.Header.Host()) == 0 && !rt.setDefaultHost(ctx) {
		// Nothing to send as Host: the client's fault, no node's (issue 11).
		writeError(ctx, o.class, fasthttp.StatusBadRequest, bodyNoHost)
		o.status = fasthttp.StatusBadRequest
		ctx.SetConnectionClose()
		return
	}
	isTLS := ctx.IsTLS()
	removeHopByHop(&req.Header)
	req.Header.ResetConnectionClose()
	st.buf = rt.fwd.apply(&req.Header, peer, isTLS, st.buf)
	if rt.comp != nil {
		rt.comp.request(req, st)
	}
	// TLS ends here; the hop to the node is plain HTTP.
	req.URI().SetSchemeBytes(strHTTP)

	p := rt.pools[o.class]
	idempotent := isIdempotent(req.Header.Method())
	kind := kindOf(o.class, ctx.IsGet(), path)
	deadline := start.UnixNano() + int64(rt.timeout)
	st.cand.weights = &st.weights
	st.cand.key = key
	var tried uint64
	if kind&kindUpdate != 0 {
		var body []byte
		if tried, body = rt.updateExcluded(p); body != nil {
			writeError(ctx, o.class, fasthttp.StatusServiceUnavailable, body)
			o.status = fasthttp.StatusServiceUnavailable
			finishClose(ctx, clientClose)
			return
		}
	}
	now := start
	for attempt := 0; attempt <= rt.retries; attempt++ {
		p.fill(&st.cand, tried, now.UnixNano(), kind)
		i := rt.affinity(ctx, p, &st.cand)
		if i < 0 {
			i = p.sel.Select(&st.cand)
		}
		if i < 0 {
			break // no node left to try
		}
		u := p.nodes[i]
		tried |= 1 << uint(i)
		o.node, o.retries = u, attempt
		u.inflight.Add(1)
		u.requests.Add(1)
		err := u.exchange(req, resp, deadline, now.UnixNano())
		u.inflight.Add(-1)
		now = time.Now()
		if err == nil {
			rt.finishResponse(ctx, u, o, clientClose, now.UnixNano())
			if rt.comp != nil {
				rt.comp.respond(ctx, st)
			}
			return
		}
		c := causeOf(err)
		rt.logUpstreamError(u, c, err)
		code, retry := c.status(), c.retry(idempotent)
		if oc := c.outcome(); oc != 0 {
			u.failures.Add(1)
			u.observe(oc, now.UnixNano())
			if now.UnixNano() >= deadline {
				code, retry = fasthttp.StatusGatewayTimeout, false
			}
		}
		if !retry {
			if c == causeQueue {
				u.queueTimeouts.Add(1)
				rt.busy(ctx, o, clientClose)
			} else {
				rt.fail(ctx, o, code, clientClose)
			}
			return
		}
		resp.Reset()
		resp.Header.SetNoDefaultContentType(true)
	}
	if o.node == nil {
		if kind&kindDrainRedirect != 0 && p.anyDraining() {
			if o.class == Resources && rt.serveStale(ctx, st, peer) {
				o.status = ctx.Response.StatusCode()
				finishClose(ctx, clientClose)
				return
			}
			// Better than the draining node's 302 to an HTML page (FACTS 11.2).
			writeError(ctx, o.class, fasthttp.StatusServiceUnavailable, bodyUpdatePending)
			o.status = fasthttp.StatusServiceUnavailable
			finishClose(ctx, clientClose)
			return
		}
		rt.fail(ctx, o, fasthttp.StatusServiceUnavailable, clientClose)
		return
	}
	rt.fail(ctx, o, fasthttp.StatusBadGateway, clientClose)
}

// setDefaultHost gives a request that names no host (HTTP/1.0 allows that)
// its listener's listen[].default_host, and reports false when there is none.
// fasthttp cannot write a request without Host; before this, the failure
// counted against every node the request was retried on, and a trickle of
// such requests kept healthy nodes ejected (issue 11).
func (rt *Runtime) setDefaultHost(ctx *fasthttp.RequestCtx) bool {
	req := &ctx.Request
	switch {
	case req.Header.IsHTTP11():
		return false // HTTP/1.1 requires a Host (RFC 9112 3.2)
	case len(req.URI().Host()) > 0:
		return true // absolute-form: fasthttp sends the URI's authority
	case !bytes.HasPrefix(req.Header.RequestURI(), strSlash):
		return false // an absolute-form target with no authority (http:///x)
	}
	wc := clientConn(ctx)
	if wc == nil || wc.ln.index >= len(rt.defaultHosts) || len(rt.defaultHosts[wc.ln.index]) == 0 {
		return false
	}
	host := rt.defaultHosts[wc.ln.index]
	req.Header.SetHostBytes(host)
	req.URI().SetHostBytes(host)
	return true
}

// busy answers a request whose node stayed full for timeouts.queue.
func (rt *Runtime) busy(ctx *fasthttp.RequestCtx, o *outcome, clientClose bool) {
	writeError(ctx, o.class, fasthttp.StatusServiceUnavailable, bodyBusy)
	ctx.Response.Header.Set("Retry-After", retryAfter)
	o.status = fasthttp.StatusServiceUnavailable
	finishClose(ctx, clientClose)
}

// retryAfter is the Retry-After of a 503 for a full node: queued requests
// are short mosparo calls, so a second is a fair guess.
const retryAfter = "1"

var errorBodies = map[int][]byte{
	fasthttp.StatusBadRequest:         bodyBadRequest,
	fasthttp.StatusBadGateway:         bodyBadGateway,
	fasthttp.StatusServiceUnavailable: bodyNoNode,
	fasthttp.StatusGatewayTimeout:     bodyTimeout,
}

// fail answers the client with the JSON error for code.
func (rt *Runtime) fail(ctx *fasthttp.RequestCtx, o *outcome, code int, clientClose bool) {
	writeError(ctx, o.class, code, errorBodies[code])
	o.status = code
	finishClose(ctx, clientClose)
}

// finishResponse cleans the node's answer for the client.
func (rt *Runtime) finishResponse(ctx *fasthttp.RequestCtx, u *upstream, o *outcome, clientClose bool, now int64) {
	resp := &ctx.Response
	o.status = resp.StatusCode()
	// Any client can find a request mosparo answers with 5xx: counting
	// them is the operator's choice (health.passive.count_5xx).
	if o.status >= 500 && rt.count5xx {
		u.failures.Add(1)
		u.observe(health.ServerError, now)
	} else {
		u.observe(health.Success, now)
	}
	removeHopByHop(&resp.Header)
	// The node closing its side says nothing about the client's connection.
	resp.Header.ResetConnectionClose()
	// The client talks to the balancer: its version, not the node's (RFC 9110 6.2).
	resp.Header.SetProtocol(strHTTP11)
	if o.class == Setup && string(ctx.Request.Header.Cookie(affinityCookie)) != u.name {
		setAffinity(resp, u.name)
	}
	finishClose(ctx, clientClose)
}

// setAffinity pins the client's setup wizard to node (see affinity).
func setAffinity(resp *fasthttp.Response, node string) {
	c := fasthttp.AcquireCookie()
	c.SetKey(affinityCookie)
	c.SetValue(node)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	resp.Header.SetCookie(c)
	fasthttp.ReleaseCookie(c)
}

func finishClose(ctx *fasthttp.RequestCtx, clientClose bool) {
	if clientClose {
		ctx.SetConnectionClose()
	}
}

func (u *upstream) observe(o health.Outcome, now int64) {
	if u.health != nil {
		u.health.Observe(o, now)
	}
}

// logUpstreamError logs a failed attempt: a warning when the node is to
// blame, info when it was full, debug when the client was (a hostile client
// must not fill the log).
func (rt *Runtime) logUpstreamError(u *upstream, c cause, err error) {
	level := zap.WarnLevel
	switch c {
	case causeClient:
		level = zap.DebugLevel
	case causeQueue:
		level = zap.InfoLevel
	}
	if ce := rt.deps.Logger.Check(level, "upstream error"); ce != nil {
		ce.Write(zap.String("node", u.name), zap.Stringer("cause", c), zap.Error(err))
	}
}

// affinity keeps one client's setup wizard on one node: before installation
// mosparo's sessions are node-local files (FACTS 2.8, 3).
func (rt *Runtime) affinity(ctx *fasthttp.RequestCtx, p *pool, c *candidates) int {
	if p.class != Setup {
		return -1
	}
	name := ctx.Request.Header.Cookie(affinityCookie)
	if len(name) == 0 {
		return -1
	}
	// A full node still keeps its wizards: they wait in its queue.
	if i := p.byName(name); i >= 0 && (c.mask|c.full)&(1<<uint(i)) != 0 {
		return i
	}
	return -1
}

const affinityCookie = "mosparo_lb_node"

// clientKey is the hash of the client address used by client_ip_hash: the
// peer, or behind a trusted proxy the right-most forwarded address.
func (rt *Runtime) clientKey(req *fasthttp.Request, peer netip.Addr) uint64 {
	if rt.fwd.isTrusted(peer) {
		if xff := req.Header.Peek("X-Forwarded-For"); len(xff) > 0 {
			if i := bytes.LastIndexByte(xff, ','); i >= 0 {
				xff = xff[i+1:]
			}
			return mix64(hashBytes(bytes.TrimSpace(xff)))
		}
	}
	b := peer.As16()
	return mix64(hashBytes(b[:]))
}

func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// peerAddr is the TCP peer of the connection, without allocating.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr { return tcpPeer(ctx.RemoteAddr()) }

func tcpPeer(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

// clientConn finds the watched connection under ctx (nil when ctx was not
// served from a Server's listener, as in some tests).
func clientConn(ctx *fasthttp.RequestCtx) *watchedConn {
	c := ctx.Conn()
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	wc, _ := c.(*watchedConn)
	return wc
}
