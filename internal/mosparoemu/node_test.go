package mosparoemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestCloseRestart: Close drops listeners and open connections at once, also with a request in
// flight; Restart serves again on the same address.
func TestCloseRestart(t *testing.T) {
	n := startNode(t, Options{})
	addr := n.Addr()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	inflight := make(chan error, 1)
	go func() {
		_, err := testClient().Get(n.URL() + "/__sleep?ms=10000")
		inflight <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); n.Count("test") < 1; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the node")
		}
	}

	start := time.Now()
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-inflight; err == nil {
		t.Errorf("in-flight request succeeded, want a connection error")
	}
	_ = idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !isConnReset(err) {
		t.Errorf("idle keep-alive connection read = %v, want EOF", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("dial after Close succeeded")
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	if err := n.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if n.Addr() != addr {
		t.Errorf("Addr after Restart = %s, want %s", n.Addr(), addr)
	}
	if r := get(t, n.URL()+"/robots.txt"); r.status != 200 {
		t.Errorf("after Restart = %d", r.status)
	}
	if got := n.Count("static"); got != 2 {
		t.Errorf("Count(static) = %d, want 2 (counters survive a restart)", got)
	}
	if err := n.Restart(); err != nil {
		t.Errorf("Restart of a running node: %v", err)
	}
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}
