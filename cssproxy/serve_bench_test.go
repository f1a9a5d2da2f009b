package cssproxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkServe measures Serve on a local-cache hit for the 12 KiB CSS
// (identity, gzip and brotli) and the unhashed 307, from parallel goroutines as
// fasthttp's workers would call it. Run with -benchmem; 0 allocs/op is the
// target (also asserted by allocs_test.go).
func BenchmarkServe(b *testing.B) {
	p, fb, _ := newFakeProxy(b, "")
	fb.set(tid, testCSS(tid, 12<<10), thash)
	hashed := "/resources/" + tid + "/" + thash + ".css"
	serve(p, request{path: hashed})
	packAll(p)
	for _, bc := range []struct {
		name, path, ae string
	}{
		{"hit-12KiB", hashed, ""},
		{"hit-12KiB-gzip", hashed, "gzip, deflate"},
		{"hit-12KiB-br", hashed, "gzip, deflate, br, zstd"},
		{"redirect-307", "/resources/" + tid + ".css", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ctx.Request.Header.SetMethod(fasthttp.MethodGet)
				ctx.Request.SetRequestURI(bc.path)
				if bc.ae != "" {
					ctx.Request.Header.Set("Accept-Encoding", bc.ae)
				}
				scheme, host := []byte("https"), []byte("mosparo.example")
				for pb.Next() {
					ctx.Response.Reset()
					if !p.Serve(&ctx, scheme, host, nil) {
						b.Fatal("Serve = false")
					}
				}
			})
		})
	}
}
