package balancer

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/valyala/fasthttp"
)

func TestClassifyForwardErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		want       cause
		status     int
		outcome    health.Outcome
		retry      bool // for a non-idempotent method
		retryIdemp bool
	}{
		{"request not writable", &requestError{err: errors.New("missing required Host header")}, causeClient, 400, 0, false, false},
		{"queue full", errQueueFull, causeQueue, 503, 0, false, false},
		{"refused", &dialError{err: syscall.ECONNREFUSED}, causeConnect, 502, health.ConnectFailure, true, true},
		{"dial timeout", &dialError{err: fasthttp.ErrDialTimeout}, causeConnect, 502, health.ConnectFailure, true, true},
		{"answer timeout", fasthttp.ErrTimeout, causeTimeout, 504, health.Timeout, false, false},
		{"net timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, causeTimeout, 504, health.Timeout, false, false},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, causeBadAnswer, 502, health.BadAnswer, false, true},
		{"closed early", io.EOF, causeBadAnswer, 502, health.BadAnswer, false, true},
		{"unparsable", errors.New("cannot find whitespace in the first line of response"), causeBadAnswer, 502, health.BadAnswer, false, true},
		{"101", errInterim, causeBadAnswer, 502, health.BadAnswer, false, true},
		{"malformed answer", errMalformed, causeBadAnswer, 502, health.BadAnswer, false, true},
		{"too large", fasthttp.ErrBodyTooLarge, causeBadAnswer, 502, health.BadAnswer, false, true},
		{"stale pool", errStalePool, causeBadAnswer, 502, health.BadAnswer, false, true},
		{"wrapped", fmt.Errorf("node n1: %w", errQueueFull), causeQueue, 503, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := causeOf(tt.err)
			if c != tt.want {
				t.Fatalf("causeOf(%v) = %v, want %v", tt.err, c, tt.want)
			}
			if c.status() != tt.status || c.outcome() != tt.outcome || c.retry(false) != tt.retry || c.retry(true) != tt.retryIdemp {
				t.Errorf("%v: status %d, outcome %v, retry %v/%v; want %d, %v, %v/%v", c, c.status(), c.outcome(),
					c.retry(false), c.retry(true), tt.status, tt.outcome, tt.retry, tt.retryIdemp)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// The reproduction of issue 11 item 1: "GET /x HTTP/1.0" without Host got
// 502, was retried on every node and counted as a failure of each, so a
// trickle of them kept healthy nodes ejected. Now it gets the listener's
// default host, or 400 without one; either way no node is blamed and no
// request is sent twice.
func TestHostlessHTTP10BlamesNoNode(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "cert.example")
	tests := []struct {
		name     string
		listen   string
		raw      string
		code     int
		nodeHost string // Host the node saw; "" when no node may see the request
	}{
		{"no default host", `{address: "127.0.0.1:0"}`, "GET /x HTTP/1.0\r\n\r\n", 400, ""},
		{"no default host, keep-alive", `{address: "127.0.0.1:0"}`, "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 400, ""},
		{"default_host", `{address: "127.0.0.1:0", default_host: "mosparo.example"}`, "GET /x HTTP/1.0\r\n\r\n", 200, "mosparo.example"},
		{"default_host, POST", `{address: "127.0.0.1:0", default_host: "mosparo.example:8080"}`,
			"POST /api/v1/frontend/check-form-data HTTP/1.0\r\nContent-Length: 3\r\n\r\na=b", 200, "mosparo.example:8080"},
		{"HTTP/1.1 needs a Host", `{address: "127.0.0.1:0", default_host: "mosparo.example"}`, "GET /x HTTP/1.1\r\n\r\n", 400, ""},
		{"empty Host header", `{address: "127.0.0.1:0", default_host: "mosparo.example"}`, "GET /x HTTP/1.0\r\nHost:\r\n\r\n", 200, "mosparo.example"},
		{"absolute-form names the host", `{address: "127.0.0.1:0"}`, "GET http://abs.example/x HTTP/1.0\r\n\r\n", 200, "abs.example"},
		{"absolute-form without authority", `{address: "127.0.0.1:0", default_host: "mosparo.example"}`, "GET http:///x HTTP/1.0\r\n\r\n", 400, ""},
		{"first certificate name", fmt.Sprintf(`{address: "127.0.0.1:0", tls: {certificates: [{cert: %q, key: %q}]}}`, cert, key), "GET /x HTTP/1.0\r\n\r\n", 200, "cert.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n1, n2 := startEcho(t, "n1"), startEcho(t, "n2")
			h := newRecHealth()
			cfg := testConfig(t, "listen: ["+tt.listen+"]\nadmin: {listen: \"127.0.0.1:0\"}\ntimeouts: {connect: 200ms, request: 2s}\nhealth: {passive: {count_5xx: true}}\n")
			_, addr := startLBWith(t, cfg, nodesOf(n1, n2), h)
			const times = 20
			for i := 0; i < times; i++ {
				var c net.Conn
				var err error
				if strings.Contains(tt.listen, "tls") {
					c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
				} else {
					c, err = net.Dial("tcp", addr)
				}
				if err != nil {
					t.Fatal(err)
				}
				resp, e := rawExchangeConn(t, c, tt.raw)
				c.Close()
				if resp.StatusCode() != tt.code {
					t.Fatalf("request %d = %d %s, want %d", i, resp.StatusCode(), resp.Body(), tt.code)
				}
				if tt.code == 400 && !strings.Contains(string(resp.Body()), `"error":true`) {
					t.Errorf("400 body = %s, want the JSON error", resp.Body())
				}
				if tt.nodeHost != "" {
					if got := e.Headers["Host"]; len(got) != 1 || got[0] != tt.nodeHost {
						t.Errorf("node saw Host %q, want %q", got, tt.nodeHost)
					}
				}
			}
			hits := n1.hits.Load() + n2.hits.Load()
			if want := map[bool]int64{true: 0, false: times}[tt.nodeHost == ""]; hits != want {
				t.Errorf("nodes received %d requests for %d sent, want %d (none retried)", hits, times, want)
			}
			for _, n := range []*echoNode{n1, n2} {
				if f := h.node(n.ln.Addr().String()).failures(); f != 0 {
					t.Errorf("%s blamed %d times for the client's requests", n.name, f)
				}
			}
		})
	}
}

// A client that goes away, or whose body never arrives or ends early, is
// never the node's fault: the body is read whole before any node is chosen.
func TestClientFailuresBlameNoNode(t *testing.T) {
	n := startEcho(t, "n1")
	h := newRecHealth()
	cfg := testConfig(t, listenYAML+"timeouts: {connect: 200ms, request: 2s, client_read: 300ms}\n")
	_, addr := startLBWith(t, cfg, nodesOf(n), h)
	for _, raw := range []string{
		"POST /api/v1/frontend/check-form-data HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nshort",
		"POST /api/v1/frontend/check-form-data HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"GET /login HTTP/1.1\r\nHost: a\r\n",
	} {
		for _, wait := range []bool{false, true} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte(raw))
			if wait {
				// The body never arrives: client_read ends it (408).
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(io.Discard, c)
			}
			c.Close()
		}
	}
	// A request after them is still served: the LB is not stuck.
	if code, _, err := fasthttp.Get(nil, "http://"+addr+"/login"); err != nil || code != 200 {
		t.Fatalf("GET after the broken clients = %d, %v", code, err)
	}
	if got := n.hits.Load(); got != 1 {
		t.Errorf("node received %d requests, want only the last one", got)
	}
	if f := h.node(n.ln.Addr().String()).failures(); f != 0 {
		t.Errorf("node blamed %d times for clients' failures", f)
	}
}

// 5xx answers count against a node only with health.passive.count_5xx
// (issue 11 item 12): any client can find a request mosparo answers 500.
func TestServerErrorsCountOnlyWhenConfigured(t *testing.T) {
	for _, count := range []bool{false, true} {
		t.Run(fmt.Sprint("count_5xx=", count), func(t *testing.T) {
			n := startScript(t, func(c net.Conn, _ *fasthttp.Request) bool {
				_, err := c.Write([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"))
				return err == nil
			})
			h := newRecHealth()
			cfg := testConfig(t, baseYAML+fmt.Sprintf("health: {passive: {count_5xx: %v}}\n", count))
			_, addr := startLBWith(t, cfg, []NodeSpec{n.spec("n1")}, h)
			for i := 0; i < 5; i++ {
				if code, _ := rawRequest(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", false); code != 500 {
					t.Fatalf("GET = %d, want the node's 500", code)
				}
			}
			rn := h.node(n.addr())
			want := map[bool]int64{false: 0, true: 5}[count]
			if got := rn.outcomes[health.ServerError].Load(); got != want {
				t.Errorf("server errors observed = %d, want %d", got, want)
			}
			if got := rn.outcomes[health.Success].Load(); got != 5-want {
				t.Errorf("successes observed = %d, want %d (the transport worked)", got, 5-want)
			}
		})
	}
}

// rawExchange writes raw on c and reads one answer, decoding an echo node's.
func rawExchangeConn(t *testing.T, c net.Conn, raw string) (*fasthttp.Response, echoed) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp := &fasthttp.Response{}
	if err := resp.Read(newBufReader(c)); err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	var e echoed
	_ = json.Unmarshal(resp.Body(), &e)
	return resp, e
}
