package balancer

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 (and RFC
// 7230 section 6.1 before it) that a proxy must not forward, in either
// direction. fasthttp forwards whatever it holds (PEERS 5.1), so they are
// removed explicitly.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection", // non-standard, still sent by old clients
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",      // canonical form of TE as fasthttp normalizes it
	"Trailer", // the header is Trailer, not Trailers
	"Transfer-Encoding",
	"Upgrade", // mosparo uses no WebSockets; an upgrade must not reach a node
}

// headerDeleter is what fasthttp's request and response headers share.
type headerDeleter interface {
	Peek(key string) []byte
	DelBytes(key []byte)
	Del(key string)
}

// removeHopByHop deletes the headers named in Connection first (RFC 9110
// section 7.6.1), then the fixed list. fasthttp keeps the "close" part of
// Connection as a flag; callers decide separately whether each side's
// connection closes.
func removeHopByHop(h headerDeleter) {
	v := h.Peek("Connection")
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 && !bytes.EqualFold(tok, strClose) && !bytes.EqualFold(tok, strKeepAlive) {
			h.DelBytes(tok)
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

var (
	strClose     = []byte("close")
	strKeepAlive = []byte("keep-alive")
)

// Interface guards.
var (
	_ headerDeleter = (*fasthttp.RequestHeader)(nil)
	_ headerDeleter = (*fasthttp.ResponseHeader)(nil)
)
