package balancer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// breakListener makes a listening socket fail the way a broken one does:
// accept returns a permanent error (EINVAL after shutdown(2)) while the
// socket stays open.
func breakListener(t *testing.T, ln net.Listener) {
	t.Helper()
	sc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := sc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_RDWR) }); err != nil || serr != nil {
		t.Fatalf("shutdown: %v, %v", err, serr)
	}
}

// TestServeReturnsWhenItsOnlyListenerFails: a listener that stops
// accepting ends Serve with an error naming it, instead of a process that
// keeps running (and keeps the VIP) with nothing serving (issue 13, defect 2).
func TestServeReturnsWhenItsOnlyListenerFails(t *testing.T) {
	cfg := testConfig(t, "listen: [{address: \"127.0.0.1:0\"}]\nnodes: [{name: n1, address: \"127.0.0.1:1\"}]\n")
	rt, err := NewRuntime(cfg, []NodeSpec{{Name: "n1", Address: "127.0.0.1:1", Weight: 100}}, Deps{Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(rt)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	if !waitHealthy(s, true) {
		t.Fatal("the server never reported healthy")
	}
	breakListener(t, rawListener(s, 0))
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve = nil after its only listener failed, want an error")
		}
		t.Logf("Serve = %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("Serve still runs 20s after its only listener failed")
	}
	if s.Healthy() {
		t.Error("Healthy() = true after the data plane stopped")
	}
}

// waitHealthy waits until s.Healthy() is want; the 30s bound only guards a
// hang (a busy machine may starve the accept loop for seconds).
func waitHealthy(s *Server, want bool) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if s.Healthy() == want {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s.Healthy() == want
}

// rawListener is the socket under the i-th listener.
func rawListener(s *Server, i int) net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lns[i].Listener
}

// TestListenerOutOfDescriptorsIsUnhealthy: while accept fails for want of
// file descriptors the listener retries instead of giving up and Healthy
// reports false (VRRP tracks it); once descriptors are free it accepts the
// waiting connection and is healthy again.
func TestListenerOutOfDescriptorsIsUnhealthy(t *testing.T) {
	// A node that refuses: the test is about the LB's accept, and a node
	// server in this process would lose its own accept to the limit.
	cfg := testConfig(t, "listen: [{address: \"127.0.0.1:0\"}]\nnodes: [{name: n1, address: \"127.0.0.1:1\"}]\n")
	s, addr := startLB(t, cfg, []NodeSpec{{Name: "n1", Address: "127.0.0.1:1", Weight: 100}})
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	tight := saved
	tight.Cur = uint64(len(fds) + 1)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &tight); err != nil {
		t.Fatal(err)
	}
	// Take every descriptor left but one, which the client's socket takes:
	// the LB's accept then has none.
	var filler []*os.File
	release := func() {
		for _, f := range filler {
			f.Close()
		}
		filler = nil
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
			t.Error(err)
		}
	}
	defer release()
	for i := 0; i < 16; i++ {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		filler = append(filler, f)
	}
	if len(filler) == 0 {
		t.Fatal("no descriptor was left to take")
	}
	filler[len(filler)-1].Close()
	filler = filler[:len(filler)-1]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		release()
		t.Fatalf("dial with one descriptor left: %v", err)
	}
	defer c.Close()
	if !waitHealthy(s, false) {
		release()
		t.Fatal("Healthy() stayed true while accept had no descriptor")
	}
	release()
	for _, conn := range []net.Conn{c, nil} {
		if conn == nil {
			if conn, err = net.Dial("tcp", addr); err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(conn)); err != nil {
			t.Fatalf("GET after descriptors were freed: %v; want an answer", err)
		}
	}
	if !waitHealthy(s, true) {
		t.Error("Healthy() stayed false after accept worked again")
	}
}

