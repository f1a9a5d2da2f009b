package balancer

import (
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestClientFacingAsSymfony: the scheme, host and prefix of the edge's
// absolute URLs are the ones Symfony derives (FACTS 11.7).
func TestClientFacingAsSymfony(t *testing.T) {
	trusted := netip.MustParseAddr("10.0.0.1")
	stranger := netip.MustParseAddr("198.51.100.7")
	f := &forwarder{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, prefix: []byte("/edge/")}
	tests := []struct {
		name    string
		peer    netip.Addr
		tls     bool
		host    string
		headers []string
		want    string
	}{
		{"plain", stranger, false, "Mosparo.Example", nil, "http://mosparo.example/edge"},
		{"default port dropped", stranger, true, "mosparo.example:443", nil, "https://mosparo.example/edge"},
		{"other port kept", stranger, false, "mosparo.example:8080", nil, "http://mosparo.example:8080/edge"},
		{"untrusted headers ignored", stranger, false, "a", []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil"}, "http://a/edge"},
		{"proto on", trusted, false, "a", []string{"X-Forwarded-Proto", "on"}, "https://a/edge"},
		{"proto ssl", trusted, false, "a", []string{"X-Forwarded-Proto", "SSL"}, "https://a/edge"},
		{"proto 1", trusted, false, "a", []string{"X-Forwarded-Proto", "1"}, "https://a/edge"},
		{"proto list", trusted, true, "a", []string{"X-Forwarded-Proto", " http , https"}, "http://a/edge"},
		{"proto unknown", trusted, true, "a", []string{"X-Forwarded-Proto", "gopher"}, "http://a/edge"},
		{"host list and port", trusted, false, "a", []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "Forms.Example:443, b"}, "https://forms.example/edge"},
		{"ipv6 host", trusted, false, "a", []string{"X-Forwarded-Host", "[2001:DB8::1]:80"}, "http://[2001:db8::1]/edge"},
		{"prefix first value", trusted, false, "a", []string{"X-Forwarded-Prefix", " /sub/ , /other"}, "http://a/sub"},
	}
	for _, tt := range tests {
		var h fasthttp.RequestHeader
		h.SetHost(tt.host)
		for i := 0; i+1 < len(tt.headers); i += 2 {
			h.Set(tt.headers[i], tt.headers[i+1])
		}
		scheme, host, prefix, _ := f.clientFacing(&h, tt.peer, tt.tls, nil)
		if got := string(scheme) + "://" + string(host) + string(prefix); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
