package balancer

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// watchedPipe is a watched connection over net.Pipe, whose deadlines behave
// like a socket's, so scans can be driven with chosen clock values.
func watchedPipe(t *testing.T, w *watchdog) (*watchedConn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return w.watch(&watchedConn{Conn: a}), b
}

func TestWatchdogExpiresOnlyLatePhases(t *testing.T) {
	w := newWatchdog(10 * time.Millisecond)
	w.now.Store(1_000_000_000)
	c, peer := watchedPipe(t, w)
	c.arm(time.Second, limitRead)
	due := c.expires.Load() &^ limitBits
	if want := int64(1_000_000_000 + time.Second + 10*time.Millisecond); due != want {
		t.Fatalf("armed for %d, want %d (coarse now + limit + one tick)", due, want)
	}
	w.scan(due - 1)
	if c.expires.Load() == 0 {
		t.Fatal("expired before its time")
	}
	w.scan(due)
	if c.expires.Load() != 0 {
		t.Fatal("not expired at its time")
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read after expiry = %v, want a deadline error", err)
	}
	// A read limit leaves writing alone: the 408 still goes out.
	go io.Copy(io.Discard, peer)
	if _, err := c.Write([]byte("HTTP/1.1 408\r\n")); err != nil {
		t.Errorf("Write after a read expiry = %v, want it to work", err)
	}
}

func TestWatchdogDisarmedAndClosedConnsAreLeftAlone(t *testing.T) {
	w := newWatchdog(10 * time.Millisecond)
	c, peer := watchedPipe(t, w)
	c.armAt(5)
	c.disarm()
	w.scan(1 << 62)
	// A cut sets a past deadline, which a pipe checks before anything
	// else: a read with a byte waiting and a write with a reader waiting
	// both fail at once if the scan cut the connection.
	go func() {
		_, _ = peer.Write([]byte("x"))
		_, _ = peer.Read(make([]byte, 1))
	}()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("a disarmed connection was cut: read %v", err)
	}
	if _, err := c.Write([]byte("y")); err != nil {
		t.Fatalf("a disarmed connection was cut: write %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); done <- err }()
	c.Close()
	if err := <-done; errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read ended with %v, want the close", err)
	}
	if len(w.conns) != 0 {
		t.Errorf("%d connections still watched after Close", len(w.conns))
	}
}

func TestWatchdogExchangeLimitCutsBothWays(t *testing.T) {
	w := newWatchdog(10 * time.Millisecond)
	c, _ := watchedPipe(t, w)
	c.armAt(1000)
	w.scan(1000)
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write = %v, want a deadline error", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read = %v, want a deadline error", err)
	}
}

