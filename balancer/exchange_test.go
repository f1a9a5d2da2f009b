package balancer

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// Stray bytes (issue 11): a node that writes more than one answer's worth
// must never hand the rest to the next request on the connection, which is
// usually another client's. Client A's request makes the node misbehave;
// client B's, sent once the stray bytes have reached the balancer's socket,
// must get its own answer.
func TestStrayNodeBytesReachNoOtherClient(t *testing.T) {
	const stolen = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nSet-Cookie: victim=1\r\n\r\nSTOLEN"
	tests := []struct {
		name   string
		method string
		// evil writes the answer to client A, then the stray bytes (late
		// ones once a() returns: client A has its answer, so the balancer
		// is done with the exchange); it returns false to close the
		// connection.
		evil func(c net.Conn, a func()) bool
	}{
		{"content-length too short", "GET", func(c net.Conn, _ func()) bool {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + stolen))
			return true
		}},
		{"content-length too short, rest beyond one read", "GET", func(c net.Conn, _ func()) bool {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + strings.Repeat("STOLEN", 8<<10) + stolen))
			return true
		}},
		{"late second answer", "GET", func(c net.Conn, a func()) bool {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			a()
			_, _ = c.Write([]byte(stolen))
			return true
		}},
		{"HEAD answered with a body", "HEAD", func(c net.Conn, _ func()) bool {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + stolen))
			return true
		}},
		{"HEAD body arriving late", "HEAD", func(c net.Conn, a func()) bool {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"))
			a()
			_, _ = c.Write([]byte(stolen))
			return true
		}},
		{"204 with a body", "GET", func(c net.Conn, _ func()) bool {
			_, _ = c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n" + stolen))
			return true
		}},
		{"304 with a body", "GET", func(c net.Conn, _ func()) bool {
			_, _ = c.Write([]byte("HTTP/1.1 304 Not Modified\r\nContent-Length: 6\r\n\r\n" + stolen))
			return true
		}},
		{"close-delimited body", "GET", func(c net.Conn, _ func()) bool {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\n\r\nok"))
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strayDone := make(chan error, 1)
			answered := make(chan struct{}, 1)
			stop := make(chan struct{})
			a := func() {
				select {
				case <-answered:
				case <-stop: // the test failed before client A got its answer
				}
			}
			n := startScript(t, func(c net.Conn, req *fasthttp.Request) bool {
				if string(req.URI().Path()) == "/evil" {
					keep := tt.evil(c, a)
					// Client B goes once the balancer's kernel has every
					// byte (or reset the connection): its next look at the
					// connection sees them.
					strayDone <- waitDelivered(c)
					return keep
				}
				return answerID(c, req)
			})
			t.Cleanup(func() { close(stop) }) // before startScript's, which waits for a()
			h := newRecHealth()
			_, addr := startLBWith(t, testConfig(t, listenYAML+"timeouts: {connect: 200ms, request: 2s}\n"), []NodeSpec{n.spec("n1")}, h)
			for i := 0; i < 5; i++ {
				code, _ := rawRequest(t, addr, tt.method+" /evil HTTP/1.1\r\nHost: a.example\r\n\r\n", tt.method == "HEAD")
				if code != 200 && code != 204 && code != 304 {
					t.Fatalf("client A: status %d", code)
				}
				select {
				case answered <- struct{}{}:
				default:
				}
				if err := <-strayDone; err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("b-%d", i)
				code, resp := rawRequest(t, addr, "GET /x HTTP/1.1\r\nHost: b.example\r\nX-Id: "+id+"\r\n\r\n", false)
				if code != 200 || resp != "id="+id || strings.Contains(resp, "STOLEN") {
					t.Fatalf("client B (round %d) got %d %q, want 200 %q: another client's bytes", i, code, resp, "id="+id)
				}
			}
			if f := h.node(n.addr()).failures(); f != 0 {
				t.Errorf("node blamed %d times; its answers to A were complete", f)
			}
		})
	}
}

