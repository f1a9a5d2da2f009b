package balancer

import (
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/valyala/fasthttp"
)

// echoNode is a minimal backend answering what it received; the full mosparo
// emulator lives in internal/mosparoemu and is used by the end-to-end tests.
type echoNode struct {
	name  string
	ln    net.Listener
	hits  atomic.Int64
	delay atomic.Int64
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// kill closes the listener and every open connection at once, like a
// crashed node.
func (n *echoNode) kill() {
	n.ln.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.conns {
		c.Close()
	}
}

func startEcho(t testing.TB, name string) *echoNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &echoNode{name: name, ln: ln, conns: map[net.Conn]bool{}}
	srv := &fasthttp.Server{ConnState: func(c net.Conn, st fasthttp.ConnState) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if st == fasthttp.StateClosed || st == fasthttp.StateHijacked {
			delete(n.conns, c)
		} else {
			n.conns[c] = true
		}
	}, Handler: func(ctx *fasthttp.RequestCtx) {
		n.hits.Add(1)
		if d := n.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		hdr := map[string][]string{}
		for k, v := range ctx.Request.Header.All() {
			hdr[string(k)] = append(hdr[string(k)], string(v))
		}
		b, _ := json.Marshal(map[string]any{"node": name, "headers": hdr, "uri": string(ctx.RequestURI()), "method": string(ctx.Method())})
		ctx.Response.Header.Set("X-Mosparo-Node", name)
		ctx.Response.Header.Set("Connection", "X-Secret-Hop")
		ctx.Response.Header.Set("X-Secret-Hop", "1")
		ctx.Response.Header.Set("Keep-Alive", "timeout=5")
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return n
}

func testConfig(t testing.TB, yaml string) *configs.Config {
	t.Helper()
	cfg, err := configs.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startLB(t testing.TB, cfg *configs.Config, nodes []NodeSpec) (*Server, string) {
	t.Helper()
	return startLBWith(t, cfg, nodes, nil)
}

type echoed struct {
	Node    string              `json:"node"`
	Headers map[string][]string `json:"headers"`
	URI     string              `json:"uri"`
}

func doRaw(t *testing.T, addr, raw string) (*fasthttp.Response, echoed) {
	t.Helper()
	resp, err := rawAnswer(t, addr, raw)
	if err != nil {
		t.Fatal(err)
	}
	var e echoed
	_ = json.Unmarshal(resp.Body(), &e)
	return resp, e
}

// rawAnswer sends raw bytes to addr on a connection of their own and reads
// one answer (without a body for a HEAD); an error when the LB closed the
// connection without one.
func rawAnswer(t testing.TB, addr, raw string) (*fasthttp.Response, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		return nil, err
	}
	resp := &fasthttp.Response{}
	resp.SkipBody = strings.HasPrefix(raw, "HEAD ")
	if err := resp.Read(newBufReader(c)); err != nil {
		return nil, err
	}
	return resp, nil
}

func nodesOf(ns ...*echoNode) []NodeSpec {
	var out []NodeSpec
	for _, n := range ns {
		out = append(out, NodeSpec{Name: n.name, Address: n.ln.Addr().String(), Weight: 100})
	}
	return out
}

const baseYAML = `
listen: [{address: "127.0.0.1:0"}]
admin: {listen: "127.0.0.1:0"}
timeouts: {connect: 200ms, request: 1s}
`

func TestForwardingStripsSpoofedHeaders(t *testing.T) {
	n := startEcho(t, "n1")
	_, addr := startLB(t, testConfig(t, baseYAML), nodesOf(n))
	resp, e := doRaw(t, addr, "GET /login HTTP/1.1\r\nHost: mosparo.example\r\n"+
		"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nForwarded: for=127.0.0.1\r\n"+
		"X-Forwarded-Whatever: 1\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Authorization: x\r\n\r\n")
	if resp.StatusCode() != 200 {
		t.Fatalf("status = %d, want 200", resp.StatusCode())
	}
	want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "mosparo.example", "Host": "mosparo.example"}
	for k, v := range want {
		if got := e.Headers[k]; len(got) != 1 || got[0] != v {
			t.Errorf("node saw %s = %q, want [%q]", k, got, v)
		}
	}
	for _, k := range []string{"Forwarded", "X-Forwarded-Whatever", "X-Hop", "Keep-Alive", "Te", "Proxy-Authorization", "Connection"} {
		if got, ok := e.Headers[k]; ok {
			t.Errorf("node saw hop-by-hop or spoofed header %s = %q", k, got)
		}
	}
	for _, k := range []string{"X-Secret-Hop", "Keep-Alive"} {
		if v := resp.Header.Peek(k); len(v) > 0 {
			t.Errorf("client saw hop-by-hop response header %s = %q", k, v)
		}
	}
}

func TestForwardingTrustedProxyChain(t *testing.T) {
	n := startEcho(t, "n1")
	_, addr := startLB(t, testConfig(t, baseYAML+"trusted_proxies: [127.0.0.0/8]\n"), nodesOf(n))
	_, e := doRaw(t, addr, "GET / HTTP/1.1\r\nHost: lb\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: mosparo.example\r\n\r\n")
	if got := strings.Join(e.Headers["X-Forwarded-For"], "|"); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want %q", got, "203.0.113.7, 127.0.0.1")
	}
	if got := strings.Join(e.Headers["X-Forwarded-Proto"], "|"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https", got)
	}
	if got := strings.Join(e.Headers["X-Forwarded-Host"], "|"); got != "mosparo.example" {
		t.Errorf("X-Forwarded-Host = %q, want mosparo.example", got)
	}
}
