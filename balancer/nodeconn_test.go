package balancer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// The stale look reports every state of an idle node connection that must
// not carry another request (bytes, an end of stream, a reset) and nothing
// else, and consumes nothing: a connection it clears stays usable, and the
// bytes it sees are still there for whoever reads next.
func TestStaleLook(t *testing.T) {
	for _, tc := range []struct {
		name  string
		node  func(t *testing.T, c *net.TCPConn) // what the node does while the connection idles
		stale bool
	}{
		{"idle", func(*testing.T, *net.TCPConn) {}, false},
		{"one stray byte", func(t *testing.T, c *net.TCPConn) { mustWrite(t, c, "x") }, true},
		{"the rest of an answer", func(t *testing.T, c *net.TCPConn) { mustWrite(t, c, "HTTP/1.1 200 OK\r\n\r\n") }, true},
		{"closed (FIN)", func(t *testing.T, c *net.TCPConn) { _ = c.Close() }, true},
		{"half-closed", func(t *testing.T, c *net.TCPConn) { _ = c.CloseWrite() }, true},
		{"reset (RST)", func(t *testing.T, c *net.TCPConn) { _ = c.SetLinger(0); _ = c.Close() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb, node := tcpPair(t)
			nc := newNodeConn(lb)
			if nc.stale() {
				t.Fatal("a fresh connection is stale")
			}
			tc.node(t, node)
			// Arrival on loopback is asynchronous in principle: look until
			// the expected state shows, bounded; an idle connection must
			// stay clean for every look.
			got := false
			for i := 0; i < 200 && !got; i++ {
				got = nc.stale()
				if !tc.stale {
					if got {
						t.Fatal("an idle connection looked stale")
					}
					if i == 20 {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got != tc.stale {
				t.Fatalf("stale = %v, want %v", got, tc.stale)
			}
			if tc.name == "one stray byte" {
				_ = lb.SetReadDeadline(time.Now().Add(10 * time.Second))
				var b [1]byte
				if _, err := io.ReadFull(lb, b[:]); err != nil || b[0] != 'x' {
					t.Fatalf("the peeked byte was consumed: %q %v", b, err)
				}
			}
		})
	}
}

func mustWrite(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// oneAnswerNode is a loopback node answering "id=<X-Id>" to every request;
// after its first answer it waits for go, does idle to the connection (what
// happens while the LB keeps it in the pool), and reports done.
type oneAnswerNode struct {
	addr     string
	accepted atomic.Int32
	release  chan struct{}
	done     chan struct{}
}

func startOneAnswerNode(t *testing.T, idle func(c *net.TCPConn) bool) *oneAnswerNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &oneAnswerNode{addr: ln.Addr().String(), release: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			first := n.accepted.Add(1) == 1
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var req fasthttp.Request
					if req.Read(br) != nil {
						return
					}
					body := "id=" + string(req.Header.Peek("X-Id"))
					if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
						return
					}
					if first {
						first = false
						<-n.release
						keep := idle(c.(*net.TCPConn))
						close(n.done)
						if !keep {
							return
						}
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return n
}

// A pooled node connection carries the next request only when the node
// did nothing while it sat idle: bytes nobody asked for (which the next
// request, usually another client's, would read as its answer), an end of
// stream or a reset make the exchange discard it and dial anew; a clean
// one is reused. Real sockets through the runtime's own dial and pool.
func TestNodeConnReusedOnlyWhenClean(t *testing.T) {
	const stolen = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nSet-Cookie: victim=1\r\n\r\nSTOLEN"
	for _, tc := range []struct {
		name  string
		idle  func(c *net.TCPConn) bool // false: the node is done with the connection
		dials int32
	}{
		{"clean", func(*net.TCPConn) bool { return true }, 1},
		{"one stray byte", func(c *net.TCPConn) bool { _, _ = c.Write([]byte("H")); return true }, 2},
		{"a late second answer", func(c *net.TCPConn) bool { _, _ = c.Write([]byte(stolen)); return true }, 2},
		{"a megabyte of garbage", func(c *net.TCPConn) bool {
			_, _ = c.Write(bytes.Repeat([]byte("\x00\xff"), 1<<19))
			return false
		}, 2},
		{"closed (FIN)", func(*net.TCPConn) bool { return false }, 2},
		{"half-closed", func(c *net.TCPConn) bool { _ = c.CloseWrite(); return true }, 2},
		{"reset (RST)", func(c *net.TCPConn) bool { _ = c.SetLinger(0); return false }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startOneAnswerNode(t, tc.idle)
			var mu sync.Mutex
			var dialed []net.Conn
			dial := func(addr string, timeout time.Duration) (net.Conn, error) {
				c, err := net.DialTimeout("tcp", addr, timeout)
				if err == nil {
					mu.Lock()
					dialed = append(dialed, c)
					mu.Unlock()
				}
				return c, err
			}
			// upstream_idle: the pool itself must not drop the connection first.
			cfg := testConfig(t, listenYAML+"timeouts: {connect: 1s, request: 10s, upstream_idle: 1h}\n")
			rt, err := NewRuntime(cfg, []NodeSpec{{Name: "n1", Address: n.addr, Weight: 100}}, Deps{Dial: dial})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rt.CloseIdle)
			get := func(id string) {
				t.Helper()
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://" + n.addr + "/login")
				req.Header.Set("X-Id", id)
				now := time.Now()
				if err := rt.nodes[0].exchange(req, resp, now.Add(10*time.Second).UnixNano(), now.UnixNano()); err != nil {
					t.Fatalf("request %s: %v", id, err)
				}
				if got := string(resp.Body()); resp.StatusCode() != 200 || got != "id="+id {
					t.Fatalf("request %s got %d %q, want 200 %q: another request's bytes", id, resp.StatusCode(), got, "id="+id)
				}
			}
			get("a")
			close(n.release)
			<-n.done
			if tc.dials > 1 {
				// What the node did reaches this end asynchronously in
				// principle: wait (bounded) until a look at the socket
				// sees it, without consuming anything.
				mu.Lock()
				look := newNodeConn(dialed[0])
				mu.Unlock()
				for i := 0; !look.stale(); i++ {
					if i == 10_000 {
						t.Fatal("the node's doing never reached the pooled connection")
					}
					time.Sleep(time.Millisecond)
				}
			}
			get("b")
			get("c")
			if got := n.accepted.Load(); got != tc.dials {
				t.Errorf("the node accepted %d connections, want %d", got, tc.dials)
			}
		})
	}
}

// A write that fails on the node's side is remembered, so exchange tells a
// node that went away from a request that cannot be written.
func TestNodeConnWriteFailed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(t *testing.T, lb, node *net.TCPConn) // what happens before the LB writes
		failed bool
	}{
		{"healthy", func(*testing.T, *net.TCPConn, *net.TCPConn) {}, false},
		{"node reset the connection", func(t *testing.T, lb, node *net.TCPConn) {
			_ = node.SetLinger(0)
			_ = node.Close()
			// Wait (bounded) until the reset has arrived.
			look := newNodeConn(lb)
			for i := 0; !look.stale(); i++ {
				if i == 10_000 {
					t.Fatal("the reset never arrived")
				}
				time.Sleep(time.Millisecond)
			}
		}, true},
		{"closed on this side", func(_ *testing.T, lb, _ *net.TCPConn) { _ = lb.Close() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb, node := tcpPair(t)
			nc := newNodeConn(lb)
			tc.before(t, lb, node)
			// A reset may let the first write through (into the kernel)
			// and fail the next: a few tries, bounded.
			var err error
			for i := 0; i < 10 && err == nil; i++ {
				_, err = nc.Write([]byte("GET / HTTP/1.1\r\nHost: n1\r\n\r\n"))
				if !tc.failed {
					break
				}
			}
			if nc.writeFailed != tc.failed || (err != nil) != tc.failed {
				t.Errorf("writeFailed = %v after %v, want %v", nc.writeFailed, err, tc.failed)
			}
		})
	}
}

