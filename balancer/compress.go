package balancer

import (
	"bytes"
	"fmt"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/contentcoding"
	"github.com/valyala/fasthttp"
)

// maxKeptScratch bounds the compression scratch a pooled reqState keeps
// between requests, so one large answer does not pin its size forever.
const maxKeptScratch = 1 << 20

// compressor compresses the nodes' text answers for clients that accept it
// (configs.Compression). A runtime without compression has none.
type compressor struct {
	minBytes int
	offered  contentcoding.Set
	enc      [contentcoding.Brotli + 1]*contentcoding.Encoder
	// types are lower-case media types; those ending in '/' (from
	// "text/*") match by prefix.
	types [][]byte
}

// newCompressor returns nil when cfg is off.
func newCompressor(cfg configs.Compression) (*compressor, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	c := &compressor{minBytes: cfg.MinBytes}
	for _, a := range cfg.Algorithms {
		coding, level := contentcoding.Gzip, cfg.GzipLevel
		if a == "br" {
			coding, level = contentcoding.Brotli, *cfg.BrotliLevel
		}
		e, err := contentcoding.NewEncoder(coding, level)
		if err != nil {
			return nil, fmt.Errorf("balancer: compression: %w", err)
		}
		c.enc[coding] = e
		c.offered |= contentcoding.SetOf(coding)
	}
	for _, t := range cfg.Types {
		c.types = append(c.types, bytes.TrimSuffix(bytes.ToLower([]byte(t)), []byte("*")))
	}
	return c, nil
}

var (
	hdrAcceptEncoding = []byte("Accept-Encoding")
	hdrIfNoneMatch    = []byte("If-None-Match")
	hdrETag           = []byte("Etag") // fasthttp's canonical spelling
	hdrVary           = []byte("Vary")
	hdrContentRange   = []byte("Content-Range")
	hdrAcceptRanges   = []byte("Accept-Ranges")
	hdrCacheControl   = []byte("Cache-Control")
	strNoTransform    = []byte("no-transform")
	strVaryAE         = []byte("Accept-Encoding")
	strVaryAELower    = []byte("accept-encoding")
	strVarySep        = []byte(", ")
)

// request turns the variant ETags the balancer made ("x-gz") back into the
// node's own ("x") in If-None-Match, so the node can answer 304, and
// remembers which variants the client named for the 304's ETag. If-Range
// is left alone on purpose: a node's 206 of identity bytes must never
// match a client's compressed copy.
func (c *compressor) request(req *fasthttp.Request, st *reqState) {
	st.inm = 0
	inm := req.Header.PeekBytes(hdrIfNoneMatch)
	if len(inm) == 0 || !contentcoding.HasVariants(inm) {
		return
	}
	st.hbuf, st.inm = contentcoding.AppendStripped(st.hbuf[:0], inm)
	req.Header.SetCanonical(hdrIfNoneMatch, st.hbuf)
}

// respond compresses the node's answer in ctx when the client accepts a
// coding and the answer is worth it, or, for a 304, gives back the
// variant ETag the client holds. It runs after the answer was cleaned
// (finishResponse).
func (c *compressor) respond(ctx *fasthttp.RequestCtx, st *reqState) {
	resp := &ctx.Response
	h := &resp.Header
	status := resp.StatusCode()
	if status == fasthttp.StatusNotModified {
		c.notModified(ctx, st)
		return
	}
	if !c.eligible(ctx, status) {
		return
	}
	c.addVary(h, st)
	coding := contentcoding.Negotiate(ctx.Request.Header.PeekBytes(hdrAcceptEncoding), c.offered)
	if coding == contentcoding.Identity {
		return
	}
	body := resp.Body()
	out := c.enc[coding].Append(st.zbuf[:0], body)
	if len(out) >= len(body) {
		st.keepScratch(out)
		return
	}
	if etag := h.PeekBytes(hdrETag); len(etag) > 0 {
		v, ok := contentcoding.AppendVariant(st.hbuf[:0], etag, coding)
		if ok {
			h.SetCanonical(hdrETag, v)
		} else {
			// No validator beats a wrong one.
			h.DelBytes(hdrETag)
		}
		st.hbuf = v
	}
	h.SetContentEncodingBytes(coding.Token())
	// Ranges would address the compressed bytes, which no node can serve.
	h.DelBytes(hdrAcceptRanges)
	// The node's body buffer becomes the next request's scratch.
	st.keepScratch(resp.SwapBody(out))
}

