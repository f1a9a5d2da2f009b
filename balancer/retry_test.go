package balancer

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// postCounter is a node that counts POSTs and can stall or drop them.
func TestPostIsNeverSentTwice(t *testing.T) {
	// Node 1 reads the request and then drops the connection without an
	// answer: the POST reached it, so it must not be retried on node 2.
	var got1 atomic.Int64
	ln1, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { ln1.Close() })
	go func() {
		for {
			c, err := ln1.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				buf := make([]byte, 4096)
				if n, _ := c.Read(buf); n > 0 && strings.HasPrefix(string(buf[:n]), "POST") {
					got1.Add(1)
				}
				c.Close()
			}(c)
		}
	}()
	n2 := startEcho(t, "n2")
	cfg := testConfig(t, baseYAML+"balancing: {policy: round_robin, retries: 2}\n")
	nodes := []NodeSpec{{Name: "n1", Address: ln1.Addr().String(), Weight: 100}, nodesOf(n2)[0]}
	_, addr := startLB(t, cfg, nodes)
	c := &fasthttp.Client{}
	var posts502, gets200 int
	for i := 0; i < 10; i++ {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + addr + "/api/v1/frontend/check-form-data")
		req.Header.SetMethod("POST")
		req.SetBodyString("publicKey=x&submitToken=y")
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() == 502 {
			posts502++
		}
		req.Header.SetMethod("GET")
		req.SetRequestURI("http://" + addr + "/login")
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() == 200 {
			gets200++
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	if gets200 != 10 {
		t.Errorf("GETs answered 200: %d of 10, want all (retried on n2)", gets200)
	}
	posts2 := n2.hits.Load() - int64(gets200)
	if int64(posts502)+posts2 != 10 {
		t.Errorf("POSTs: %d answered 502, %d reached n2; want 10 in total", posts502, posts2)
	}
	if got1.Load() != int64(posts502) {
		t.Errorf("n1 received %d POSTs but %d were answered 502: a POST was sent twice", got1.Load(), posts502)
	}
	if posts502 == 0 {
		t.Error("no POST went to n1; round robin should have sent some there")
	}
}

func TestConnectFailureRetriesAnyMethod(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	n2 := startEcho(t, "n2")
	cfg := testConfig(t, baseYAML+"balancing: {policy: round_robin, retries: 1}\n")
	nodes := []NodeSpec{{Name: "dead", Address: deadAddr, Weight: 100}, nodesOf(n2)[0]}
	_, addr := startLB(t, cfg, nodes)
	for i := 0; i < 6; i++ {
		code, _, err := fasthttp.Post(nil, "http://"+addr+"/api/v1/frontend/check-form-data", nil)
		if err != nil || code != 200 {
			t.Fatalf("POST %d = %d, %v; want 200 (never reached the dead node, so retried)", i, code, err)
		}
	}
}

func TestTimeoutAnswers504WithinBound(t *testing.T) {
	n := startEcho(t, "slow")
	n.delay.Store(int64(3 * time.Second))
	cfg := testConfig(t, `
listen: [{address: "127.0.0.1:0"}]
timeouts: {connect: 200ms, request: 300ms}
`)
	_, addr := startLB(t, cfg, nodesOf(n))
	start := time.Now()
	code, body, err := fasthttp.Get(nil, "http://"+addr+"/login")
	took := time.Since(start)
	if err != nil || code != 504 {
		t.Fatalf("GET = %d, %v; want 504", code, err)
	}
	if !strings.Contains(string(body), `"error":true`) {
		t.Errorf("body = %s, want the JSON error shape", body)
	}
	// Sooner than the node's answer (3 s): the timeout cut it. A tighter
	// bound would measure the machine's load, not the balancer.
	if took >= 3*time.Second {
		t.Errorf("504 after %s, want before the node's 3s answer", took)
	}
}

func TestSizeLimits(t *testing.T) {
	n := startEcho(t, "n1")
	cfg := testConfig(t, baseYAML+"limits: {max_body_bytes: 2048, max_header_bytes: 2048}\n")
	_, addr := startLB(t, cfg, nodesOf(n))
	resp, _ := doRaw(t, addr, "POST /api/v1/frontend/check-form-data HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"+strings.Repeat("a", 5000))
	if resp.StatusCode() != 413 {
		t.Errorf("oversized body: status %d, want 413", resp.StatusCode())
	}
	resp, _ = doRaw(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nCookie: "+strings.Repeat("b", 4000)+"\r\n\r\n")
	if resp.StatusCode() != 431 {
		t.Errorf("oversized headers: status %d, want 431", resp.StatusCode())
	}
	if n.hits.Load() != 0 {
		t.Errorf("node saw %d requests; oversized ones must stop at the LB", n.hits.Load())
	}
}

func TestEdgeGuards(t *testing.T) {
	n := startEcho(t, "n1")
	cfg := testConfig(t, baseYAML+"edge: {allow_health_from: [\"10.0.0.0/8\"], allow_cron_from: []}\n")
	_, addr := startLB(t, cfg, nodesOf(n))
	for _, p := range []string{"/api/v1/health/check", "/cron-jobs/execute?key=k", "/cron-jobs/execute/"} {
		code, _, _ := fasthttp.Get(nil, "http://"+addr+p)
		if code != 403 {
			t.Errorf("GET %s from 127.0.0.1 = %d, want 403", p, code)
		}
	}
	cfg = testConfig(t, baseYAML+"edge: {allow_health_from: [\"127.0.0.1\"]}\n")
	_, addr = startLB(t, cfg, nodesOf(n))
	if code, _, _ := fasthttp.Get(nil, "http://"+addr+"/api/v1/health/check"); code != 200 {
		t.Errorf("GET health from an allowed client = %d, want 200", code)
	}
}

func TestNodeKilledUnderLoadNoFailedGets(t *testing.T) {
	n1, n2 := startEcho(t, "n1"), startEcho(t, "n2")
	// Timeouts far above a loopback answer: on a busy machine a 1 s
	// request limit made a GET to the live node fail, which is not what
	// this test is about (a refused dial to the dead node is at once).
	cfg := testConfig(t, `
listen: [{address: "127.0.0.1:0"}]
timeouts: {connect: 10s, request: 30s}
balancing: {policy: round_robin, retries: 2}
`)
	_, addr := startLB(t, cfg, nodesOf(n1, n2))
	c := &fasthttp.Client{MaxConnsPerHost: 64}
	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, _, err := c.Get(nil, "http://"+addr+"/login")
				total.Add(1)
				if err != nil || code != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	// Events, not sleeps: n1 serves some GETs, dies, then n2 serves a
	// hundred more while the load goes on (bounded: a hang guard only).
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				t.Errorf("waited 30s for %s", what)
				return
			}
		}
	}
	waitFor("n1 to serve GETs", func() bool { return n1.hits.Load() >= 20 })
	n1.kill()
	after := n2.hits.Load()
	waitFor("n2 to serve GETs after n1 died", func() bool { return n2.hits.Load() >= after+100 })
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d GETs failed while a node died; want 0", failed.Load(), total.Load())
	}
}