// A node that closes an idle pooled connection (its keep-alive timeout
// shorter than upstream_idle): the next request, even a POST that may not
// be retried, goes over a fresh connection instead of failing on the dead
// one and blaming the node.
func TestIdleConnectionClosedByNodeIsNotReused(t *testing.T) {
	closed := make(chan error, 1)
	n := startScript(t, func(c net.Conn, req *fasthttp.Request) bool {
		answerID(c, req)
		if string(req.URI().Path()) == "/bye" {
			// The POST goes once the balancer's kernel has the FIN: its
			// look at the idle connection then sees it closed.
			err := c.(*net.TCPConn).CloseWrite()
			if err == nil {
				err = waitDelivered(c)
			}
			closed <- err
			return false
		}
		return true
	})
	h := newRecHealth()
	_, addr := startLBWith(t, testConfig(t, listenYAML+"timeouts: {connect: 200ms, request: 2s}\nbalancing: {retries: 0}\n"), []NodeSpec{n.spec("n1")}, h)
	for i := 0; i < 5; i++ {
		if code, _ := rawRequest(t, addr, "GET /bye HTTP/1.1\r\nHost: a\r\n\r\n", false); code != 200 {
			t.Fatalf("GET /bye = %d", code)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		code, body := rawRequest(t, addr, "POST /api/v1/frontend/check-form-data HTTP/1.1\r\nHost: a\r\nX-Id: p\r\nContent-Length: 3\r\n\r\na=b", false)
		if code != 200 || body != "id=p" {
			t.Fatalf("POST after the node closed the idle connection = %d %q, want 200", code, body)
		}
	}
	if f := h.node(n.addr()).failures(); f != 0 {
		t.Errorf("node blamed %d times for closing an idle connection", f)
	}
}

// An unrequested 101 Switching Protocols (issue 11): mosparo has no upgrade
// routes. The client gets 502, the node is blamed, and the connection is
// closed, so the bytes after the 101 reach nobody. 100, 102 and 103 before
// a final answer are interim answers and are skipped.
func TestInterimAnswers(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		code    int
		blamed  int64
		newConn bool // the next request needs a new connection
	}{
		{"101 unrequested", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTOLEN", 502, 1, true},
		{"101 without upgrade headers", "HTTP/1.1 101 Switching Protocols\r\n\r\n", 502, 1, true},
		{"100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, 0, false},
		{"103 then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startScript(t, func(c net.Conn, req *fasthttp.Request) bool {
				if string(req.URI().Path()) == "/odd" {
					_, _ = c.Write([]byte(tt.answer))
					return true
				}
				return answerID(c, req)
			})
			h := newRecHealth()
			_, addr := startLBWith(t, testConfig(t, baseYAML), []NodeSpec{n.spec("n1")}, h)
			code, body := rawRequest(t, addr, "GET /odd HTTP/1.1\r\nHost: a\r\n\r\n", false)
			if code != tt.code || strings.Contains(body, "STOLEN") {
				t.Errorf("GET /odd = %d %q, want %d", code, body, tt.code)
			}
			if got := h.node(n.addr()).failures(); got != tt.blamed {
				t.Errorf("node blamed %d times, want %d", got, tt.blamed)
			}
			if code, body := rawRequest(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\nX-Id: 2\r\n\r\n", false); code != 200 || body != "id=2" {
				t.Errorf("next request = %d %q, want 200 id=2", code, body)
			}
			if got, want := n.conns.Load(), map[bool]int64{false: 1, true: 2}[tt.newConn]; got != want {
				t.Errorf("node saw %d connections, want %d", got, want)
			}
		})
	}
}

