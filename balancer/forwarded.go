package balancer

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"
)

// forwarder applies the forwarding rule of DESIGN.md step 5. It is built once
// per runtime and read concurrently.
type forwarder struct {
	trusted []netip.Prefix
	prefix  []byte   // edge.forwarded_prefix, sent as X-Forwarded-Prefix
	strip   *nameSet // nil: defaultStrip
}

// strippedHeaders are dropped from an untrusted peer. mosparo's Symfony
// trusts the first four from a trusted proxy (FACTS 4); the rest are dropped
// so no later hop can be fooled either.
var strippedHeaders = []string{
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
	"Forwarded", "X-Real-Ip", "X-Client-Ip",
}

// clientIPHeaders are where CDNs and proxies name the client. mosparo's
// admin UI can make PHP copy one of them over X-Forwarded-For (FACTS 11.6),
// so a client sending one through the LB would choose its own address.
var clientIPHeaders = []string{
	"CF-Connecting-IP", "True-Client-IP", "Fastly-Client-IP", "X-Cluster-Client-IP",
	"CloudFront-Viewer-Address", "X-Original-Forwarded-For",
}

// alwaysStripped go from every peer, trusted or not: Proxy is never a
// request header, and CGI turns it into HTTP_PROXY, the proxy setting of
// PHP's HTTP clients (httpoxy, CVE-2016-5385).
var alwaysStripped = []string{"Proxy"}

var defaultStrip = newNameSet(nil)

var xForwardedPrefix = []byte("x-forwarded-")

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
	buf = f.stripSet().remove(h, trusted, buf)
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

func (f *forwarder) stripSet() *nameSet {
	if f.strip != nil {
		return f.strip
	}
	return defaultStrip
}

// nameSet matches header names as PHP and other CGI-style servers read
// them: case-insensitively and with '_' the same as '-' (both become
// HTTP_CF_CONNECTING_IP), so "cf_connecting_ip" is as dangerous as
// "CF-Connecting-IP" (issue 11, item 5). Names are kept lower-case with
// '-', indexed by length: most requests carry none of them, and a name of
// another length costs one comparison.
type nameSet struct {
	byLen  map[int][]setName
	maxLen int
}

type setName struct {
	name   string
	always bool // stripped from trusted peers too
}

// newNameSet is the fixed lists plus the operator's extra names
// (strip_client_ip_headers).
func newNameSet(extra []string) *nameSet {
	s := &nameSet{byLen: map[int][]setName{}}
	add := func(names []string, always bool) {
		for _, n := range names {
			n = strings.ReplaceAll(strings.ToLower(n), "_", "-")
			s.byLen[len(n)] = append(s.byLen[len(n)], setName{n, always})
			s.maxLen = max(s.maxLen, len(n))
		}
	}
	add(strippedHeaders, false)
	add(clientIPHeaders, false)
	add(extra, false)
	add(alwaysStripped, true)
	return s
}

// match reports whether header name k is to be stripped from a peer that
// is (or is not) trusted: a listed name, or any X-Forwarded-* from an
// untrusted peer.
func (s *nameSet) match(k []byte, trusted bool) bool {
	if !trusted && len(k) > len(xForwardedPrefix) && foldDash(k[:len(xForwardedPrefix)], string(xForwardedPrefix)) {
		return true
	}
	if len(k) > s.maxLen {
		return false
	}
	for _, n := range s.byLen[len(k)] {
		if (!trusted || n.always) && foldDash(k, n.name) {
			return true
		}
	}
	return false
}

// foldDash compares k with the lower-case name, ASCII case folded and '_'
// read as '-'. len(k) == len(name).
func foldDash(k []byte, name string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// remove deletes every header s matches, one name per pass: fasthttp cannot
// delete while its headers are ranged over, and the name must be copied
// out (into buf, returned for reuse) before the deletion moves it. An
// honest request takes one pass and allocates nothing.
func (s *nameSet) remove(h *fasthttp.RequestHeader, trusted bool, buf []byte) []byte {
	// Bounded: each pass deletes a header, should one ever survive its
	// deletion the loop still ends.
	for range h.Len() + 1 {
		buf = buf[:0]
		for k := range h.All() {
			if s.match(k, trusted) {
				buf = append(buf, k...)
				break
			}
		}
		if len(buf) == 0 {
			return buf
		}
		h.DelBytes(buf)
	}
	return buf[:0]
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
