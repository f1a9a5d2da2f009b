package balancer

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// h2BenchConn is the client connection a stream's RequestCtx holds: only
// its addresses are read on the request path.
type h2BenchConn struct{ net.Conn }

var (
	h2BenchRemote = &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 40000}
	h2BenchLocal  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}
)

func (h2BenchConn) RemoteAddr() net.Addr             { return h2BenchRemote }
func (h2BenchConn) LocalAddr() net.Addr              { return h2BenchLocal }
func (h2BenchConn) SetReadDeadline(time.Time) error  { return nil }
func (h2BenchConn) SetWriteDeadline(time.Time) error { return nil }

// h2BenchWriter is a ResponseWriter whose header map is reused, so that
// the benchmark counts the adapter's allocations, not a new map per
// stream (x/net makes one per stream either way).
type h2BenchWriter struct {
	hdr    http.Header
	status int
	n      int
}

func (w *h2BenchWriter) Header() http.Header { return w.hdr }
func (w *h2BenchWriter) WriteHeader(s int)   { w.status = s }
func (w *h2BenchWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// BenchmarkHTTP2Adapter is one h2 GET /login through the adapter: the
// request x/net hands over copied into a RequestCtx (fill), Server.handle
// to an in-memory node, and the answer written to the stream (writeH2).
// x/net/http2's own per-stream work (framing, HPACK, its goroutine and
// maps) is not in it. Target, met: 5 allocs per request here, i.e. one
// string per response field value (http.Header holds strings; the node's
// answer has three), one backing array for all of them and the
// Content-Length string; nothing per request field. It was 13 before
// writeH2 shared one backing array and interned the common field names.
func BenchmarkHTTP2Adapter(b *testing.B) {
	serve := newH2AdapterBench(b)
	for range 100 {
		serve()
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

// newH2AdapterBench returns a function serving one h2 GET /login through
// the adapter to an in-memory node, failing tb on a wrong answer.
func newH2AdapterBench(tb testing.TB) func() {
	page := []byte(strings.Repeat("<p>mosparo</p>", 150))
	l := newInmemLB(tb, "listen: [{address: \"127.0.0.1:0\"}]\nlog: {access_log: false}\n", page, 3, "GET", "/login", nil)
	h := &h2Handler{srv: l.srv, conn: h2BenchConn{}}
	req := &http.Request{
		Method: "GET", RequestURI: "/login", Host: "mosparo.example", Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: http.Header{
			"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"},
			"Accept":          {"text/html,*/*;q=0.8"},
			"Accept-Language": {"en-US,en;q=0.5"},
			"Accept-Encoding": {"gzip, deflate, br"},
		},
		Body: http.NoBody,
	}
	w := &h2BenchWriter{hdr: make(http.Header)}
	return func() {
		clear(w.hdr)
		w.status, w.n = 0, 0
		h.ServeHTTP(w, req)
		if w.status != 200 || w.n != len(page) {
			tb.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

// writeH2 keeps every value of a repeated field, drops the fields HTTP/2
// forbids, and sets Content-Length from the body.
func TestWriteH2Fields(t *testing.T) {
	var resp fasthttp.Response
	resp.Header.Add("Set-Cookie", "a=1")
	resp.Header.Add("Set-Cookie", "b=2")
	resp.Header.Set("Connection", "close")
	resp.Header.Set("X-Custom", "v")
	resp.Header.SetContentType("text/css")
	resp.SetBodyString("body")
	w := &h2BenchWriter{hdr: make(http.Header)}
	writeH2(w, false, &resp)
	if got := w.hdr["Set-Cookie"]; len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Set-Cookie %q", got)
	}
	if _, ok := w.hdr["Connection"]; ok {
		t.Error("Connection sent over h2")
	}
	if w.hdr.Get("X-Custom") != "v" || w.hdr.Get("Content-Type") != "text/css" || w.hdr.Get("Content-Length") != "4" {
		t.Errorf("fields %v", w.hdr)
	}
	if w.status != 200 || w.n != 4 {
		t.Errorf("status %d, %d bytes", w.status, w.n)
	}
}