func TestTickFor(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{30 * time.Second, 90 * time.Second}, 250 * time.Millisecond},
		{[]time.Duration{300 * time.Millisecond, 30 * time.Second}, 15 * time.Millisecond},
		{[]time.Duration{time.Millisecond}, 5 * time.Millisecond},
		{[]time.Duration{0, -1}, 250 * time.Millisecond},
	} {
		if got := tickFor(tc.in...); got != tc.want {
			t.Errorf("tickFor(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// dialTimeoutsLB starts an LB with the given timeouts: section in front of
// nodes and returns a connection to it, closed at the end of the test and
// bounded to 30 s: only a guard against a hang, far above any timeout here,
// since a busy machine may starve the test for seconds.
func dialTimeoutsLB(t *testing.T, timeouts string, nodes []NodeSpec) (*Server, net.Conn) {
	t.Helper()
	srv, addr := startLB(t, testConfig(t, "listen: [{address: \"127.0.0.1:0\"}]\ntimeouts: "+timeouts+"\n"), nodes)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return srv, c
}

// A client that stops halfway through its headers gets a 408 once
// client_read has passed, not before, and its connection is closed.
func TestSlowClientGets408(t *testing.T) {
	n := startEcho(t, "n1")
	_, c := dialTimeoutsLB(t, "{client_read: 300ms}", nodesOf(n))
	start := time.Now()
	if _, err := c.Write([]byte("GET /login HTTP/1.1\r\nHost: x\r\nUser-Agent: slow")); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	took := time.Since(start)
	if !strings.HasPrefix(string(b), "HTTP/1.1 408") || !strings.Contains(string(b), `"error":true`) {
		t.Errorf("answer = %q, want a JSON 408", b)
	}
	// Never early; how late is the machine's business (a starved scheduler
	// on a busy CI machine), so no upper bound: the deadline guards a hang.
	if took < 300*time.Millisecond {
		t.Errorf("408 after %s, want not before client_read (300ms)", took)
	}
	if n.hits.Load() != 0 {
		t.Errorf("the node saw %d requests, want none", n.hits.Load())
	}
}

// An idle keep-alive connection is closed after timeouts.idle, and a
// request arriving before that is served on it. idle is long against the
// pauses (2 s against 50 ms) so that a starved scheduler does not turn a
// pause into an idle timeout.
func TestIdleKeepAliveClosed(t *testing.T) {
	const idle = 2 * time.Second
	_, c := dialTimeoutsLB(t, "{idle: 2s}", nodesOf(startEcho(t, "n1")))
	br := bufio.NewReader(c)
	get := func() error {
		if _, err := c.Write([]byte("GET /login HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err
		}
		var resp fasthttp.Response
		return resp.Read(br)
	}
	var idleFrom time.Time
	for i := 0; i < 3; i++ {
		if i > 0 {
			// The client idling between requests is what is tested,
			// not a wait for an event.
			time.Sleep(50 * time.Millisecond)
		}
		// The balancer's idle time starts at its write, before this.
		idleFrom = time.Now()
		if err := get(); err != nil {
			t.Fatalf("request %d on a connection idle for less than timeouts.idle: %v", i, err)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read = %v, want EOF", err)
	}
	// Not early (never before idle after the request was sent); no upper
	// bound but the 30 s guard: late is the busy machine's.
	if took := time.Since(idleFrom); took < idle {
		t.Errorf("closed %s after the last request was sent, want not before timeouts.idle (%s)", took, idle)
	}
}

// A client that does not read a large answer is cut off once writing it
// has taken longer than timeouts.request; with a longer limit the same
// client, reading late, gets all of it. The client reads once the balancer
// has given up on it (closed the connection, or on a machine too busy to
// fetch the answer within 500ms, answered 504): its read then shows the
// cut-off, however late the watchdog ran.
func TestStalledReaderCutOff(t *testing.T) {
	body := strings.Repeat("x", 48<<20) // more than both sockets' buffers hold
	node := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(body) }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go node.Serve(ln)
	t.Cleanup(func() { ln.Close() })
	for _, tc := range []struct {
		request string
		whole   bool
	}{{"500ms", false}, {"30s", true}} {
		srv, c := dialTimeoutsLB(t, "{request: "+tc.request+"}", []NodeSpec{{Name: "big", Address: ln.Addr().String(), Weight: 100}})
		if _, err := c.Write([]byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if tc.whole {
			// The stall under test: longer than the 500ms that cut the
			// other client off.
			time.Sleep(time.Second)
		} else {
			deadline := time.Now().Add(30 * time.Second)
			for srv.ConnStats().Open != 0 && srv.NodeStats()[0].Failures == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		// The deadline only bounds the whole answer, which a loaded
		// machine under -race may take seconds to copy (well within the
		// 30s request timeout).
		c.SetDeadline(time.Now().Add(25 * time.Second))
		var resp fasthttp.Response
		err := resp.Read(bufio.NewReader(c))
		if whole := err == nil && len(resp.Body()) == len(body); whole != tc.whole {
			t.Errorf("request %s: whole answer read = %v (%v), want %v", tc.request, whole, err, tc.whole)
		}
	}
}
