package balancer

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/zap"
)

// inmemLB is a Server whose nodes are fasthttp servers on in-memory
// listeners, and whose handler is driven directly with a RequestCtx: the
// per-request path without sockets, for allocation tests and benchmarks.
type inmemLB struct {
	srv  *Server
	tmpl fasthttp.Request
	ctx  fasthttp.RequestCtx
}

func newInmemLB(tb testing.TB, yaml string, body []byte, nodes int, method, uri string, reqBody []byte) *inmemLB {
	return newDirectLB(tb, yaml, body, nodes, method, uri, reqBody, false)
}

// newDirectLB is newInmemLB whose nodes listen on loopback TCP when tcp is
// set, so the socket-only parts of the exchange (the stale check) run too.
func newDirectLB(tb testing.TB, yaml string, body []byte, nodes int, method, uri string, reqBody []byte, tcp bool) *inmemLB {
	tb.Helper()
	cfg := testConfigTB(tb, yaml)
	lns := map[string]*fasthttputil.InmemoryListener{}
	var specs []NodeSpec
	for i := 0; i < nodes; i++ {
		var ln net.Listener
		addr := "node" + string(rune('a'+i)) + ":80"
		if tcp {
			tl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				tb.Fatal(err)
			}
			ln, addr = tl, tl.Addr().String()
		} else {
			lns[addr] = fasthttputil.NewInmemoryListener()
			ln = lns[addr]
		}
		specs = append(specs, NodeSpec{Name: addr, Address: addr, Weight: 100})
		srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/html; charset=UTF-8")
			ctx.SetBody(body)
		}}
		go srv.Serve(ln)
		tb.Cleanup(func() { ln.Close() })
	}
	deps := Deps{Logger: zap.NewNop()}
	if !tcp {
		deps.Dial = func(addr string, _ time.Duration) (net.Conn, error) {
			return lns[addr].Dial()
		}
	}
	rt, err := NewRuntime(cfg, specs, deps)
	if err != nil {
		tb.Fatal(err)
	}
	l := &inmemLB{srv: NewServer(rt)}
	l.tmpl.Header.SetMethod(method)
	l.tmpl.SetRequestURI(uri)
	l.tmpl.Header.SetHost("mosparo.example")
	l.tmpl.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
	l.tmpl.Header.Set("Accept", "*/*")
	l.tmpl.Header.Set("X-Forwarded-For", "127.0.0.1")
	if reqBody != nil {
		l.tmpl.Header.SetContentType("application/x-www-form-urlencoded")
		l.tmpl.SetBody(reqBody)
	}
	l.ctx.Init(&l.tmpl, &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 40000}, nil)
	return l
}

// once serves one request and reports its status.
func (l *inmemLB) once() int {
	l.tmpl.CopyTo(&l.ctx.Request)
	l.ctx.Response.Reset()
	l.srv.handle(&l.ctx)
	return l.ctx.Response.StatusCode()
}

func testConfigTB(tb testing.TB, yaml string) *configsConfig {
	tb.Helper()
	cfg, err := configsParse("test.yaml", []byte(yaml))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}
