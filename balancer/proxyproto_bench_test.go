package balancer

import (
	"bytes"
	"testing"
)

// BenchmarkProxyHeader is the cost of reading one PROXY header, paid once
// per connection on a proxy_protocol listener (framing, go-proxyproto's
// parse, the client address).
func BenchmarkProxyHeader(b *testing.B) {
	req := []byte("GET /login HTTP/1.1\r\nHost: mosparo.example\r\n\r\n")
	for _, bm := range []struct {
		name   string
		header []byte
	}{
		{"v1", proxyV1("192.0.2.7", "203.0.113.1")},
		{"v2", proxyV2(b, "192.0.2.7:40000", "203.0.113.1:443")},
		{"v2 tlvs", proxyV2(b, "192.0.2.7:40000", "203.0.113.1:443", someTLVs...)},
	} {
		in := append(append([]byte{}, bm.header...), req...)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			var r bytes.Reader
			for b.Loop() {
				r.Reset(in)
				h, _, err := readProxyHeader(&r)
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := proxiedClient(h); !ok {
					b.Fatal("no client")
				}
			}
		})
	}
}
