//go:build !race

package mosparotest

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// handlerCase prepares a request for calling the handler directly, without a network.
type handlerCase struct {
	name, method, uri string
	headers           []string // name, value pairs
	body              string
	status            int
}

// hotPaths are the requests `make bench` drives; each must not allocate in steady state.
var hotPaths = []handlerCase{
	{name: "health", method: "GET", uri: "/api/v1/health/check", status: 200},
	{name: "health via trusted proxy", method: "GET", uri: "/api/v1/health/check", headers: []string{"X-Forwarded-For", "192.0.2.1, 127.0.0.1"}, status: 404},
	{name: "login page", method: "GET", uri: "/login", headers: []string{"Cookie", "PHPSESSID=abc"}, status: 200},
	{name: "login page new session", method: "GET", uri: "/login", status: 200},
	{name: "css hashed", method: "GET", uri: "/resources/" + DemoUUID + "/" + CSSHash(DefaultCSS(DemoUUID)) + ".css", status: 200},
	{name: "css redirect", method: "GET", uri: "/resources/" + DemoUUID + ".css", headers: []string{"X-Forwarded-Host", "forms.example.com", "X-Forwarded-Proto", "https"}, status: 307},
	{name: "frontend js", method: "GET", uri: "/build/mosparo-frontend.js", status: 200},
	{name: "root redirect", method: "GET", uri: "/", status: 302},
}

func newDirectNode(t testing.TB) (*Node, *incarnation) {
	t.Helper()
	n, err := newNode(Options{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	return n, &incarnation{stop: make(chan struct{})}
}

func (hc handlerCase) ctx() *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(hc.method)
	req.SetRequestURI(hc.uri)
	req.Header.SetHost("127.0.0.1:8080")
	for i := 0; i+1 < len(hc.headers); i += 2 {
		req.Header.Add(hc.headers[i], hc.headers[i+1])
	}
	if hc.body != "" {
		req.SetBodyString(hc.body)
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return ctx
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	n, inc := newDirectNode(t)
	for _, hc := range hotPaths {
		t.Run(hc.name, func(t *testing.T) {
			ctx := hc.ctx()
			run := func() {
				ctx.Response.Reset()
				n.handle(ctx, inc)
			}
			run()
			if got := ctx.Response.StatusCode(); got != hc.status {
				t.Fatalf("status = %d, want %d", got, hc.status)
			}
			if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
				t.Errorf("%s: %.1f allocs per request, want 0", hc.name, allocs)
			}
		})
	}
}
