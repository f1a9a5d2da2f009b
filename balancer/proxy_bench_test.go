package balancer

import (
	"strings"
	"testing"
)

func BenchmarkProxyGet(b *testing.B) {
	page := []byte(strings.Repeat("<p>mosparo</p>", 150))
	l := newInmemLB(b, "listen: [{address: \"127.0.0.1:0\"}]\n", page, 3, "GET", "/login", nil)
	b.ReportAllocs()
	for b.Loop() {
		if l.once() != 200 {
			b.Fatal("status")
		}
	}
}

// BenchmarkProxyGetTCP is BenchmarkProxyGet with nodes on loopback TCP: it
// includes the kernel and the stale check before each connection reuse.
func BenchmarkProxyGetTCP(b *testing.B) {
	page := []byte(strings.Repeat("<p>mosparo</p>", 150))
	l := newDirectLB(b, "listen: [{address: \"127.0.0.1:0\"}]\n", page, 3, "GET", "/login", nil, true)
	b.ReportAllocs()
	for b.Loop() {
		if l.once() != 200 {
			b.Fatal("status")
		}
	}
}

func BenchmarkProxyPostFrontend(b *testing.B) {
	form := []byte("publicKey=PUBLICKEY_example&submitToken=abc&formData=" + strings.Repeat("x", 440))
	l := newInmemLB(b, "listen: [{address: \"127.0.0.1:0\"}]\n", []byte(`{"valid":true}`), 3, "POST", "/api/v1/frontend/check-form-data", form)
	b.ReportAllocs()
	for b.Loop() {
		if l.once() != 200 {
			b.Fatal("status")
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	p := []byte("/api/v1/frontend/check-form-data")
	b.ReportAllocs()
	for b.Loop() {
		_ = Classify(p)
	}
}