// Connections that are not sockets (in-memory pipes in tests) are never
// stale: there is nothing to look at without reading.
func TestNodeConnNotASocket(t *testing.T) {
	pc := fasthttputil.NewPipeConns()
	nc := newNodeConn(pc.Conn1())
	defer nc.Close()
	mustWrite(t, pc.Conn2(), "stray")
	if nc.stale() {
		t.Error("a pipe looked stale")
	}
	if _, err := nc.Write([]byte("x")); err != nil || nc.writeFailed {
		t.Errorf("Write = %v, writeFailed %v; want a plain write", err, nc.writeFailed)
	}
}

// Closing a connection the watchdog watches also forgets it there, so the
// watchdog neither keeps it alive nor arms a closed descriptor.
func TestNodeConnCloseForgetsWatchdog(t *testing.T) {
	w := newWatchdog(time.Second)
	watched := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.conns)
	}
	lb, node := tcpPair(t)
	nc := newNodeConn(lb)
	w.watch(&nc.watchedConn)
	other, _ := tcpPair(t)
	w.watch(&newNodeConn(other).watchedConn)
	if n := watched(); n != 2 {
		t.Fatalf("watching %d connections, want 2", n)
	}
	if err := nc.Close(); err != nil {
		t.Fatal(err)
	}
	if n := watched(); n != 1 {
		t.Errorf("watching %d connections after Close, want 1", n)
	}
	_ = node.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := node.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the node reads %v after Close, want EOF", err)
	}
	// An unwatched connection closes too.
	lb2, _ := tcpPair(t)
	if err := newNodeConn(lb2).Close(); err != nil {
		t.Errorf("Close of an unwatched connection: %v", err)
	}
}