// TestListenHookProvidesSockets: with Deps.Listen the server serves the
// sockets the hook hands it (here already bound, as systemd's or an
// upgraded process's would be, so binding them again would fail), asks it
// only for addresses it does not hold yet, and a hook failure fails Bind
// with the address and changes nothing.
func TestListenHookProvidesSockets(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := held.Addr().String()
	b := freeAddr(t)
	calls := map[string]int{}
	var mu sync.Mutex
	hook := func(network, address string) (net.Listener, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[network+" "+address]++
		if address == a {
			return held, nil
		}
		return nil, errors.New("not inherited")
	}
	runtime := func(listen string) *Runtime {
		cfg := testConfig(t, "listen: ["+listen+"]\nnodes: [{name: n1, address: \"127.0.0.1:1\"}]\n")
		rt, err := NewRuntime(cfg, []NodeSpec{{Name: "n1", Address: "127.0.0.1:1", Weight: 100}}, Deps{Logger: zaptest.NewLogger(t), Listen: hook})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	s := NewServer(runtime(fmt.Sprintf("{address: %q}", a)))
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	answered := func() bool {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return false
		}
		var resp fasthttp.Response
		return resp.Read(bufio.NewReader(c)) == nil
	}
	if !answered() {
		t.Fatal("no HTTP answer on the socket the hook handed over")
	}
	_, err = s.Bind(ctx, runtime(fmt.Sprintf("{address: %q}, {address: %q}", a, b)))
	if err == nil || !strings.Contains(err.Error(), b) || !strings.Contains(err.Error(), "not inherited") {
		t.Errorf("Bind with a failing hook = %v, want its error naming %s", err, b)
	}
	mu.Lock()
	if want := map[string]int{"tcp " + a: 1, "tcp " + b: 1}; !maps.Equal(calls, want) {
		t.Errorf("hook calls = %v, want %v (a held address is not asked for again)", calls, want)
	}
	mu.Unlock()
	if !answered() || !s.Healthy() {
		t.Error("the failed Bind disturbed the served socket")
	}
}

// freeAddr is a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestListenFreebindTakesAnAbsentAddress: the default binding (and a
// Listen hook's fallback) accepts an address this host does not hold, as a
// backup's VIP; a plain bind refuses it.
func TestListenFreebindTakesAnAbsentAddress(t *testing.T) {
	const absent = "192.0.2.55:0" // TEST-NET-1, on no interface here
	if ln, err := net.Listen("tcp", absent); err == nil {
		ln.Close()
		t.Skip("this host holds 192.0.2.55; nothing to show")
	}
	ln, err := ListenFreebind("tcp", absent)
	if err != nil {
		t.Fatalf("ListenFreebind(%s) = %v, want a socket", absent, err)
	}
	ln.Close()
}

// failingListener fails Accept as accept4 does out of descriptors (EMFILE)
// while fail is set, and accepts on the socket under it otherwise.
type failingListener struct {
	net.Listener
	fail atomic.Bool
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fail.Load() {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestHealthyOnTheClock: Healthy and the accept retries run on Deps.Clock.
// A listener whose accepts keep failing stays unhealthy for as long as
// they fail, however long that is; it is healthy again failWindow after
// the last failure, or at once when an accept works. The clock moves only
// when a retry is waiting, so every check is exact.
func TestHealthyOnTheClock(t *testing.T) {
	manual := clocktest.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	clk := clocktest.Observe(manual)
	sock, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: sock}
	fl.fail.Store(true)
	cfg := testConfig(t, "listen: [{address: \"127.0.0.1:0\"}]\nnodes: [{name: n1, address: \"127.0.0.1:1\"}]\n")
	rt, err := NewRuntime(cfg, []NodeSpec{{Name: "n1", Address: "127.0.0.1:1", Weight: 100}}, Deps{
		Logger: zaptest.NewLogger(t),
		Clock:  clk,
		Listen: func(string, string) (net.Listener, error) { return fl, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	s := serveRuntime(t, rt)
	// retry is the pause Accept starts after a failure (reported once the
	// failure has been recorded); the timeout only guards a hang.
	retry := func() time.Duration {
		t.Helper()
		select {
		case d := <-clk.Waits:
			return d
		case <-time.After(30 * time.Second):
			t.Fatal("no accept retry started within 30s")
			return 0
		}
	}

	d := retry()
	failing := time.Duration(0)
	for failing <= failWindow+time.Second {
		if s.Healthy() {
			t.Fatalf("Healthy() = true %s into failing accepts", failing)
		}
		manual.Advance(d)
		failing += d
		d = retry()
	}
	if d != time.Second {
		t.Errorf("retry pause after %s of failures = %s, want the 1s cap", failing, d)
	}

	// Recovery without a connection: the last failure ages out.
	fl.fail.Store(false)
	manual.Advance(d) // the retry now waits on the socket
	if s.Healthy() {
		t.Errorf("Healthy() = true %s after the last failed accept, want false until %s", d, failWindow)
	}
	manual.Advance(failWindow - d)
	if !s.Healthy() {
		t.Errorf("Healthy() = false %s after the last failed accept, want true", failWindow)
	}

	// Recovery by an accept that works: at once, whatever the clock says.
	fl.fail.Store(true)
	first, err := net.Dial("tcp", fl.Addr().String()) // ends the wait on the socket
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	d = retry()
	if s.Healthy() {
		t.Fatal("Healthy() = true right after a failed accept")
	}
	fl.fail.Store(false)
	c, err := net.Dial("tcp", fl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	manual.Advance(d)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("no answer once accept worked again: %v", err)
	}
	if !s.Healthy() {
		t.Errorf("Healthy() = false after an accept worked, %s after the failure", d)
	}
}
