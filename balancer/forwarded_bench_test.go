package balancer

import (
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkRequestHeaderRewrite is the per-request header work of a typical
// browser request from an untrusted client.
func BenchmarkRequestHeaderRewrite(b *testing.B) {
	var tmpl fasthttp.Request
	tmpl.Header.SetMethod("POST")
	tmpl.SetRequestURI("/api/v1/frontend/check-form-data")
	tmpl.Header.SetHost("mosparo.example")
	for _, kv := range [][2]string{
		{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"},
		{"Accept", "*/*"}, {"Accept-Language", "en-US,en;q=0.5"}, {"Accept-Encoding", "gzip, deflate, br"},
		{"Content-Type", "application/x-www-form-urlencoded"}, {"Origin", "https://shop.example"},
		{"Referer", "https://shop.example/contact"}, {"Connection", "keep-alive"}, {"Sec-Fetch-Mode", "cors"},
	} {
		tmpl.Header.Set(kv[0], kv[1])
	}
	f := forwarder{}
	peer := netip.MustParseAddr("198.51.100.7")
	var req fasthttp.Request
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		tmpl.Header.CopyTo(&req.Header)
		removeHopByHop(&req.Header)
		req.Header.ResetConnectionClose()
		buf = f.apply(&req.Header, peer, false, buf)
	}
}

func BenchmarkResponseHeaderClean(b *testing.B) {
	var tmpl fasthttp.ResponseHeader
	for _, kv := range [][2]string{
		{"Content-Type", "application/json"}, {"Cache-Control", "no-cache, private"}, {"Date", "Fri, 27 Nov 2026 13:00:00 GMT"},
		{"Access-Control-Allow-Origin", "https://shop.example"}, {"Access-Control-Allow-Methods", "POST"}, {"X-Mosparo-Node", "n1"},
	} {
		tmpl.Set(kv[0], kv[1])
	}
	var h fasthttp.ResponseHeader
	b.ReportAllocs()
	for b.Loop() {
		tmpl.CopyTo(&h)
		removeHopByHop(&h)
		h.ResetConnectionClose()
	}
}
