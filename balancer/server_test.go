package balancer

import (
	"context"
	"net"
	"testing"
	"time"

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

// waitHealthy waits (bounded) until s.Healthy() is want.
func waitHealthy(s *Server, want bool) bool {
	for i := 0; i < 500; i++ {
		if s.Healthy() == want {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// rawListener is the socket under the i-th listener.
func rawListener(s *Server, i int) net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lns[i].Listener
}
