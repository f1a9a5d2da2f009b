package cssproxy

import (
	"bytes"

	"github.com/mosparo-lb/mosparo-lb/internal/contentcoding"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Header names and values of mosparo's DynamicResourcesController answers
// (FACTS 2.5, 5.3), as fasthttp-canonical byte slices so setting them
// allocates nothing.
var (
	// Symfony's Response::prepare() appends the charset to any text/*
	// Content-Type, so mosparo's 'text/css' goes out as this.
	contentTypeCSS  = []byte("text/css; charset=UTF-8")
	hdrACAO         = []byte("Access-Control-Allow-Origin")
	valStar         = []byte("*")
	hdrCacheControl = []byte("Cache-Control")
	valImmutable    = []byte("max-age=31536000, public")
	valNoCache      = []byte("no-cache, public")
	hdrLocation     = []byte("Location")
	hdrLocationName = "Location"
	// fasthttp's canonical spelling: SetCanonical skips normalizing, and
	// "ETag" would be stored where Peek("ETag") does not look.
	hdrETag         = []byte("Etag")
	hdrIfNoneMatch  = "If-None-Match"
	hdrAcceptEnc    = "Accept-Encoding"
	hdrVary         = []byte("Vary")
	valAcceptEnc    = []byte("Accept-Encoding")
	resourcesPrefix = []byte("/resources/")
	cssSuffix       = []byte(".css")
	schemeSeparator = []byte("://")
	methodGet       = []byte(fasthttp.MethodGet)
	methodHead      = []byte(fasthttp.MethodHead)
	weakPrefix      = []byte("W/")
)

// Serve answers a GET or HEAD for /resources/<uuid>/<hash>.css (200 or 304
// with the cached CSS) or /resources/<uuid>.css (307 to the hashed URL) at
// the edge, exactly as mosparo would, and reports true. scheme and host are
// the client-facing ones, prefix the X-Forwarded-Prefix (or empty), which
// mosparo would use for its absolute redirect URL.
//
// It returns false without touching the response whenever it cannot
// answer as mosparo would (another path or method, keys absent, hash
// mismatch, corrupt value, cache unavailable); the caller then forwards the
// request to a node unchanged. A miss waits for one lookup, bounded by
// css_cache.timeout (memcached: per network operation); concurrent misses
// for one project share it; with the breaker open it waits for nothing.
// Nothing of ctx or of the argument slices is kept after it returns.
func (p *Proxy) Serve(ctx *fasthttp.RequestCtx, scheme, host, prefix []byte) bool {
	method := ctx.Method()
	if !bytes.Equal(method, methodGet) && !bytes.Equal(method, methodHead) {
		return false
	}
	id, hash, ok := parseResourcePath(ctx.Path())
	if !ok {
		return false
	}
	e := p.entryFor(id)
	if e == nil || !e.found || (hash != nil && !bytes.Equal(hash, e.hash)) {
		// A mismatch goes to a node too: mosparo then regenerates the
		// CSS or redirects to the current hash (FACTS 5.3).
		p.misses.Add(1)
		return false
	}
	if hash == nil && !p.coh.allow(id, e.hash, p.clock.Now()) {
		// A node answers from the database (FACTS 11.5): either this is
		// the periodic check or the last check disagreed with the cache.
		p.misses.Add(1)
		return false
	}
	p.hits.Add(1)
	if hash == nil {
		p.writeRedirect(ctx, e, scheme, host, prefix)
	} else {
		p.writeCSS(ctx, e)
	}
	return true
}

// ServeStale is Serve for a request no node can take because every node
// that could has an unfinished update and would answer it with a 302 to
// the finalize page (FACTS 11.2): it serves the local entry whatever its
// age when the shared cache does not answer, and the unhashed URL without
// waiting for a coherence check, but never against a node's last answer
// (a project a node says is gone or moved). It reports false, touching
// nothing, when it has nothing to serve.
func (p *Proxy) ServeStale(ctx *fasthttp.RequestCtx, scheme, host, prefix []byte) bool {
	method := ctx.Method()
	if !bytes.Equal(method, methodGet) && !bytes.Equal(method, methodHead) {
		return false
	}
	id, hash, ok := parseResourcePath(ctx.Path())
	if !ok {
		return false
	}
	e := p.entryFor(id)
	if e == nil {
		e = p.store.get(id) // the shared cache did not answer: the old copy
	}
	if e == nil || !e.found || (hash != nil && !bytes.Equal(hash, e.hash)) ||
		hash == nil && !p.coh.trustedID(id, e.hash) {
		return false
	}
	p.hits.Add(1)
	p.stale.Add(1)
	if hash == nil {
		p.writeRedirect(ctx, e, scheme, host, prefix)
	} else {
		p.writeCSS(ctx, e)
	}
	return true
}

// Observe takes note of a node's answer to a CSS request the edge left to
// it: for the unhashed URL, its redirect (or 404) is compared with the
// cached hash. The balancer calls it after forwarding a /resources GET or
// HEAD, with the node's response in ctx. Nothing of ctx is kept.
func (p *Proxy) Observe(ctx *fasthttp.RequestCtx) {
	id, hash, ok := parseResourcePath(ctx.Path())
	if !ok || hash != nil {
		return
	}
	var cached []byte
	if e := p.store.get(id); e != nil && e.found {
		cached = e.hash
	}
	if p.coh.observe(id, ctx.Response.StatusCode(), ctx.Response.Header.Peek(hdrLocationName), cached) {
		p.log.Warn("a node disagrees with the css cache; its unhashed url is left to the nodes",
			zap.String("project", string(id[:])), zap.Int("status", ctx.Response.StatusCode()))
	}
}

// parseResourcePath splits /resources/<uuid>.css (hash nil) and
// /resources/<uuid>/<hash>.css. The hash aliases path.
func parseResourcePath(path []byte) (id projectID, hash []byte, ok bool) {
	if !bytes.HasPrefix(path, resourcesPrefix) || !bytes.HasSuffix(path, cssSuffix) {
		return id, nil, false
	}
	rest := path[len(resourcesPrefix) : len(path)-len(cssSuffix)]
	if len(rest) == uuidLen {
		id, ok = parseProjectID(rest)
		return id, nil, ok
	}
	if len(rest) < uuidLen+2 || rest[uuidLen] != '/' {
		return id, nil, false
	}
	hash = rest[uuidLen+1:]
	if bytes.IndexByte(hash, '/') >= 0 {
		return id, nil, false
	}
	id, ok = parseProjectID(rest[:uuidLen])
	return id, hash, ok
}

// writeCSS answers 200 (or 304 on a matching If-None-Match) with the
// entry's bytes in the coding the client prefers of those the entry holds
// (brotli, gzip, identity), each with its own ETag. The body is the entry's
// immutable slice, handed over without a copy: nothing is compressed here.
func (p *Proxy) writeCSS(ctx *fasthttp.RequestCtx, e *entry) {
	resp := &ctx.Response
	h := &resp.Header
	coding := contentcoding.Negotiate(ctx.Request.Header.Peek(hdrAcceptEnc), e.offered)
	body, etag := e.body, e.etag
	if coding != contentcoding.Identity {
		body, etag = e.coded[coding], e.codedTag[coding]
	}
	h.SetContentTypeBytes(contentTypeCSS)
	h.SetCanonical(hdrACAO, valStar)
	h.SetCanonical(hdrCacheControl, valImmutable)
	h.SetCanonical(hdrETag, etag)
	if e.offered != 0 || !e.packed {
		// Also before the forms are made: the answer will vary.
		h.SetCanonical(hdrVary, valAcceptEnc)
	}
	if inm := ctx.Request.Header.Peek(hdrIfNoneMatch); len(inm) > 0 && etagListMatches(inm, e) {
		p.notModified.Add(1)
		resp.SetStatusCode(fasthttp.StatusNotModified)
		resp.ResetBody()
		return
	}
	resp.SetStatusCode(fasthttp.StatusOK)
	if coding != contentcoding.Identity {
		h.SetContentEncodingBytes(coding.Token())
	}
	resp.SetBodyRaw(body)
}

// writeRedirect answers mosparo's 307 from /resources/<uuid>.css to the
// absolute hashed URL (FACTS 5.3: Symfony's ABSOLUTE_URL from the
// client-facing scheme, host and prefix; Cache-Control no-cache, public).
func (p *Proxy) writeRedirect(ctx *fasthttp.RequestCtx, e *entry, scheme, host, prefix []byte) {
	p.redirects.Add(1)
	bp := p.bufs.Get().(*[]byte)
	b := append((*bp)[:0], scheme...)
	b = append(b, schemeSeparator...)
	b = append(b, host...)
	b = append(b, prefix...)
	b = append(b, e.location...)
	resp := &ctx.Response
	resp.SetStatusCode(fasthttp.StatusTemporaryRedirect)
	resp.Header.SetCanonical(hdrLocation, b)
	resp.Header.SetCanonical(hdrCacheControl, valNoCache)
	resp.ResetBody()
	*bp = b
	p.bufs.Put(bp)
}

// etagListMatches applies If-None-Match's weak comparison (RFC 9110
// 13.1.2): "*" or any listed tag equal to any representation's tag,
// ignoring a W/ prefix.
func etagListMatches(v []byte, e *entry) bool {
	for len(v) > 0 {
		v = bytes.TrimLeft(v, " \t,")
		if len(v) == 0 {
			return false
		}
		if v[0] == '*' {
			return true
		}
		if bytes.HasPrefix(v, weakPrefix) {
			v = v[2:]
		}
		if len(v) == 0 || v[0] != '"' {
			// Not a tag: skip to the next comma.
			i := bytes.IndexByte(v, ',')
			if i < 0 {
				return false
			}
			v = v[i+1:]
			continue
		}
		end := bytes.IndexByte(v[1:], '"')
		if end < 0 {
			return false
		}
		tag := v[:end+2]
		if bytes.Equal(tag, e.etag) || bytes.Equal(tag, e.codedTag[contentcoding.Gzip]) || bytes.Equal(tag, e.codedTag[contentcoding.Brotli]) {
			return true
		}
		v = v[end+2:]
	}
	return false
}
