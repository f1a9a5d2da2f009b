package mosparotest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawRequest writes raw bytes on a new connection and returns the response.
func rawRequest(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestEcho(t *testing.T) {
	n := startNode(t, Options{Name: "e1"})
	raw := "POST /__echo?a=1&b=%2F HTTP/1.1\r\nhost: example.test\r\nx-forwarded-for: 1.2.3.4\r\nX-FORWARDED-FOR: 5.6.7.8\r\nCookie: a=b\r\ncookie: c=d\r\nContent-Length: 5\r\n\r\nhello"
	resp := rawRequest(t, n.Addr(), raw)
	defer resp.Body.Close()
	var e Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	want := []EchoHeader{
		{"host", "example.test"}, {"x-forwarded-for", "1.2.3.4"}, {"X-FORWARDED-FOR", "5.6.7.8"},
		{"Cookie", "a=b"}, {"cookie", "c=d"}, {"Content-Length", "5"},
	}
	if fmt.Sprint(e.Headers) != fmt.Sprint(want) {
		t.Errorf("headers = %v, want %v", e.Headers, want)
	}
	if e.Node != "e1" || e.Method != "POST" || e.URI != "/__echo?a=1&b=%2F" || e.Proto != "HTTP/1.1" {
		t.Errorf("echo = %+v", e)
	}
	if e.BodyLength != 5 || e.BodySHA256 != sha256Hex("hello") || !strings.HasPrefix(e.RemoteAddr, "127.0.0.1:") {
		t.Errorf("echo body/remote = %d %s %s", e.BodyLength, e.BodySHA256, e.RemoteAddr)
	}
	if got := e.Values("X-Forwarded-For"); len(got) != 2 {
		t.Errorf("Values(X-Forwarded-For) = %v", got)
	}
	if n.Count("echo") != 1 || n.Requests("POST", "/__echo") != 1 {
		t.Errorf("echo counters = %d %d, want 1 1", n.Count("echo"), n.Requests("POST", "/__echo"))
	}
	// The echo route is never redirected, whatever the health state.
	n.SetHealth(NotConfigured)
	if r := get(t, n.URL()+"/__echo"); r.status != 200 {
		t.Errorf("echo while not configured = %d", r.status)
	}
}

func TestStatusSleepDelay(t *testing.T) {
	n := startNode(t, Options{})
	if r := get(t, n.URL()+"/__status?code=503"); r.status != 503 {
		t.Errorf("__status = %d, want 503", r.status)
	}
	if r := get(t, n.URL()+"/__status?code=99"); r.status != 400 {
		t.Errorf("__status bad code = %d, want 400", r.status)
	}
	start := time.Now()
	if r := get(t, n.URL()+"/__sleep?ms=50"); r.status != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("__sleep = %d after %v", r.status, time.Since(start))
	}
	n.SetDelay(50 * time.Millisecond)
	start = time.Now()
	if r := get(t, n.URL()+"/robots.txt"); r.status != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("delayed = %d after %v", r.status, time.Since(start))
	}
	n.Reset()
	if n.Count("static") != 0 || n.Total() != 0 {
		t.Errorf("after Reset Count(static) = %d, Total = %d", n.Count("static"), n.Total())
	}
}

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
	for n.Count("test") < 1 {
		time.Sleep(2 * time.Millisecond)
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
