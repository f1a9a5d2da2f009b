//go:build !race

package balancer

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestProxiedKeepAliveAllocations: once its header is read, a connection
// on a proxy_protocol listener costs no allocation per request, as one on
// a plain listener (the whole process is counted: client, balancer, node).
func TestProxiedKeepAliveAllocations(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := []byte(strings.Repeat("<p>mosparo</p>", 100))
	node := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(page) }}
	go node.Serve(ln)
	t.Cleanup(func() { node.Shutdown() })
	nodes := []NodeSpec{{Name: "n1", Address: ln.Addr().String(), Weight: 100}}
	req := []byte("GET /login HTTP/1.1\r\nHost: mosparo.example\r\n\r\n")
	perRequest := map[bool]float64{}
	for _, proxied := range []bool{false, true} {
		yaml := "listen: [{address: \"127.0.0.1:0\"}]\nlog: {access_log: false}\n"
		if proxied {
			yaml = "listen: [{address: \"127.0.0.1:0\", proxy_protocol: {from: [127.0.0.1]}}]\nlog: {access_log: false}\n"
		}
		_, addr := startLB(t, testConfig(t, yaml), nodes)
		c := dialFrom(t, "127.0.0.1", addr)
		if proxied {
			if _, err := c.Write(proxyV1("192.0.2.7", "203.0.113.1")); err != nil {
				t.Fatal(err)
			}
		}
		// Every answer has the same length (the Date header's is fixed).
		buf := make([]byte, 64<<10)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) || !bytes.HasSuffix(buf[:n], page) {
			t.Fatalf("first answer %q, %v", buf[:n], err)
		}
		size := n
		roundTrip := func() {
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:size]); err != nil {
				t.Fatal(err)
			}
		}
		for range 100 {
			roundTrip()
		}
		perRequest[proxied] = testing.AllocsPerRun(500, roundTrip)
	}
	t.Logf("allocations per keep-alive request: plain %.2f, proxied %.2f", perRequest[false], perRequest[true])
	if perRequest[true] > perRequest[false] {
		t.Errorf("a proxied connection allocates %.2f per request, a plain one %.2f", perRequest[true], perRequest[false])
	}
}