// A full node is busy, not broken (issue 11): with max_conns_per_node in
// use a request waits up to timeouts.queue for a connection, then gets 503
// with Retry-After; the node is never blamed and the request not sent
// elsewhere (cause.retry; TestClassifyForwardErrors).
func TestFullNodeQueues(t *testing.T) {
	gate := make(chan struct{})
	got := make(chan string, 8)
	slow := startScript(t, func(c net.Conn, req *fasthttp.Request) bool {
		got <- string(req.URI().Path())
		if strings.HasSuffix(string(req.URI().Path()), "/slow") {
			<-gate
		}
		return answerID(c, req)
	})
	h := newRecHealth()
	cfg := testConfig(t, listenYAML+"timeouts: {connect: 10s, request: 10s, queue: 300ms}\nlimits: {max_conns_per_node: 1}\n")
	srv, addr := startLBWith(t, cfg, []NodeSpec{slow.spec("slow")}, h)
	first := make(chan int, 1)
	go func() {
		code, _ := rawRequest(t, addr, "GET /api/v1/frontend/slow HTTP/1.1\r\nHost: a\r\n\r\n", false)
		first <- code
	}()
	<-got // the only connection to slow is busy

	start := time.Now()
	resp := rawResponse(t, addr, "POST /api/v1/frontend/check-form-data HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\na=b", false)
	waited := time.Since(start)
	if resp.StatusCode() != 503 || string(resp.Header.Peek("Retry-After")) != "1" || !strings.Contains(string(resp.Body()), `"error":true`) {
		t.Errorf("queued past timeouts.queue: %d, Retry-After %q, %s; want 503, 1, the JSON error", resp.StatusCode(), resp.Header.Peek("Retry-After"), resp.Body())
	}
	if waited < 250*time.Millisecond {
		t.Errorf("503 after %s, want after waiting timeouts.queue (300ms)", waited)
	}
	if st := srv.NodeStats()[0]; st.QueueTimeouts != 1 || st.Failures != 0 {
		t.Errorf("node stats after one queue timeout = %+v, want queue_timeouts 1, failures 0", st)
	}

	// A request that finds a connection within the queue time is served.
	second := make(chan *fasthttp.Response, 1)
	go func() {
		second <- rawResponse(t, addr, "GET /api/v1/frontend/queued HTTP/1.1\r\nHost: a\r\nX-Id: q\r\n\r\n", false)
	}()
	// The queue is what is tested: the gate opens once the request waits.
	deadline := time.Now().Add(30 * time.Second)
	for srv.NodeStats()[0].Queued == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if q := srv.NodeStats()[0].Queued; q != 1 {
		t.Errorf("requests queued for the busy node = %d, want 1", q)
	}
	close(gate)
	if code := <-first; code != 200 {
		t.Errorf("the slow request = %d, want 200", code)
	}
	if r := <-second; r.StatusCode() != 200 || string(r.Body()) != "id=q" {
		t.Errorf("request waiting in the queue = %d %q, want 200 id=q", r.StatusCode(), r.Body())
	}
	if f := h.node(slow.addr()).failures(); f != 0 {
		t.Errorf("busy node blamed %d times", f)
	}
}

