package balancer

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// clientAddr is the client a request comes from, for per-client limits:
// the peer (the TCP peer, or the address a PROXY header carried), unless
// the peer is a trusted proxy. Then it is the right-most X-Forwarded-For
// entry that is not itself a trusted proxy, over every X-Forwarded-For line
// in order (HAProxy's forwardfor adds a line of its own rather than extend
// the client's), so whatever a client writes to the left of its proxy's
// entry is ignored. When every entry is trusted the left-most one is the
// client; when the deciding entry is not an address, or there is none, the
// peer is. It allocates nothing.
func (f *forwarder) clientAddr(h *fasthttp.RequestHeader, peer netip.Addr) netip.Addr {
	if !f.isTrusted(peer) {
		return peer
	}
	var first, last netip.Addr
	var firstOK, lastOK, untrusted bool
	for k, v := range h.All() {
		if !bytes.EqualFold(k, strXFF) {
			continue
		}
		for len(v) > 0 {
			var e []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				e, v = v[:i], v[i+1:]
			} else {
				e, v = v, nil
			}
			e = bytes.TrimSpace(e)
			if len(e) == 0 {
				continue
			}
			a, ok := parseForwardedFor(e)
			if !firstOK && ok {
				first, firstOK = a, true
			}
			if !ok || !f.isTrusted(a) {
				last, lastOK, untrusted = a, ok, true
			}
		}
	}
	switch {
	case untrusted && lastOK:
		return last
	case !untrusted && firstOK:
		return first
	}
	return peer
}

// parseForwardedFor reads one X-Forwarded-For entry: an address, possibly
// with a port ("192.0.2.1:5678", "[2001:db8::1]:443"), as some proxies
// write it. Zones are refused: no client address has one.
func parseForwardedFor(e []byte) (netip.Addr, bool) {
	if bytes.IndexByte(e, '%') >= 0 {
		return netip.Addr{}, false
	}
	s := unsafeString(e) // parsed only; nothing keeps it
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
