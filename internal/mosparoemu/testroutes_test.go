package mosparoemu

import (
	"bufio"
	"encoding/json"
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
