package balancer

import (
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

// The client behind trusted proxies is the right-most X-Forwarded-For entry
// that is not a trusted proxy: what a client writes itself stays to the
// left of its proxy's entry and is ignored (issue 15).
func TestClientAddr(t *testing.T) {
	f := forwarder{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ff::/48")}}
	for _, tt := range []struct {
		name string
		peer string
		xff  []string // one X-Forwarded-For line each
		want string
	}{
		{"untrusted peer: its headers are ignored", "192.0.2.1", []string{"203.0.113.9"}, "192.0.2.1"},
		{"trusted peer without header", "10.0.0.1", nil, "10.0.0.1"},
		{"trusted peer names the client", "10.0.0.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"a spoofed entry left of the proxy's", "10.0.0.1", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"a spoofed line before the proxy's own line (HAProxy forwardfor)", "10.0.0.1", []string{"198.51.100.1", "203.0.113.9"}, "203.0.113.9"},
		{"a chain of trusted proxies is skipped", "10.0.0.1", []string{"198.51.100.1, 203.0.113.9, 10.2.3.4", "10.9.9.9"}, "203.0.113.9"},
		{"all trusted: the left-most", "10.0.0.1", []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1"},
		{"IPv6 and ports", "10.0.0.1", []string{"[2001:db8::7]:4431, 10.0.0.2:80"}, "2001:db8::7"},
		{"IPv4 with a port", "10.0.0.1", []string{"203.0.113.9:5678"}, "203.0.113.9"},
		{"mapped IPv4", "10.0.0.1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"trusted IPv6 proxy", "2001:db8:ff::1", []string{"203.0.113.9, 2001:db8:ff:1::2"}, "203.0.113.9"},
		{"garbage where the client should be: the peer", "10.0.0.1", []string{"203.0.113.9, unknown"}, "10.0.0.1"},
		{"garbage left of the client is ignored", "10.0.0.1", []string{"unknown, 203.0.113.9"}, "203.0.113.9"},
		{"a zone is no client address", "10.0.0.1", []string{"fe80::1%eth0"}, "10.0.0.1"},
		{"empty entries are skipped", "10.0.0.1", []string{" , 203.0.113.9 ,, "}, "203.0.113.9"},
		{"an empty header: the peer", "10.0.0.1", []string{""}, "10.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			h.DisableNormalizing()
			for _, v := range tt.xff {
				h.Add("X-Forwarded-For", v)
			}
			if got := f.clientAddr(&h, netip.MustParseAddr(tt.peer)); got != netip.MustParseAddr(tt.want) {
				t.Errorf("clientAddr(%q from %s) = %s, want %s", tt.xff, tt.peer, got, tt.want)
			}
		})
	}
}
