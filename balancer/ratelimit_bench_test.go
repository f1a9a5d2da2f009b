package balancer

import (
	"strings"
	"testing"
)

// BenchmarkProxyPostFrontendRateLimited is BenchmarkProxyPostFrontend with
// a frontend limit the client stays under: the difference is the limiter's
// cost per forwarded request. The limited variant is the cost of a 429.
func BenchmarkProxyPostFrontendRateLimited(b *testing.B) {
	form := []byte("publicKey=PUBLICKEY_example&submitToken=abc&formData=" + strings.Repeat("x", 440))
	for _, bb := range []struct {
		name, limits string
		want         int
	}{
		{"under the limit", "{rate: 1000000, burst: 1000000}", 200},
		{"over the limit", "{rate: 0.001, burst: 1}", 429},
	} {
		b.Run(bb.name, func(b *testing.B) {
			l := newInmemLB(b, "listen: [{address: \"127.0.0.1:0\"}]\nrate_limits: {frontend: "+bb.limits+"}\n", []byte(`{"valid":true}`), 3, "POST", "/api/v1/frontend/check-form-data", form)
			l.once()
			b.ReportAllocs()
			for b.Loop() {
				if l.once() != bb.want {
					b.Fatal("status")
				}
			}
		})
	}
}
