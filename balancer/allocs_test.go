//go:build !race

package balancer

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The per-request path allocates nothing in steady state (STYLE 6): classify,
// forwarding headers, selection, the upstream exchange and the answer.
func TestProxyAllocations(t *testing.T) {
	page := []byte(strings.Repeat("<p>mosparo</p>", 100))
	form := []byte("publicKey=PUBLICKEY_example&submitToken=abc&formData=" + strings.Repeat("x", 400))
	for _, tt := range []struct {
		name, policy, method, uri string
		body                      []byte
		tcp                       bool
	}{
		{"get least_conn", "least_conn", "GET", "/login", nil, false},
		{"get round_robin", "round_robin", "GET", "/login", nil, false},
		{"get weighted", "weighted", "GET", "/build/mosparo-frontend.js", nil, false},
		{"get client_ip_hash", "client_ip_hash", "GET", "/login", nil, false},
		{"post frontend", "least_conn", "POST", "/api/v1/frontend/check-form-data", form, false},
		// Loopback TCP nodes: the stale check before each reuse peeks at the socket.
		{"get least_conn over tcp", "least_conn", "GET", "/login", nil, true},
		{"post frontend prefixed", "least_conn", "POST", "/public/%69ndex.php/api/v1/frontend/check-form-data?a=%25", form, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newDirectLB(t, "listen: [{address: \"127.0.0.1:0\"}]\nlog: {access_log: false}\nbalancing: {policy: "+tt.policy+"}\n", page, 3, tt.method, tt.uri, tt.body, tt.tcp)
			for i := 0; i < 100; i++ {
				if code := l.once(); code != 200 {
					t.Fatalf("warm-up status %d", code)
				}
			}
			if a := testing.AllocsPerRun(1000, func() { l.once() }); a != 0 {
				t.Errorf("%s: %.2f allocs per request, want 0", tt.name, a)
			}
			enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
			l.srv.rt.Load().deps.AccessLog = zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))
			l.once()
			if a := testing.AllocsPerRun(1000, func() { l.once() }); a != 0 {
				t.Errorf("%s with the access log: %.2f allocs per request, want 0", tt.name, a)
			}
		})
	}
}

// Compressing a proxied answer reuses pooled encoder state and swaps body
// buffers: 0 allocs per request too, as does turning a variant ETag back
// in If-None-Match.
func TestCompressAllocations(t *testing.T) {
	page := []byte(strings.Repeat("<p>mosparo</p>", 300))
	for _, tt := range []struct{ name, ae, inm string }{
		{"br", "gzip, deflate, br", ""},
		{"gzip", "gzip", ""},
		{"identity", "", ""},
		{"br with a variant in If-None-Match", "gzip, br", `"abc-br", "def-gz"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "listen: [{address: \"127.0.0.1:0\"}]\nlog: {access_log: false}\ncompression: {enabled: true}\n"
			l := newDirectLB(t, yaml, page, 2, "GET", "/login", nil, false)
			if tt.ae != "" {
				l.tmpl.Header.Set("Accept-Encoding", tt.ae)
			}
			if tt.inm != "" {
				l.tmpl.Header.Set("If-None-Match", tt.inm)
			}
			for i := 0; i < 100; i++ {
				if code := l.once(); code != 200 {
					t.Fatalf("warm-up status %d", code)
				}
			}
			if ce := string(l.ctx.Response.Header.ContentEncoding()); (ce != "") != (tt.ae != "") {
				t.Fatalf("Content-Encoding %q for Accept-Encoding %q", ce, tt.ae)
			}
			if a := testing.AllocsPerRun(1000, func() { l.once() }); a != 0 {
				t.Errorf("%.2f allocs per request, want 0", a)
			}
		})
	}
}

// With rate_limits on, a known client under its limit and one over it
// (answered 429 by the LB) cost no allocation either (issue 15); the
// trusted-proxy case parses X-Forwarded-For on every request.
func TestRateLimitAllocations(t *testing.T) {
	form := []byte("publicKey=PUBLICKEY_example&submitToken=abc&formData=x")
	for _, tt := range []struct {
		name, limits string
		want         int
	}{
		{"under the limit", "{rate: 1000000, burst: 1000000}", 200},
		{"over the limit", "{rate: 0.001, burst: 1}", 429},
		{"over the limit, delay answer", "{rate: 0.001, burst: 1}, frontend_answer: delay", 200},
	} {
		for _, trusted := range []string{"", "trusted_proxies: [198.51.100.0/24]\n"} {
			t.Run(fmt.Sprintf("%s trusted=%v", tt.name, trusted != ""), func(t *testing.T) {
				yaml := "listen: [{address: \"127.0.0.1:0\"}]\nlog: {access_log: false}\n" + trusted + "rate_limits: {frontend: " + tt.limits + "}\n"
				l := newDirectLB(t, yaml, []byte("{}"), 2, "POST", "/api/v1/frontend/check-form-data", form, false)
				l.once()
				for i := 0; i < 100; i++ {
					if code := l.once(); code != tt.want {
						t.Fatalf("warm-up status %d, want %d", code, tt.want)
					}
				}
				if a := testing.AllocsPerRun(1000, func() { l.once() }); a != 0 {
					t.Errorf("%.2f allocs per request, want 0", a)
				}
			})
		}
	}
}
