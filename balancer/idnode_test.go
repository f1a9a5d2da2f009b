package balancer

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// An idNode is a raw-TCP node that answers every request with the id the
// request carries (X-Req-Id), in a header, a cookie and the body, so that a
// client can tell its own answer from anyone else's. What it does per
// request is an act its choose function picks: a healthy node always
// answers well, a misbehaving one at random (issue 11). It logs which ids
// reached it, in order, so a test can tell retries.

// act is what an idNode does with one request.
type act uint8

const (
	actGood      act = iota // a well-formed answer
	actSlow                 // a well-formed answer after up to 300 ms
	actStray                // a well-formed answer and a second one in the same write
	actShortCL              // a Content-Length shorter than the body: the rest is stray
	actLate                 // a well-formed answer, a second one once the connection is idle
	actIdleClose            // a well-formed answer, then the connection closed once idle
	actHeadBody             // a HEAD answered with its body, and a second answer
	// The node's faults, from here on: the balancer must count each once
	// against the node.
	act101      // an unrequested 101 Switching Protocols
	actResetMid // half an answer head, then an RST
	actCloseEarly
	actTruncated // a body shorter than its Content-Length, then close
	actGarbage   // bytes that are no HTTP answer
	actRaw       // the node's raw answer bytes (a fuzz target's), then close
	numActs
)

var actNames = [numActs]string{"good", "slow", "stray", "short-cl", "late", "idle-close", "head-body", "101", "reset-mid", "close-early", "truncated", "garbage", "raw"}

func (a act) String() string { return actNames[a] }

// fault reports whether the act is a failure of the node, one the
// balancer must blame it for.
func (a act) fault() bool { return a >= act101 }

// healthBody is mosparo's answer to a healthy check (FACTS 1.1).
const healthBody = `{"service":"mosparo","healthy":true,"databaseStatus":"connected","error":null,"statusCode":200}`

// connTrack is what a test's dial hook knows of one balancer-to-node
// connection: how often the balancer took it for a request, seen at its
// stale check or, when there was none, at the request's write. A node
// writing bytes while the connection is idle holds mu, so the balancer's
// check comes either before them (the node then sees the count moved and
// writes nothing) or after them (it must see them): without that, bytes
// crossing the next request on the wire are the next answer for any
// HTTP/1.1 proxy, and no test could tell a defect.
type connTrack struct {
	mu     sync.Mutex
	taken  int
	polled bool // taken counted at the stale check, not yet written
}

// connRegistry maps the balancer's end of each node connection to its track.
type connRegistry struct {
	mu sync.Mutex
	m  map[string]*connTrack
}

func newConnRegistry() *connRegistry { return &connRegistry{m: map[string]*connTrack{}} }

func (r *connRegistry) lookup(addr string) *connTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[addr]
}

// dial is a Deps.Dial whose connections count the balancer's stale checks.
func (r *connRegistry) dial(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	tr := &connTrack{}
	r.mu.Lock()
	r.m[tc.LocalAddr().String()] = tr
	r.mu.Unlock()
	return &trackedConn{TCPConn: tc, tr: tr}, nil
}

// trackedConn hands nodeConn a RawConn whose Control (the stale check)
// counts.
type trackedConn struct {
	*net.TCPConn
	tr *connTrack
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.tr.mu.Lock()
	if !c.tr.polled {
		c.tr.taken++
	}
	c.tr.polled = false
	c.tr.mu.Unlock()
	return c.TCPConn.Write(p)
}

func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	raw, err := c.TCPConn.SyscallConn()
	if err != nil {
		return nil, err
	}
	return trackedRaw{RawConn: raw, tr: c.tr}, nil
}

type trackedRaw struct {
	syscall.RawConn
	tr *connTrack
}

func (r trackedRaw) Control(f func(fd uintptr)) error {
	r.tr.mu.Lock()
	defer r.tr.mu.Unlock()
	r.tr.taken++
	r.tr.polled = true
	return r.RawConn.Control(f)
}

type idNode struct {
	name   string
	ln     net.Listener
	reg    *connRegistry // nil: no idle-time acts
	choose func(head bool) act

	// nonce, when set, is echoed instead of the request's X-Req-Id (for a
	// fuzz target whose requests carry no id).
	nonce atomic.Pointer[string]
	// inspect, when set, is shown every request read before it is answered.
	inspect func(req *fasthttp.Request)
	// raw holds actRaw's answer; "{ID}" in it stands for the id.
	raw atomic.Pointer[[]byte]

	acts     [numActs]atomic.Int64
	faults   atomic.Int64
	late     atomic.Int64 // late answers actually written
	mismatch atomic.Int64 // POST bodies that were not "data=" and the id
	requests atomic.Int64
	// busy counts requests read and not yet answered, closing included.
	busy atomic.Int64

	mu    sync.Mutex
	log   func(id, node string, a act) // every id read, in order, with the act it got
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  bool
}

// startIDNode starts a node; reg (for idle-time acts), log and inspect may be nil.
func startIDNode(name string, reg *connRegistry, log func(id, node string, a act), inspect func(*fasthttp.Request), choose func(head bool) act) (*idNode, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &idNode{name: name, ln: ln, reg: reg, choose: choose, log: log, inspect: inspect, conns: map[net.Conn]struct{}{}}
	n.wg.Add(1)
	go n.accept()
	return n, nil
}

func (n *idNode) addr() string { return n.ln.Addr().String() }

func (n *idNode) accept() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.done {
			n.mu.Unlock()
			c.Close()
			return
		}
		n.conns[c] = struct{}{}
		n.wg.Add(1)
		n.mu.Unlock()
		go n.serve(c.(*net.TCPConn))
	}
}