func TestFullNodeWithoutQueueAnswers503AtOnce(t *testing.T) {
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	n := startScript(t, func(c net.Conn, req *fasthttp.Request) bool {
		entered <- struct{}{}
		<-gate
		return answerID(c, req)
	})
	h := newRecHealth()
	cfg := testConfig(t, listenYAML+"timeouts: {connect: 200ms, request: 10s, queue: 0s}\nlimits: {max_conns_per_node: 1}\n")
	_, addr := startLBWith(t, cfg, []NodeSpec{n.spec("n1")}, h)
	first := make(chan int, 1)
	go func() {
		code, _ := rawRequest(t, addr, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", false)
		first <- code
	}()
	<-entered
	resp := rawResponse(t, addr, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n", false)
	close(gate)
	if resp.StatusCode() != 503 || string(resp.Header.Peek("Retry-After")) != "1" {
		t.Errorf("full node, queue 0 = %d, Retry-After %q; want 503, 1", resp.StatusCode(), resp.Header.Peek("Retry-After"))
	}
	if code := <-first; code != 200 {
		t.Errorf("first = %d", code)
	}
	if f := h.node(n.addr()).failures(); f != 0 {
		t.Errorf("busy node blamed %d times", f)
	}
}

// A full node is skipped while another can take the request (as HAProxy
// does): requests wait in a queue, or get 503, only when every node is full.
func TestFullNodeIsSkippedWhileAnotherIsFree(t *testing.T) {
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	blocking := func(c net.Conn, req *fasthttp.Request) bool {
		if strings.HasSuffix(string(req.URI().Path()), "/slow") {
			entered <- struct{}{}
			<-gate
		}
		return answerID(c, req)
	}
	a, b := startScript(t, blocking), startScript(t, blocking)
	h := newRecHealth()
	cfg := testConfig(t, listenYAML+"timeouts: {connect: 200ms, request: 10s, queue: 0s}\nlimits: {max_conns_per_node: 1}\nbalancing: {policy: round_robin}\n")
	_, addr := startLBWith(t, cfg, []NodeSpec{a.spec("a"), b.spec("b")}, h)
	first := make(chan int, 1)
	go func() {
		code, _ := rawRequest(t, addr, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", false)
		first <- code
	}()
	<-entered
	for i := 0; i < 6; i++ {
		if code, body := rawRequest(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\nX-Id: f\r\n\r\n", false); code != 200 || body != "id=f" {
			t.Errorf("request %d with one node full = %d %q, want 200 from the other", i, code, body)
		}
	}
	close(gate)
	if code := <-first; code != 200 {
		t.Errorf("the slow request = %d", code)
	}
	if got := a.reqs.Load() + b.reqs.Load(); got != 7 {
		t.Errorf("nodes read %d requests, want 7", got)
	}
}

// listenYAML is baseYAML without its timeouts, for tests that set their own.
const listenYAML = `
listen: [{address: "127.0.0.1:0"}]
admin: {listen: "127.0.0.1:0"}
`

// scriptedNode is a raw TCP node whose answers a test writes byte by byte.
type scriptedNode struct {
	ln    net.Listener
	conns atomic.Int64 // connections accepted
	reqs  atomic.Int64 // requests read
}

// startScript runs a node calling answer for every request read; answer
// writes raw bytes and returns false to close the connection.
func startScript(t *testing.T, answer func(c net.Conn, req *fasthttp.Request) bool) *scriptedNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &scriptedNode{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.conns.Add(1)
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					n.reqs.Add(1)
					if !answer(c, &req) {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return n
}

func (n *scriptedNode) addr() string { return n.ln.Addr().String() }

// tcpClose is the Linux TCP state of a socket that was reset (or never
// connected): what it sent will not be acknowledged.
const tcpClose = 7

// waitDelivered waits (bounded) until the peer's kernel has acknowledged
// everything written on c, a FIN included, so the bytes are in the peer's
// socket (a delayed ACK only makes the wait longer), or until the peer
// reset the connection. Unlike idnode_test.go's waitAcked it fails when
// the bound passes and returns at once on a reset.
func waitDelivered(c net.Conn) error {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var unacked, state int
		var serr error
		if err := raw.Control(func(fd uintptr) {
			if unacked, serr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); serr != nil {
				return
			}
			var info *unix.TCPInfo
			if info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr == nil {
				state = int(info.State)
			}
		}); err != nil {
			return err
		}
		switch {
		case serr != nil:
			return serr
		case unacked == 0 || state == tcpClose:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%d bytes written to the balancer still unacknowledged after 30s", unacked)
		}
		time.Sleep(time.Millisecond)
	}
}

func (n *scriptedNode) spec(name string) NodeSpec {
	return NodeSpec{Name: name, Address: n.addr(), Weight: 100}
}

// answerID answers 200 with "id=" and the request's X-Id.
func answerID(c net.Conn, req *fasthttp.Request) bool {
	body := "id=" + string(req.Header.Peek("X-Id"))
	_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return err == nil
}

// rawResponse sends raw on a new connection and reads one answer.
func rawResponse(t *testing.T, addr, raw string, head bool) *fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return &fasthttp.Response{}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Error(err)
	}
	resp := &fasthttp.Response{SkipBody: head}
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Errorf("reading the answer to %q: %v", raw, err)
	}
	return resp
}

func rawRequest(t *testing.T, addr, raw string, head bool) (int, string) {
	t.Helper()
	resp := rawResponse(t, addr, raw, head)
	return resp.StatusCode(), string(resp.Body())
}

