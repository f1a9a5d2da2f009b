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
	"Connection", // first: removeHopByHop tests its bit

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

// headerIndex finds canonical header names (fasthttp normalizes them) in a
// list by length, then bytes, so one pass over a request finds which of the
// list are present; most requests carry none, or only Connection. A map
// costs a hash of every header name; this, one length check for most.
type headerIndex struct {
	byLen [maxIndexedName + 1][]indexedName
}

type indexedName struct {
	name string
	bit  uint64
}

const maxIndexedName = 31

func newHeaderIndex(names []string) *headerIndex {
	x := new(headerIndex)
	for i, n := range names {
		if len(n) > maxIndexedName || i >= 64 {
			panic("balancer: header index: " + n)
		}
		x.byLen[len(n)] = append(x.byLen[len(n)], indexedName{n, 1 << uint(i)})
	}
	return x
}

// present returns the bit set of the names of x that h carries. It takes
// the concrete header types: ranging over All() through an interface
// allocates the iterator closures on every call.
func present(x *headerIndex, h headerDeleter) uint64 {
	var mask uint64
	switch h := h.(type) {
	case *fasthttp.RequestHeader:
		for k := range h.All() {
			mask |= x.bit(k)
		}
	case *fasthttp.ResponseHeader:
		for k := range h.All() {
			mask |= x.bit(k)
		}
	}
	return mask
}

// bit is the bit of k in the list, 0 when k is not in it.
func (x *headerIndex) bit(k []byte) uint64 {
	if len(k) >= len(x.byLen) {
		return 0
	}
	for _, e := range x.byLen[len(k)] {
		if string(k) == e.name {
			return e.bit
		}
	}
	return 0
}

var hopIndex = newHeaderIndex(hopHeaders)

// removeHopByHop deletes the headers named in Connection first (RFC 9110
// section 7.6.1), then those of the fixed list that are present. fasthttp
// keeps the "close" part of Connection as a flag; callers decide separately
// whether each side's connection closes.
func removeHopByHop(h headerDeleter) {
	mask := present(hopIndex, h)
	if mask == 0 {
		return
	}
	if mask&1 != 0 { // Connection
		removeConnectionListed(h)
	}
	for i, k := range hopHeaders {
		if mask&(1<<uint(i)) != 0 {
			h.Del(k)
		}
	}
}

// removeConnectionListed deletes every header named in Connection.
func removeConnectionListed(h headerDeleter) {
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
