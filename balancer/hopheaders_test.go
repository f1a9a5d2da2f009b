package balancer

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRemoveHopByHop: the RFC 9110 section 7.6.1 list and whatever
// Connection names go, in requests and responses alike; everything else,
// and the headers a hostile Connection value only seems to name, stays.
func TestRemoveHopByHop(t *testing.T) {
	for _, tt := range []struct {
		name       string
		headers    string // raw header lines after the first line
		gone, kept []string
	}{
		{"none", "X-A: 1\r\n", nil, []string{"X-A"}},
		{"fixed list", "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\n" +
			"Proxy-Authorization: Basic eA==\r\nProxy-Authenticate: Basic\r\nX-Keep: 1\r\n",
			[]string{"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate"}, []string{"X-Keep"}},
		{"named by Connection", "Connection: x-foo, X-Bar\r\nX-Foo: 1\r\nX-Bar: 2\r\nX-Baz: 3\r\n", []string{"X-Foo", "X-Bar"}, []string{"X-Baz"}},
		{"empty and spaced tokens", "Connection: , ,x-foo ,,  \r\nX-Foo: 1\r\nX-Baz: 3\r\n", []string{"X-Foo"}, []string{"X-Baz"}},
		{"close and keep-alive are not header names", "Connection: close, keep-alive\r\nX-Baz: 3\r\n", nil, []string{"X-Baz"}},
		{"long unknown names", "Connection: " + strings.Repeat("x", 200) + "\r\nX-" + strings.Repeat("y", 40) + ": 1\r\n",
			nil, []string{"X-" + strings.Repeat("y", 40)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var req fasthttp.RequestHeader
			if err := req.Read(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\n" + tt.headers + "\r\n"))); err != nil {
				t.Fatal(err)
			}
			var resp fasthttp.ResponseHeader
			if err := resp.Read(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + tt.headers + "\r\n"))); err != nil {
				t.Fatal(err)
			}
			for side, h := range map[string]headerDeleter{"request": &req, "response": &resp} {
				removeHopByHop(h)
				for _, k := range tt.gone {
					if v := h.Peek(k); v != nil {
						t.Errorf("%s: %s = %q after removeHopByHop, want it removed", side, k, v)
					}
				}
				for _, k := range tt.kept {
					if v := h.Peek(k); v == nil {
						t.Errorf("%s: %s removed, want it kept", side, k)
					}
				}
			}
			if string(req.Host()) != "h" {
				t.Errorf("Host = %q, want h", req.Host())
			}
		})
	}
}
