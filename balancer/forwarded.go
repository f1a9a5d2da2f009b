package balancer

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// forwarder applies the forwarding rule of DESIGN.md step 5. It is built once
// per runtime and read concurrently.
type forwarder struct {
	trusted []netip.Prefix
	prefix  []byte // edge.forwarded_prefix, sent as X-Forwarded-Prefix
}

// strippedHeaders are dropped from an untrusted peer. mosparo's Symfony
// trusts the first four from a trusted proxy (FACTS 4); the rest are dropped
// so no later hop can be fooled either.
var strippedHeaders = []string{
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
	"Forwarded", "X-Real-Ip", "X-Client-Ip",
}

var xForwardedPrefix = []byte("X-Forwarded-")

// isTrusted reports whether peer is a configured trusted proxy.
func (f *forwarder) isTrusted(peer netip.Addr) bool {
	for _, p := range f.trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// apply rewrites the outgoing request's forwarding headers. The trust rule:
// a client's own X-Forwarded-*/Forwarded headers survive only when the TCP
// peer is in trusted_proxies, and then the peer is appended to the chain;
// from anyone else they are deleted and replaced by what this LB saw. So a
// spoofed "X-Forwarded-For: 127.0.0.1" never reaches a node (FACTS 4, 9.2:
// the Docker images trust every peer's XFF). buf is scratch space, returned
// for reuse.
func (f *forwarder) apply(h *fasthttp.RequestHeader, peer netip.Addr, tls bool, buf []byte) []byte {
	trusted := f.isTrusted(peer)
	buf = buf[:0]
	if trusted {
		// Several X-Forwarded-For lines form one list (RFC 9110 section 5.3).
		for k, v := range h.All() {
			if bytes.EqualFold(k, strXFF) && len(v) > 0 {
				if len(buf) > 0 {
					buf = append(buf, ", "...)
				}
				buf = append(buf, v...)
			}
		}
		if len(buf) > 0 {
			buf = append(buf, ", "...)
		}
	} else {
		stripForwarded(h)
	}
	buf = peer.AppendTo(buf)
	// The names are canonical already: SetCanonical skips normalizing them.
	h.SetCanonical(strXFF, buf)
	if !trusted || len(h.Peek("X-Forwarded-Proto")) == 0 {
		if tls {
			h.SetCanonical(strXFProto, strHTTPS)
		} else {
			h.SetCanonical(strXFProto, strHTTP)
		}
	}
	if !trusted || len(h.Peek("X-Forwarded-Host")) == 0 {
		if host := h.Host(); len(host) > 0 {
			h.SetCanonical(strXFHost, host)
		}
	}
	if len(f.prefix) > 0 && (!trusted || len(h.Peek("X-Forwarded-Prefix")) == 0) {
		h.SetCanonical(strXFPrefix, f.prefix)
	}
	return buf
}

var (
	strXFF      = []byte("X-Forwarded-For")
	strXFProto  = []byte("X-Forwarded-Proto")
	strXFHost   = []byte("X-Forwarded-Host")
	strXFPrefix = []byte("X-Forwarded-Prefix")
)

var strippedIndex = newHeaderIndex(strippedHeaders)

// stripForwarded removes a client's forwarding headers in one pass over the
// request: the fixed list, and any other X-Forwarded-* name. It allocates
// only for such other names, which honest clients never send.
func stripForwarded(h *fasthttp.RequestHeader) {
	var mask uint64
	var extra [][]byte
	for k := range h.All() {
		if b := strippedIndex.bit(k); b != 0 {
			mask |= b
		} else if len(k) > len(xForwardedPrefix) && bytes.EqualFold(k[:len(xForwardedPrefix)], xForwardedPrefix) {
			extra = append(extra, append([]byte(nil), k...))
		}
	}
	for i, k := range strippedHeaders {
		if mask&(1<<uint(i)) != 0 {
			h.Del(k)
		}
	}
	for _, k := range extra {
		h.DelBytes(k)
	}
}

// clientFacing is the scheme, host and path prefix the client used, as
// mosparo would derive them for an absolute URL (FACTS 4, 5.3, 11.7): from a
// trusted proxy's X-Forwarded-Proto/-Host/-Prefix, otherwise from this
// connection, the Host header and edge.forwarded_prefix, normalized as
// Symfony does (absurl.go). host is written to buf, which is returned for
// reuse; the other slices alias the request headers or package values.
func (f *forwarder) clientFacing(h *fasthttp.RequestHeader, peer netip.Addr, tls bool, buf []byte) (scheme, host, prefix, out []byte) {
	scheme, host, prefix = strHTTP, h.Host(), bytes.TrimRight(f.prefix, "/")
	if tls {
		scheme = strHTTPS
	}
	if f.isTrusted(peer) {
		if v := h.Peek("X-Forwarded-Proto"); len(v) > 0 {
			scheme = symfonyScheme(v)
		}
		if v := h.Peek("X-Forwarded-Host"); len(v) > 0 {
			host = firstValue(v)
		}
		if v := h.Peek("X-Forwarded-Prefix"); len(v) > 0 {
			prefix = symfonyPrefix(v)
		}
	}
	buf = appendHTTPHost(buf[:0], host, scheme)
	return scheme, buf, prefix, buf
}
