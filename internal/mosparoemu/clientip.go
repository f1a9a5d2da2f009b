package mosparoemu

import (
	"bytes"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// trustedProxies is Symfony's Request::$trustedProxies after setTrustedProxies (FACTS 4): the
// keyword REMOTE_ADDR trusts whatever peer connects, PRIVATE_SUBNETS expands to Symfony's list,
// other entries are IPs or CIDRs; entries that parse as neither never match.
type trustedProxies struct {
	remoteAddr bool
	prefixes   []netip.Prefix
}

// privateSubnets is Symfony's IpUtils::PRIVATE_SUBNETS (HttpFoundation >= 6.3).
var privateSubnets = [...]string{
	"127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "169.254.0.0/16",
	"0.0.0.0/8", "240.0.0.0/4", "::1/128", "fc00::/7", "fe80::/10", "::ffff:0:0/96", "::/128",
}

// parseTrustedProxies takes the TRUSTED_PROXIES entries; FrameworkBundle trims each of them.
func parseTrustedProxies(entries []string) trustedProxies {
	var t trustedProxies
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch e {
		case "":
		case "REMOTE_ADDR":
			t.remoteAddr = true
		case "PRIVATE_SUBNETS":
			for _, s := range privateSubnets {
				t.prefixes = append(t.prefixes, netip.MustParsePrefix(s))
			}
		default:
			if p, ok := parseIPOrCIDR(e); ok {
				t.prefixes = append(t.prefixes, p)
			}
		}
	}
	return t
}

func parseIPOrCIDR(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// trusts reports IpUtils::checkIp(ip, trustedProxies); peer is REMOTE_ADDR, which the
// REMOTE_ADDR keyword adds to the list. Address families never match across (checkIp4/6).
func (t *trustedProxies) trusts(ip, peer netip.Addr) bool {
	if t.remoteAddr && ip == peer {
		return true
	}
	for _, p := range t.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// requestIP is the outcome of Symfony's proxy resolution for one request.
type requestIP struct {
	peer        netip.Addr // REMOTE_ADDR
	peerTrusted bool       // isFromTrustedProxy()
	client      netip.Addr // getClientIp() parsed
	// clientText is getClientIp() as the string PHP compares against allow lists: the
	// X-Forwarded-For entry as sent (trimmed, port/brackets removed) or REMOTE_ADDR.
	clientText []byte
}

// resolveClientIP computes getClientIp() per FACTS 4: without a trusted peer REMOTE_ADDR; else
// the right-most X-Forwarded-For entry (REMOTE_ADDR appended to the chain) that is a valid IP
// and not trusted; if every entry is trusted, the left-most trusted one. buf receives
// REMOTE_ADDR's text; the result may alias buf or the request's header bytes and must not
// outlive the handler.
func (t *trustedProxies) resolveClientIP(ctx *fasthttp.RequestCtx, buf []byte) requestIP {
	var r requestIP
	if ip := ctx.RemoteIP(); ip != nil {
		r.peer, _ = netip.AddrFromSlice(ip)
		r.peer = r.peer.Unmap() // Go reports IPv4 peers of dual-stack sockets as 16-byte slices
	}
	r.client = r.peer
	r.clientText = r.peer.AppendTo(buf[:0])
	if !r.peer.IsValid() || !t.trusts(r.peer, r.peer) {
		return r
	}
	r.peerTrusted = true
	// Walk the chain right to left: REMOTE_ADDR (already known trusted) was appended last.
	leftmostTrusted, leftmostText := r.peer, r.clientText
	values := ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor)
	for li := len(values) - 1; li >= 0; li-- {
		v := values[li]
		for len(v) > 0 {
			var entry []byte
			if i := bytes.LastIndexByte(v, ','); i >= 0 {
				entry, v = v[i+1:], v[:i]
			} else {
				entry, v = v, nil
			}
			text := normalizeForwardedIP(entry)
			ip, ok := parseClientIP(text)
			if !ok {
				continue // FILTER_VALIDATE_IP failed: dropped from the chain
			}
			if !t.trusts(ip, r.peer) {
				r.client, r.clientText = ip, text
				return r
			}
			leftmostTrusted, leftmostText = ip, text
		}
	}
	r.client, r.clientText = leftmostTrusted, leftmostText
	return r
}

// normalizeForwardedIP mirrors Request::normalizeAndFilterClientIps' text handling: trim, strip
// ":port" from IPv4 (a '.' after position 0 and a ':' after position 0), strip "[...]:port"
// brackets from IPv6.
func normalizeForwardedIP(b []byte) []byte {
	b = bytes.Trim(b, " \t\n\r\x00\x0b")
	if bytes.IndexByte(b, '.') > 0 {
		if i := bytes.IndexByte(b, ':'); i > 0 {
			b = b[:i]
		}
	} else if len(b) > 0 && b[0] == '[' {
		if i := bytes.IndexByte(b[1:], ']'); i >= 0 {
			b = b[1 : i+1]
		} else if len(b) >= 2 {
			b = b[1 : len(b)-1] // substr($ip, 1, false - 1): PHP drops the last byte
		} else {
			b = nil
		}
	}
	return b
}

// parseClientIP mirrors filter_var(FILTER_VALIDATE_IP): plain IPv4 or IPv6, no zone.
func parseClientIP(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	// The bytes are not modified while the string is alive; this avoids one allocation per
	// X-Forwarded-For entry on the health path (STYLE 6: zero-copy only for unchanged bytes).
	ip, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}

// allowList is MOSPARO_HEALTH_ALLOW_LIST as IpUtil parses it (FACTS 1.2): split on "," and
// newlines, no trimming; an entry with "/" is a subnet of the same address family, any other
// entry must equal the client IP string exactly; an empty list allows everyone.
type allowList struct {
	all     bool
	exact   [][]byte
	subnets []netip.Prefix
}

func parseAllowList(s string) allowList {
	if s == "" {
		return allowList{all: true}
	}
	var l allowList
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if strings.Contains(e, "/") {
			if p, err := netip.ParsePrefix(e); err == nil {
				l.subnets = append(l.subnets, p.Masked())
			}
			continue
		}
		l.exact = append(l.exact, []byte(e))
	}
	return l
}

func (l *allowList) allows(r *requestIP) bool {
	if l.all {
		return true
	}
	for _, e := range l.exact {
		if bytes.Equal(e, r.clientText) {
			return true
		}
	}
	for _, p := range l.subnets {
		if p.Contains(r.client) {
			return true
		}
	}
	return false
}
