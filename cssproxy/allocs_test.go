//go:build !race

package cssproxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestServeHitAllocatesNothing: a cache hit (200, gzip, brotli, 304 and 307) must
// not allocate in steady state (STYLE.md 10). The RequestCtx is reused the
// way fasthttp's server reuses it between requests.
func TestServeHitAllocatesNothing(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	fb.set(tid, testCSS(tid, 12<<10), thash)
	hashed := "/resources/" + tid + "/" + thash + ".css"
	_, first := serve(p, request{path: hashed})
	packAll(p)
	etag := string(first.Header.Peek("ETag"))
	for _, tc := range []struct {
		name, path string
		header     [2]string
		status     int
	}{
		{"200", hashed, [2]string{}, 200},
		{"200 gzip", hashed, [2]string{"Accept-Encoding", "gzip, deflate"}, 200},
		{"200 br", hashed, [2]string{"Accept-Encoding", "gzip, deflate, br, zstd"}, 200},
		{"200 hostile Accept-Encoding", hashed, [2]string{"Accept-Encoding", "br;q=0.x, gzip;q=1.5, *;q=0.1"}, 200},
		{"200 If-None-Match other", hashed, [2]string{"If-None-Match", `"x", W/"y"`}, 200},
		{"304", hashed, [2]string{"If-None-Match", `"x", W/` + etag}, 304},
		{"307", "/resources/" + tid + ".css", [2]string{}, 307},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(fasthttp.MethodGet)
			ctx.Request.SetRequestURI(tc.path)
			if tc.header[0] != "" {
				ctx.Request.Header.Set(tc.header[0], tc.header[1])
			}
			scheme, host := []byte("https"), []byte("mosparo.example")
			run := func() {
				ctx.Response.Reset()
				if !p.Serve(&ctx, scheme, host, nil) {
					t.Fatal("Serve = false")
				}
			}
			run() // fill the local cache and fasthttp's buffers
			if got := ctx.Response.StatusCode(); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			if ce := string(ctx.Response.Header.ContentEncoding()); tc.name == "200 br" && ce != "br" {
				t.Fatalf("Content-Encoding %q, want br", ce)
			}
			if n := testing.AllocsPerRun(1000, run); n != 0 {
				t.Errorf("Serve allocates %.1f times per hit, want 0", n)
			}
		})
	}
}

// TestCoherentRedirectAllocatesNothing: with the coherence check on, the
// 307 of an agreeing project and Observe of a node's agreeing answer
// allocate nothing in steady state.
func TestCoherentRedirectAllocatesNothing(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "  coherence_interval: 1h\n")
	fb.set(tid, testCSS(tid, 12<<10), thash)
	path := "/resources/" + tid + ".css"
	if ok, _ := serve(p, request{path: path}); ok {
		t.Fatal("the first unhashed request must be the check")
	}
	var node fasthttp.RequestCtx
	node.Request.Header.SetMethod(fasthttp.MethodGet)
	node.Request.SetRequestURI(path)
	node.Response.SetStatusCode(fasthttp.StatusTemporaryRedirect)
	node.Response.Header.Set("Location", "https://mosparo.example/resources/"+tid+"/"+thash+".css")
	p.Observe(&node)
	if n := testing.AllocsPerRun(1000, func() { p.Observe(&node) }); n != 0 {
		t.Errorf("Observe allocates %.1f times, want 0", n)
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI(path)
	scheme, host := []byte("https"), []byte("mosparo.example")
	run := func() {
		ctx.Response.Reset()
		if !p.Serve(&ctx, scheme, host, nil) {
			t.Fatal("Serve = false")
		}
	}
	run()
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("Serve allocates %.1f times per coherent 307, want 0", n)
	}
}