// recHealth records what the balancer tells passive health, per node.
type recHealth struct {
	mu    sync.Mutex
	nodes map[string]*recNode
}

func newRecHealth() *recHealth { return &recHealth{nodes: map[string]*recNode{}} }

func (h *recHealth) NodeHealth(addr string) NodeHealth { return h.node(addr) }

func (h *recHealth) node(addr string) *recNode {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nodes[addr] == nil {
		h.nodes[addr] = &recNode{}
	}
	return h.nodes[addr]
}

// recNode is always up at weight 100 and counts outcomes.
type recNode struct {
	outcomes [health.BadAnswer + 1]atomic.Int64
}

func (n *recNode) State() health.State               { return health.Up }
func (n *recNode) Operator() health.State            { return health.Up }
func (n *recNode) Weight(int64) int                  { return 100 }
func (n *recNode) Observe(o health.Outcome, _ int64) { n.outcomes[o].Add(1) }

// failures counts every outcome that passive detection counts.
func (n *recNode) failures() int64 {
	return n.outcomes[health.ConnectFailure].Load() + n.outcomes[health.ServerError].Load() +
		n.outcomes[health.Timeout].Load() + n.outcomes[health.BadAnswer].Load()
}

func startLBWith(t testing.TB, cfg *configsConfig, nodes []NodeSpec, h HealthSource) (*Server, string) {
	t.Helper()
	rt, err := NewRuntime(cfg, nodes, Deps{Logger: zaptest.NewLogger(t), Health: h})
	if err != nil {
		t.Fatal(err)
	}
	s := serveRuntime(t, rt)
	return s, s.Addrs()[0]
}

// serveRuntime starts a Server on rt's listeners until the test ends, when
// Serve must return without an error.
func serveRuntime(t testing.TB, rt *Runtime) *Server {
	t.Helper()
	s := NewServer(rt)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Listen(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// What a node answers is forwarded only when it is an HTTP/1.x answer the
// client can read as the node meant it (issue 11: answers well-formed).
// Otherwise it is a bad answer: 502, the node blamed. The client always
// gets the balancer's own version (RFC 9110 6.2), not the node's.
func TestNodeAnswerMustBeWellFormed(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		status int
	}{
		{"well-formed", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200},
		{"header name with a space", "HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 2\r\n\r\nok", 502},
		{"trailer name with a space", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\nBad Trailer: 2\r\n\r\n", 502},
		// Found by FuzzRequestPath: fasthttp reads any HTTP/d.d and any three
		// digits, and status 000 as 200.
		{"version 0.0", "HTTP/0.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 502},
		{"version 2.0", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 502},
		{"status 000", "HTTP/1.1 000 \r\nContent-Length: 2\r\n\r\nok", 502},
		{"status 000 after spaces", "HTTP/1.1   000 x\r\nContent-Length: 2\r\n\r\nok", 502},
		{"status 099", "HTTP/1.1 099 x\r\nContent-Length: 2\r\n\r\nok", 502},
		{"status 600", "HTTP/1.1 600 x\r\nContent-Length: 2\r\n\r\nok", 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startScript(t, func(c net.Conn, _ *fasthttp.Request) bool {
				_, _ = c.Write([]byte(tt.answer))
				return false
			})
			h := newRecHealth()
			_, addr := startLBWith(t, testConfig(t, listenYAML+"timeouts: {connect: 200ms, request: 2s}\nbalancing: {retries: 0}\n"), []NodeSpec{n.spec("n1")}, h)
			resp := rawResponse(t, addr, "GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n", false)
			if got := resp.StatusCode(); got != tt.status {
				t.Errorf("status = %d, want %d", got, tt.status)
			}
			if p := string(resp.Header.Protocol()); p != "HTTP/1.1" {
				t.Errorf("client got version %q, want HTTP/1.1", p)
			}
			for k := range resp.Header.All() {
				if !isToken(k) {
					t.Errorf("client got header name %q", k)
				}
			}
			want := map[bool]int64{true: 1}[tt.status == 502]
			if got := h.node(n.addr()).failures(); got != want {
				t.Errorf("node blamed %d times, want %d", got, want)
			}
		})
	}
}
