package balancer

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mosparo-lb/mosparo-lb/health"
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
	fields  [8]zap.Field
}

var statePool = sync.Pool{New: func() any { return new(reqState) }}

// outcome is what the access log and metrics learn of one request: plain
// values copied out of the request (STYLE 6).
type outcome struct {
	class   Class
	node    *upstream
	status  int
	retries int
}

// handle is the fasthttp handler: classify, guard, edge-serve, forward.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	rt := s.rt.Load()
	var peer netip.Addr
	if wc := clientConn(ctx); wc != nil {
		wc.handling()
		if ln := wc.ln; !ln.tls && ln.index < len(rt.cfg.Listen) && rt.cfg.Listen[ln.index].RedirectHTTPS {
			s.redirect(ctx, rt.cfg.Listen[ln.index].RedirectPort)
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
	case class == Resources && rt.deps.CSS != nil && (ctx.IsGet() || ctx.IsHead()):
		scheme, host, prefix, buf := rt.fwd.clientFacing(&ctx.Request.Header, peer, ctx.IsTLS(), st.buf)
		st.buf = buf
		if rt.deps.CSS.Serve(ctx, scheme, host, prefix) {
			o.status = ctx.Response.StatusCode()
			return o
		}
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
	isTLS := ctx.IsTLS()
	removeHopByHop(&req.Header)
	req.Header.ResetConnectionClose()
	st.buf = rt.fwd.apply(&req.Header, peer, isTLS, st.buf)
	// TLS ends here; the hop to the node is plain HTTP.
	req.URI().SetSchemeBytes(strHTTP)

	p := rt.pools[o.class]
	idempotent := isIdempotent(req.Header.Method())
	kind := kindOf(o.class, ctx.IsGet(), path)
	deadline := start.UnixNano() + int64(rt.timeout)
	st.cand.weights = &st.weights
	st.cand.key = key
	var tried uint64
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
		err := u.exchange(req, resp, deadline)
		u.inflight.Add(-1)
		now = time.Now()
		if err == nil {
			rt.finishResponse(ctx, u, o, clientClose, now.UnixNano())
			return
		}
		u.failures.Add(1)
		rt.logUpstreamError(u, err)
		code, retry := judge(u, err, idempotent, now.UnixNano())
		if now.UnixNano() >= deadline {
			code, retry = fasthttp.StatusGatewayTimeout, false
		}
		if !retry {
			rt.fail(ctx, o, code, clientClose)
			return
		}
		resp.Reset()
		resp.Header.SetNoDefaultContentType(true)
	}
	if o.node == nil {
		if kind&kindDrainRedirect != 0 && p.anyDraining() {
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

// judge reports an upstream failure to health and decides the answer and
// whether another node may be tried (DESIGN.md step 6): a request that
// never reached the node may always go elsewhere; one that may have reached
// it only when its method is idempotent; a timeout never (the budget is spent).
func judge(u *upstream, err error, idempotent bool, now int64) (code int, retry bool) {
	switch {
	case neverReached(err):
		u.observe(health.ConnectFailure, now)
		return fasthttp.StatusBadGateway, true
	case isTimeout(err):
		u.observe(health.Timeout, now)
		return fasthttp.StatusGatewayTimeout, false
	default:
		// It may have reached the node: a second attempt could store a
		// submission twice (PEERS 3, nginx since 1.9.13).
		u.observe(health.ServerError, now)
		return fasthttp.StatusBadGateway, idempotent
	}
}

var errorBodies = map[int][]byte{
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
	if o.status >= 500 {
		u.failures.Add(1)
		u.observe(health.ServerError, now)
	} else {
		u.observe(health.Success, now)
	}
	removeHopByHop(&resp.Header)
	// The node closing its side says nothing about the client's connection.
	resp.Header.ResetConnectionClose()
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

func (rt *Runtime) logUpstreamError(u *upstream, err error) {
	if ce := rt.deps.Logger.Check(zap.WarnLevel, "upstream error"); ce != nil {
		ce.Write(zap.String("node", u.name), zap.Error(err))
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
	if i := p.byName(name); i >= 0 && c.mask&(1<<uint(i)) != 0 {
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
