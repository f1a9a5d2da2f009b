package mosparoemu

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

func BenchmarkHandler(b *testing.B) {
	n, inc := newDirectNode(b)
	cases := append([]handlerCase{}, hotPaths...)
	cases = append(cases,
		handlerCase{name: "request-submit-token", method: "POST", uri: "/api/v1/frontend/request-submit-token",
			headers: []string{"Content-Type", "application/x-www-form-urlencoded"},
			body:    "publicKey=" + DemoPublicKey + "&pageTitle=Contact&pageUrl=https%3A%2F%2Fexample.com%2F", status: 200},
		handlerCase{name: "echo", method: "GET", uri: "/__echo", headers: []string{"X-Forwarded-For", "192.0.2.1"}, status: 200},
	)
	for _, hc := range cases {
		b.Run(hc.name, func(b *testing.B) {
			ctx := hc.ctx()
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				n.handle(ctx, inc)
			}
		})
	}
}

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
	{name: "check-form-data unknown token", method: "POST", uri: "/api/v1/frontend/check-form-data", status: 200,
		headers: []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://127.0.0.1"},
		body:    "publicKey=PUBLICKEY_example&submitToken=bench0000&formData=%7B%22fields%22%3A%5B%5D%7D"},
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