// close stops the node and waits for its goroutines.
func (n *idNode) close() {
	n.ln.Close()
	n.mu.Lock()
	n.done = true
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
}

func (n *idNode) serve(c *net.TCPConn) {
	defer n.wg.Done()
	defer func() {
		c.Close()
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	var req fasthttp.Request
	for reqs := 1; ; reqs++ {
		req.Reset()
		if err := req.Read(br); err != nil {
			return
		}
		if len(req.Header.Peek(fasthttp.HeaderXForwardedFor)) == 0 {
			// Not forwarded by the balancer (which always sets
			// X-Forwarded-For): the health checker's own probe or code-version
			// fingerprint (GET /build/entrypoints.json, issue 12). An act
			// played on it would be a fault the balancer never sees, so it
			// gets a fixed answer and counts nowhere.
			n.answerChecker(c, &req)
			return
		}
		n.requests.Add(1)
		n.busy.Add(1)
		if n.inspect != nil {
			n.inspect(&req)
		}
		id := string(req.Header.Peek("X-Req-Id"))
		nonce := n.nonce.Load()
		if nonce != nil {
			id = *nonce
		}
		if req.Header.IsPost() && string(req.Body()) != "data="+id {
			n.mismatch.Add(1)
		}
		head := req.Header.IsHead()
		a := n.choose(head)
		n.acts[a].Add(1)
		if a.fault() {
			n.faults.Add(1)
		}
		if nonce == nil && n.log != nil && id != "" {
			n.log(id, n.name, a)
		}
		if string(req.URI().Path()) == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		if !n.play(c, a, id, head, reqs) {
			// The FIN is in the balancer's socket before the request counts
			// as done: a test that waits for busy to drop then knows the
			// next stale check sees it.
			_ = c.CloseWrite()
			waitAcked(c)
			n.busy.Add(-1)
			return
		}
		n.busy.Add(-1)
	}
}

// answerChecker answers the health checker: mosparo's healthy answer to
// the probe, 404 to anything else (no Encore build, so no fingerprint).
func (n *idNode) answerChecker(c net.Conn, req *fasthttp.Request) {
	if string(req.URI().Path()) == "/api/v1/health/check" {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(healthBody), healthBody)
		return
	}
	fmt.Fprint(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

// answer is the well-formed answer to id (without its body for a HEAD).
func (n *idNode) answer(id string, head bool) []byte {
	body := "id=" + id
	b := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nX-Node: %s\r\nX-Echo-Id: %s\r\nSet-Cookie: rid=%s; path=/\r\nContent-Length: %d\r\n\r\n", n.name, id, id, len(body))
	if !head {
		b = append(b, body...)
	}
	return b
}

// play carries out act a for the reqs-th request on c; false closes c.
func (n *idNode) play(c *net.TCPConn, a act, id string, head bool, reqs int) bool {
	var err error
	switch a {
	case actGood:
		_, err = c.Write(n.answer(id, head))
	case actSlow:
		time.Sleep(time.Duration(reqs*37%300) * time.Millisecond)
		_, err = c.Write(n.answer(id, head))
	case actStray:
		_, err = c.Write(append(n.answer(id, head), n.answer(id, false)...))
	case actShortCL:
		body := "id=" + id
		_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Node: %s\r\nX-Echo-Id: %s\r\nContent-Length: 3\r\n\r\n%s%s", n.name, id, body, n.answer(id, false))
	case actHeadBody:
		_, err = c.Write(append(n.answer(id, false), n.answer(id, false)...))
	case actLate, actIdleClose:
		if _, err = c.Write(n.answer(id, head)); err != nil {
			return false
		}
		time.Sleep(time.Duration(5+reqs*13%40) * time.Millisecond)
		return n.whileIdle(c, a, id, reqs)
	case act101:
		_, _ = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nX-Echo-Id: " + id + "\r\n"))
		return true // the balancer must close it
	case actResetMid:
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nX-Echo-Id: " + id + "\r\nContent-Le"))
		_ = c.SetLinger(0)
		return false
	case actCloseEarly:
		return false
	case actTruncated:
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Echo-Id: %s\r\nContent-Length: 100\r\n\r\nid=%s", id, id)
		return false
	case actGarbage:
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n\r\n"))
		return false
	case actRaw:
		if p := n.raw.Load(); p != nil {
			_, _ = c.Write(bytes.ReplaceAll(*p, []byte("{ID}"), []byte(id)))
		}
		return false
	}
	return err == nil
}

// whileIdle writes a late answer, or closes, while the balancer holds the
// connection idle: only when it has not taken the connection for another
// request since (see connTrack), and only once the bytes are acknowledged,
// so that they are in the balancer's socket before it can look again.
func (n *idNode) whileIdle(c *net.TCPConn, a act, id string, reqs int) bool {
	if n.reg == nil {
		return true
	}
	tr := n.reg.lookup(c.RemoteAddr().String())
	if tr == nil {
		return true
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.taken != reqs {
		return true // the next request is on its way: too late to be late
	}
	if a == actIdleClose {
		_ = c.CloseWrite()
		waitAcked(c)
		return false
	}
	if _, err := c.Write(n.answer(id, false)); err != nil {
		return false
	}
	n.late.Add(1)
	waitAcked(c)
	return true
}

// waitAcked waits (bounded) until the peer acknowledged everything c sent:
// the bytes, or the FIN, are then in the peer's socket.
func waitAcked(c *net.TCPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		queued := 1
		_ = raw.Control(func(fd uintptr) {
			if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
				queued = v
			}
		})
		if queued == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// idOf returns the id an answer from an idNode carries ("" if none).
func idOf(h *fasthttp.ResponseHeader) string { return string(h.Peek("X-Echo-Id")) }