// eligible reports whether the answer may be compressed for some client:
// a body worth it, of a listed type, not encoded, not partial, not marked
// no-transform (RFC 9111 5.2.2.6).
func (c *compressor) eligible(ctx *fasthttp.RequestCtx, status int) bool {
	h := &ctx.Response.Header
	switch {
	case ctx.IsHead(), status < 200, status == fasthttp.StatusNoContent, status == fasthttp.StatusPartialContent:
		return false
	case len(h.ContentEncoding()) > 0, len(h.PeekBytes(hdrContentRange)) > 0:
		return false
	case len(ctx.Response.Body()) < c.minBytes:
		return false
	case hasToken(h.PeekBytes(hdrCacheControl), strNoTransform):
		return false
	}
	return c.compressible(h.ContentType())
}

// compressible reports whether the media type of a Content-Type value is
// listed.
func (c *compressor) compressible(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.Trim(ct, " \t")
	for _, t := range c.types {
		if t[len(t)-1] == '/' {
			if len(ct) > len(t) && bytes.EqualFold(ct[:len(t)], t) {
				return true
			}
		} else if bytes.EqualFold(ct, t) {
			return true
		}
	}
	return false
}

// notModified answers a 304 to a client that named a variant with that
// variant's ETag, so its stored compressed copy stays the one validated.
func (c *compressor) notModified(ctx *fasthttp.RequestCtx, st *reqState) {
	if st.inm == 0 {
		return
	}
	h := &ctx.Response.Header
	c.addVary(h, st)
	etag := h.PeekBytes(hdrETag)
	if len(etag) == 0 {
		return
	}
	coding := contentcoding.Negotiate(ctx.Request.Header.PeekBytes(hdrAcceptEncoding), c.offered)
	if !st.inm.Has(coding) {
		coding = contentcoding.Brotli
		if !st.inm.Has(coding) {
			coding = contentcoding.Gzip
		}
	}
	if v, ok := contentcoding.AppendVariant(st.hbuf[:0], etag, coding); ok {
		h.SetCanonical(hdrETag, v)
		st.hbuf = v
	}
}

// addVary adds Accept-Encoding to the answer's Vary (RFC 9110 12.5.5),
// keeping what the node listed.
func (c *compressor) addVary(h *fasthttp.ResponseHeader, st *reqState) {
	v := h.PeekBytes(hdrVary)
	switch {
	case len(v) == 0:
		h.SetCanonical(hdrVary, strVaryAE)
	case hasToken(v, strVaryAELower), hasToken(v, valStar):
	default:
		b := append(append(append(st.hbuf[:0], v...), strVarySep...), strVaryAE...)
		h.SetCanonical(hdrVary, b)
		st.hbuf = b
	}
}

var valStar = []byte("*")

// hasToken reports whether the comma-separated list v holds tok, ignoring
// case and parameters (Cache-Control's no-transform, Vary's names).
func hasToken(v, tok []byte) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if i := bytes.IndexAny(item, "=;"); i >= 0 {
			item = item[:i]
		}
		if bytes.EqualFold(bytes.Trim(item, " \t"), tok) {
			return true
		}
	}
	return false
}

// keepScratch keeps b as the next compression scratch unless it is large.
func (st *reqState) keepScratch(b []byte) {
	if cap(b) > maxKeptScratch {
		b = nil
	}
	st.zbuf = b[:0]
}
