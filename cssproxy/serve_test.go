package cssproxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	brrr "github.com/molecule-man/go-brrr"
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"github.com/mosparo-lb/mosparo-lb/internal/contentcoding"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/zap"
)

// fakeBackend answers lookups from a map; unit tests of Serve use it, the
// real readers are covered against real servers in redis_test.go and
// memcached_test.go.
type fakeBackend struct {
	mu      sync.Mutex
	designs map[projectID][2][]byte // content, hash
	err     error
	delay   time.Duration
	tracked bool
	calls   atomic.Int64
}

func (f *fakeBackend) name() string      { return "fake" }
func (f *fakeBackend) invalidates() bool { return f.tracked }
func (f *fakeBackend) run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (f *fakeBackend) ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeBackend) lookup(ctx context.Context, id projectID) ([]byte, []byte, error) {
	f.calls.Add(1)
	f.mu.Lock()
	d, err, delay := f.designs[id], f.err, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return d[0], d[1], nil
}

func (f *fakeBackend) set(id string, css []byte, hash string) {
	pid, ok := parseProjectID([]byte(id))
	if !ok {
		panic("bad test id " + id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.designs == nil {
		f.designs = map[projectID][2][]byte{}
	}
	f.designs[pid] = [2][]byte{css, []byte(hash)}
}

// newFakeProxy is a Proxy built by New (config defaults, validation) with
// its backend swapped for a fake.
func newFakeProxy(t testing.TB, extra string) (*Proxy, *fakeBackend, *clocktest.Manual) {
	t.Helper()
	clk := clocktest.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	p, err := New(testConfig(t, "memcached", "memcached://127.0.0.1:1", extra), Options{Logger: zap.NewNop(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{}
	p.backend = fb
	return p, fb, clk
}

const (
	tid   = "0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a"
	thash = "6749ae57306090f7074cca77afc8740e547552aea6c4dfdd7c852a97cfc1371b"
)

func TestServeHashedCSS(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	css := testCSS(tid, 12<<10)
	fb.set(tid, css, thash)
	ok, resp := serve(p, request{path: "/resources/" + tid + "/" + thash + ".css"})
	if !ok {
		t.Fatal("Serve = false, want true")
	}
	for k, want := range map[string]string{
		"Content-Type":                "text/css; charset=UTF-8",
		"Access-Control-Allow-Origin": "*",
		"Cache-Control":               "max-age=31536000, public",
		"Vary":                        "Accept-Encoding",
	} {
		if got := string(resp.Header.Peek(k)); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), css) {
		t.Errorf("got %d with %d bytes, want 200 with the CSS", resp.StatusCode(), len(resp.Body()))
	}
	if len(resp.Header.Peek("Content-Encoding")) != 0 {
		t.Error("gzip sent to a client that did not ask for it")
	}
	if etag := resp.Header.Peek("ETag"); len(etag) < 3 || etag[0] != '"' {
		t.Errorf("ETag = %q, want a strong tag", etag)
	}
}

// TestServeCompressed: the entry's precompressed forms go to the clients
// that accept them, each with its own ETag, and decode to the CSS.
func TestServeCompressed(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	css := testCSS(tid, 12<<10)
	fb.set(tid, css, thash)
	path := "/resources/" + tid + "/" + thash + ".css"
	_, plain := serve(p, request{path: path, header: map[string]string{"Accept-Encoding": "br"}})
	if string(plain.Header.Peek("Content-Encoding")) != "" || string(plain.Header.Peek("Vary")) != "Accept-Encoding" {
		t.Error("before its forms are made, the entry is served as it is, with Vary")
	}
	packAll(p)
	tags := map[string]string{"": string(plain.Header.Peek("ETag"))}
	for _, tc := range []struct {
		ae, want string
	}{
		{"gzip, deflate, br", "br"},
		{"gzip, deflate, br, zstd", "br"},
		{"br;q=1.0, GZIP;q=0.5", "br"},
		{"br;q=0.5, gzip", "gzip"},
		{"x-gzip", "gzip"},
		{"*", "br"},
		{"*;q=0", ""},
		{"identity;q=0", ""},
		{"gzip;q=0", ""},
		{"gzip; q=0.000, br", "br"},
		{"br", "br"},
		{"deflate", ""},
		{"", ""},
		{"gzip;q=1.5, br;q=x", ""},
	} {
		t.Run(tc.ae, func(t *testing.T) {
			ok, resp := serve(p, request{path: path, header: map[string]string{"Accept-Encoding": tc.ae}})
			if !ok {
				t.Fatal("Serve = false")
			}
			ce := string(resp.Header.Peek("Content-Encoding"))
			if ce != tc.want {
				t.Fatalf("Accept-Encoding %q: Content-Encoding %q, want %q", tc.ae, ce, tc.want)
			}
			if v := string(resp.Header.Peek("Vary")); v != "Accept-Encoding" {
				t.Errorf("Vary %q", v)
			}
			if got := decodeBody(t, ce, resp.Body()); !bytes.Equal(got, css) {
				t.Errorf("%q decodes to %d bytes, want the CSS", ce, len(got))
			}
			etag := string(resp.Header.Peek("ETag"))
			if old, seen := tags[ce]; seen && old != etag {
				t.Errorf("%q: ETag %s, earlier %s", ce, etag, old)
			}
			tags[ce] = etag
		})
	}
	if len(tags) != 3 || tags["br"] == tags["gzip"] || tags["br"] == tags[""] || tags["gzip"] == tags[""] {
		t.Errorf("want three distinct ETags, got %v", tags)
	}
}

// decodeBody undoes a Content-Encoding with decoders other than the
// encoders that made it.
func decodeBody(t *testing.T, ce string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch ce {
	case "":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brrr.NewReader(bytes.NewReader(b))
	default:
		t.Fatalf("Content-Encoding %q", ce)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestServeSmallCSSHasNoGzip(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	fb.set(tid, []byte(".a{}"), thash)
	serve(p, request{path: "/resources/" + tid + "/" + thash + ".css"})
	packAll(p)
	ok, resp := serve(p, request{path: "/resources/" + tid + "/" + thash + ".css", header: map[string]string{"Accept-Encoding": "gzip"}})
	if !ok || string(resp.Body()) != ".a{}" || len(resp.Header.Peek("Content-Encoding")) != 0 || len(resp.Header.Peek("Vary")) != 0 {
		t.Errorf("ok=%v body %q encoding %q vary %q", ok, resp.Body(), resp.Header.Peek("Content-Encoding"), resp.Header.Peek("Vary"))
	}
}

func TestServeIfNoneMatch(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	fb.set(tid, testCSS(tid, 4096), thash)
	path := "/resources/" + tid + "/" + thash + ".css"
	_, first := serve(p, request{path: path})
	packAll(p)
	etag := string(first.Header.Peek("ETag"))
	_, gz := serve(p, request{path: path, header: map[string]string{"Accept-Encoding": "gzip"}})
	gzTag := string(gz.Header.Peek("ETag"))
	_, br := serve(p, request{path: path, header: map[string]string{"Accept-Encoding": "br"}})
	brTag := string(br.Header.Peek("ETag"))
	for _, tc := range []struct {
		name, inm string
		want      int
	}{
		{"same tag", etag, 304},
		{"weak form", "W/" + etag, 304},
		{"in a list", `"nope", ` + etag, 304},
		{"gzip tag", gzTag, 304},
		{"brotli tag", brTag, 304},
		{"weak brotli tag", "W/" + brTag, 304},
		{"star", "*", 304},
		{"other tag", `"nope"`, 200},
		{"garbage", `nope, "unterminated`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, resp := serve(p, request{path: path, header: map[string]string{"If-None-Match": tc.inm}})
			if !ok || resp.StatusCode() != tc.want {
				t.Fatalf("If-None-Match %q: %v %d, want %d", tc.inm, ok, resp.StatusCode(), tc.want)
			}
			if tc.want == 304 {
				if len(resp.Body()) != 0 || string(resp.Header.Peek("ETag")) != etag ||
					string(resp.Header.Peek("Cache-Control")) != "max-age=31536000, public" {
					t.Errorf("304 body %d bytes, ETag %q, Cache-Control %q", len(resp.Body()), resp.Header.Peek("ETag"), resp.Header.Peek("Cache-Control"))
				}
			}
		})
	}
	// Each coding's 304 carries the ETag of the form that client gets.
	for ae, want := range map[string]string{"br": brTag, "gzip": gzTag, "": etag} {
		_, resp := serve(p, request{path: path, header: map[string]string{"If-None-Match": gzTag + ", " + brTag + ", " + etag, "Accept-Encoding": ae}})
		if resp.StatusCode() != 304 || string(resp.Header.Peek("ETag")) != want || string(resp.Header.Peek("Vary")) != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: %d, ETag %q, Vary %q; want 304, %s", ae, resp.StatusCode(), resp.Header.Peek("ETag"), resp.Header.Peek("Vary"), want)
		}
	}
	if s := p.Stats(); s.NotModified != 10 {
		t.Errorf("Stats.NotModified = %d, want 10", s.NotModified)
	}
}

func TestServeRedirect(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	fb.set(tid, []byte(".a{}"), thash)
	for _, tc := range []struct {
		scheme, host, prefix, want string
	}{
		{"https", "mosparo.example", "", "https://mosparo.example/resources/" + tid + "/" + thash + ".css"},
		{"http", "10.0.0.1:8080", "/mosparo", "http://10.0.0.1:8080/mosparo/resources/" + tid + "/" + thash + ".css"},
	} {
		ok, resp := serve(p, request{path: "/resources/" + tid + ".css", scheme: tc.scheme, host: tc.host, prefix: tc.prefix})
		if !ok || resp.StatusCode() != 307 {
			t.Fatalf("Serve = %v %d, want true 307", ok, resp.StatusCode())
		}
		if got := string(resp.Header.Peek("Location")); got != tc.want {
			t.Errorf("Location = %q, want %q", got, tc.want)
		}
		if got := string(resp.Header.Peek("Cache-Control")); got != "no-cache, public" {
			t.Errorf("Cache-Control = %q, want %q", got, "no-cache, public")
		}
		if len(resp.Body()) != 0 {
			t.Errorf("307 body %q, want none", resp.Body())
		}
	}
}

// TestServeDeclines lists what must go to a node, with the response left
// untouched.
func TestServeDeclines(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	fb.set(tid, []byte(".a{}"), thash)
	other := "1c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f"
	for _, tc := range []struct {
		name   string
		method string
		path   string
	}{
		{"POST", "POST", "/resources/" + tid + "/" + thash + ".css"},
		{"OPTIONS", "OPTIONS", "/resources/" + tid + ".css"},
		{"hash mismatch", "GET", "/resources/" + tid + "/" + thash[1:] + "0.css"},
		{"unknown project", "GET", "/resources/" + other + ".css"},
		{"logo", "GET", "/resources/logo.svg"},
		{"url route", "GET", "/resources/" + tid + "/url"},
		{"upper-case uuid", "GET", "/resources/0B6E2A1C-7D3F-4E5A-9C8B-1F2E3D4C5B6A.css"},
		{"empty hash", "GET", "/resources/" + tid + "/.css"},
		{"nested", "GET", "/resources/" + tid + "/a/b.css"},
		{"other path", "GET", "/api/v1/health/check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(tc.method)
			ctx.Request.SetRequestURI(tc.path)
			ctx.Response.Header.Set("X-Untouched", "1")
			if p.Serve(&ctx, []byte("https"), []byte("h"), nil) {
				t.Fatal("Serve = true, want false")
			}
			if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) != 0 ||
				string(ctx.Response.Header.Peek("X-Untouched")) != "1" || len(ctx.Response.Header.Peek("Location")) != 0 {
				t.Errorf("response touched: %s", ctx.Response.String())
			}
		})
	}
}

func TestServeCorruptHashIsAMiss(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	// A hash that would inject a header must never reach Location.
	fb.set(tid, []byte(".a{}"), "abc\r\nSet-Cookie: x=1")
	if ok, _ := serve(p, request{path: "/resources/" + tid + ".css"}); ok {
		t.Error("Serve = true for a hash with CR LF")
	}
	if s := p.Stats(); s.Errors != 1 || s.Misses != 1 {
		t.Errorf("Stats = %+v, want 1 error, 1 miss", s)
	}
}

func TestServeCollapsesConcurrentMisses(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "  timeout: 1s\n")
	fb.set(tid, []byte(".a{}"), thash)
	fb.delay = 50 * time.Millisecond
	var wg sync.WaitGroup
	var served atomic.Int64
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := serve(p, request{path: "/resources/" + tid + "/" + thash + ".css"}); ok {
				served.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := fb.calls.Load(); n != 1 {
		t.Errorf("lookups = %d, want 1 for 32 concurrent misses", n)
	}
	if served.Load() != 32 {
		t.Errorf("served %d of 32", served.Load())
	}
}

func TestServeRevalidatesInBackground(t *testing.T) {
	p, fb, clk := newFakeProxy(t, "  revalidate_interval: 2s\n  max_stale: 10s\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	fb.set(tid, []byte(".a{}"), thash)
	path := "/resources/" + tid + ".css"
	serve(p, request{path: path})
	fb.set(tid, []byte(".b{}"), "00ff")
	clk.Advance(time.Second)
	if _, resp := serve(p, request{path: path}); !bytes.HasSuffix(resp.Header.Peek("Location"), []byte(thash+".css")) {
		t.Fatalf("fresh entry: Location %q, want the old hash", resp.Header.Peek("Location"))
	}
	if n := fb.calls.Load(); n != 1 {
		t.Fatalf("lookups while fresh = %d, want 1", n)
	}
	clk.Advance(1500 * time.Millisecond)
	// Stale: served at once from the old copy, refreshed in the background.
	if ok, resp := serve(p, request{path: path}); !ok || !bytes.HasSuffix(resp.Header.Peek("Location"), []byte(thash+".css")) {
		t.Fatalf("stale entry: ok=%v Location %q, want the old copy", ok, resp.Header.Peek("Location"))
	}
	waitFor(t, func() bool {
		_, resp := serve(p, request{path: path})
		return bytes.HasSuffix(resp.Header.Peek("Location"), []byte("/00ff.css"))
	})
	if n := fb.calls.Load(); n != 2 {
		t.Errorf("lookups = %d, want 2 (one background revalidation)", n)
	}
}

func TestServeStaleBeyondMaxStaleFallsThrough(t *testing.T) {
	p, fb, clk := newFakeProxy(t, "  revalidate_interval: 1s\n  max_stale: 5s\n  breaker: {failures: 1, cooldown: 1m}\n")
	fb.set(tid, []byte(".a{}"), thash)
	path := "/resources/" + tid + "/" + thash + ".css"
	serve(p, request{path: path})
	fb.mu.Lock()
	fb.err = errors.New("connection refused")
	fb.mu.Unlock()
	clk.Advance(3 * time.Second) // stale, within max_stale: still served
	if ok, _ := serve(p, request{path: path}); !ok {
		t.Error("stale within max_stale: Serve = false, want true")
	}
	clk.Advance(4 * time.Second) // past 1s + 5s
	if ok, _ := serve(p, request{path: path}); ok {
		t.Error("past max_stale with the cache down: Serve = true, want false")
	}
	if s := p.Stats(); s.Breaker != "open" {
		t.Errorf("breaker = %s, want open", s.Breaker)
	}
}

func TestServeSlowCacheBoundedByTimeout(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "  timeout: 10ms\n")
	fb.set(tid, []byte(".a{}"), thash)
	fb.delay = time.Second
	start := time.Now()
	if ok, _ := serve(p, request{path: "/resources/" + tid + ".css"}); ok {
		t.Error("Serve = true with a cache slower than the timeout")
	}
	// Not ok already shows the 10ms timeout cut the 1s lookup; the bound
	// only tells a hang.
	if d := time.Since(start); d > hangGuard {
		t.Errorf("Serve took %s with a 10ms timeout", d)
	}
}

// TestServeOverFastHTTP runs Serve inside a real fasthttp server, over an
// in-memory connection kept alive across requests, with a fallback handler
// standing in for the node, as the balancer wires it.
func TestServeOverFastHTTP(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	css := testCSS(tid, 12<<10)
	fb.set(tid, css, thash)
	var fellThrough atomic.Int64
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if p.Serve(ctx, []byte("https"), ctx.Host(), nil) {
			return
		}
		fellThrough.Add(1)
		ctx.SetStatusCode(404)
		ctx.SetBodyString("from node")
	}}
	pc := fasthttputil.NewPipeConns()
	client := pc.Conn1()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(pc.Conn2()) }()
	defer func() {
		client.Close()
		<-done
	}()
	br, bw := bufio.NewReader(client), bufio.NewWriter(client)

	do := func(method, path string, hdr ...string) *fasthttp.Response {
		t.Helper()
		var req fasthttp.Request
		resp := &fasthttp.Response{}
		req.Header.SetMethod(method)
		req.SetRequestURI(path)
		req.Header.SetHost("lb.example")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		if err := req.Write(bw); err != nil {
			t.Fatalf("%s %s: write: %v", method, path, err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		resp.SkipBody = method == fasthttp.MethodHead
		if err := resp.Read(br); err != nil {
			t.Fatalf("%s %s: read: %v", method, path, err)
		}
		return resp
	}
	hashed := "/resources/" + tid + "/" + thash + ".css"
	if r := do("GET", hashed); r.StatusCode() != 200 || !bytes.Equal(r.Body(), css) {
		t.Errorf("GET hashed = %d, %d bytes", r.StatusCode(), len(r.Body()))
	}
	if r := do("HEAD", hashed); r.StatusCode() != 200 || len(r.Body()) != 0 || r.Header.ContentLength() != len(css) {
		t.Errorf("HEAD hashed = %d, body %d, Content-Length %d, want 200, 0, %d", r.StatusCode(), len(r.Body()), r.Header.ContentLength(), len(css))
	}
	if r := do("GET", "/resources/"+tid+".css"); r.StatusCode() != 307 ||
		string(r.Header.Peek("Location")) != "https://lb.example"+hashed {
		t.Errorf("GET unhashed = %d Location %q", r.StatusCode(), r.Header.Peek("Location"))
	}
	if r := do("GET", "/resources/"+tid+"/0000.css"); r.StatusCode() != 404 || string(r.Body()) != "from node" {
		t.Errorf("mismatch = %d %q, want the node's answer", r.StatusCode(), r.Body())
	}
	packAll(p)
	if r := do("GET", hashed, "Accept-Encoding", "gzip"); string(r.Header.Peek("Content-Encoding")) != "gzip" {
		t.Error("gzip not negotiated over the wire")
	}
	// The next request on the same connection must not inherit anything
	// from the gzip answer.
	if r := do("GET", "/other"); r.StatusCode() != 404 || len(r.Header.Peek("Content-Encoding")) != 0 {
		t.Errorf("fallback after a gzip answer: %d, Content-Encoding %q", r.StatusCode(), r.Header.Peek("Content-Encoding"))
	}
	if fellThrough.Load() != 2 {
		t.Errorf("fell through %d times, want 2", fellThrough.Load())
	}
}

// packAll does the packing goroutine's work for a proxy whose Run is not
// started: every queued entry gets its compressed forms.
func packAll(p *Proxy) {
	for {
		select {
		case e := <-p.pack:
			p.packOne(e)
		default:
			return
		}
	}
}

// TestPackingKeepsOnlyTheCurrentEntry: forms made for an entry that was
// invalidated or replaced meanwhile are thrown away, never stored.
func TestPackingKeepsOnlyTheCurrentEntry(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "")
	fb.set(tid, testCSS(tid, 4096), thash)
	id, _ := parseProjectID([]byte(tid))
	e := p.load(id)
	if e.packed || e.offered != 0 {
		t.Fatal("a fresh entry already has its forms")
	}
	queued := <-p.pack
	p.store.invalidate(id)
	if p.store.upgrade(queued, queued.withForms()) {
		t.Error("forms stored for an invalidated entry")
	}
	if p.store.get(id) != nil {
		t.Error("an invalidated entry came back")
	}
	p.load(id)
	_, before := p.store.usage()
	packAll(p)
	got := p.store.get(id)
	if !got.packed || !got.offered.Has(contentcoding.Brotli) || !got.offered.Has(contentcoding.Gzip) {
		t.Fatalf("packed entry %+v", got.offered)
	}
	if _, after := p.store.usage(); after-before != got.size-e.size || after <= before {
		t.Errorf("store bytes %d -> %d, want the forms' %d more", before, after, got.size-e.size)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRevalidationUnchangedReusesEntryWork: re-reading the same bytes must
// not gzip and hash the CSS again (memcached revalidates every interval).
func TestRevalidationUnchangedReusesEntryWork(t *testing.T) {
	p, fb, clk := newFakeProxy(t, "  revalidate_interval: 1s\n")
	fb.set(tid, testCSS(tid, 12<<10), thash)
	id, _ := parseProjectID([]byte(tid))
	p.load(id)
	packAll(p)
	first := p.store.get(id)
	if !first.packed || first.coded[contentcoding.Gzip] == nil {
		t.Fatal("entry not packed")
	}
	clk.Advance(2 * time.Second)
	fb.set(tid, testCSS(tid, 12<<10), thash) // same bytes, new slice
	second := p.load(id)
	if second == first || !second.fetched.After(first.fetched) {
		t.Fatal("revalidation did not produce a renewed entry")
	}
	if &second.coded[contentcoding.Gzip][0] != &first.coded[contentcoding.Gzip][0] ||
		&second.coded[contentcoding.Brotli][0] != &first.coded[contentcoding.Brotli][0] || &second.etag[0] != &first.etag[0] {
		t.Error("unchanged content was compressed and hashed again")
	}
}

// TestServeFailedRevalidationRetried: a background re-read that fails
// keeps the old copy and lets a later request schedule another one.
func TestServeFailedRevalidationRetried(t *testing.T) {
	p, fb, clk := newFakeProxy(t, "  revalidate_interval: 1s\n  max_stale: 1m\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	fb.set(tid, []byte(".a{}"), thash)
	path := "/resources/" + tid + ".css"
	serve(p, request{path: path})
	fb.mu.Lock()
	fb.err = errors.New("timeout")
	fb.mu.Unlock()
	clk.Advance(2 * time.Second)
	if ok, _ := serve(p, request{path: path}); !ok {
		t.Fatal("stale copy not served while the cache fails")
	}
	waitFor(t, func() bool { return fb.calls.Load() == 2 })
	id, _ := parseProjectID([]byte(tid))
	waitFor(t, func() bool { e := p.store.get(id); return e != nil && !e.refreshing.Load() })

	fb.mu.Lock()
	fb.err = nil
	fb.mu.Unlock()
	fb.set(tid, []byte(".b{}"), "00ff")
	serve(p, request{path: path}) // schedules the retry
	waitFor(t, func() bool {
		_, resp := serve(p, request{path: path})
		return bytes.HasSuffix(resp.Header.Peek("Location"), []byte("/00ff.css"))
	})
}

// TestServeStaleWhileUpdating: what ServeStale answers when every node
// that could has an unfinished update (FACTS 11.2), compared with Serve.
func TestServeStaleWhileUpdating(t *testing.T) {
	p, fb, clk := newFakeProxy(t, "  revalidate_interval: 1s\n  max_stale: 5s\n  coherence_interval: 10s\n  breaker: {failures: 1, cooldown: 1m}\n")
	fb.set(tid, []byte(".a{}"), thash)
	hashed := "/resources/" + tid + "/" + thash + ".css"
	unhashed := "/resources/" + tid + ".css"
	serve(p, request{path: hashed})

	// The unhashed URL due for its coherence check.
	if ok, _ := serve(p, request{path: unhashed}); ok {
		t.Fatal("Serve answered the coherence check")
	}
	clk.Advance(11 * time.Second)
	ok, resp := serve(p, request{path: unhashed, stale: true})
	if loc := string(resp.Header.Peek("Location")); !ok || resp.StatusCode() != 307 || !strings.HasSuffix(loc, "/"+thash+".css") {
		t.Errorf("ServeStale(unhashed, check due) = %v %d %q, want the 307", ok, resp.StatusCode(), loc)
	}

	// The cache down past max_stale: Serve declines, ServeStale serves.
	fb.mu.Lock()
	fb.err = errors.New("connection refused")
	fb.mu.Unlock()
	clk.Advance(time.Minute)
	if ok, _ := serve(p, request{path: hashed}); ok {
		t.Error("Serve answered past max_stale")
	}
	if ok, resp := serve(p, request{path: hashed, stale: true}); !ok || string(resp.Body()) != ".a{}" {
		t.Errorf("ServeStale(hashed, past max_stale) = %v %q, want the old CSS", ok, resp.Body())
	}
	for _, tt := range []struct {
		name string
		r    request
	}{
		{"POST", request{method: "POST", path: hashed, stale: true}},
		{"another hash", request{path: "/resources/" + tid + "/" + strings.Repeat("0", 64) + ".css", stale: true}},
		{"uncached project", request{path: "/resources/00000000-0000-4000-8000-000000000000.css", stale: true}},
		{"not CSS", request{path: "/resources/logo.svg", stale: true}},
	} {
		if ok, _ := serve(p, tt.r); ok {
			t.Errorf("ServeStale(%s) answered", tt.name)
		}
	}
	// A node said the project moved: never against a node's answer.
	nodeAnswer(p, unhashed, 307, "https://m.example/resources/"+tid+"/"+fmt.Sprintf("%064x", 7)+".css")
	if ok, _ := serve(p, request{path: unhashed, stale: true}); ok {
		t.Error("ServeStale answered against a disagreeing node")
	}
	if s := p.Stats(); s.Stale != 2 {
		t.Errorf("Stats.Stale = %d, want 2", s.Stale)
	}
}
