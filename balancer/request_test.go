package balancer

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawNode is a node that records the exact bytes of every request it gets
// and answers 200 "ok": what the LB sends, byte for byte.
type rawNode struct {
	ln   net.Listener
	mu   sync.Mutex
	reqs []string
	wg   sync.WaitGroup
}

func startRawNode(t *testing.T) *rawNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &rawNode{ln: ln}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		n.wg.Wait()
	})
	return n
}

func (n *rawNode) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var req bytes.Buffer
		length := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			req.WriteString(line)
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if line == "\r\n" {
				break
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		req.Write(body)
		n.mu.Lock()
		n.reqs = append(n.reqs, req.String())
		n.mu.Unlock()
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
			return
		}
	}
}

func (n *rawNode) received() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.reqs...)
}

// rawExchange writes raw to the LB and returns its answer as sent: an
// interim 100 Continue if any, then one final answer (headers and a
// Content-Length body), or what came before the LB closed.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	br := bufio.NewReader(c)
	for {
		length := 0
		first := true
		interim := false
		for {
			line, err := br.ReadString('\n')
			out.WriteString(line)
			if err != nil {
				return out.String()
			}
			if first {
				interim = strings.HasPrefix(line, "HTTP/1.1 1")
				first = false
			}
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if line == "\r\n" {
				break
			}
		}
		if interim {
			continue
		}
		body := make([]byte, length)
		n, _ := io.ReadFull(br, body)
		out.Write(body[:n])
		return out.String()
	}
}

func statusOf(answer string) int {
	line, _, _ := strings.Cut(answer, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

// TestClientRequestRules: header names that are not tokens, request targets
// that are not origin-form or an http(s) absolute-form with a host, and
// Host values that are not host[:port] get 400 and never reach a node; an
// absolute-form target's authority is the Host the node and
// X-Forwarded-Host see (issue 11, items 6 and 8; RFC 9110 5.1, 7.2; RFC
// 9112 3.2.2).
func TestClientRequestRules(t *testing.T) {
	n := startRawNode(t)
	cfg := testConfig(t, baseYAML+"nodes: [{name: n1, address: \""+n.ln.Addr().String()+"\"}]\n")
	_, addr := startLB(t, cfg, []NodeSpec{{Name: "n1", Address: n.ln.Addr().String(), Weight: 100}})
	const fwd = "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
	tests := []struct {
		name, raw string
		status    int
		node      string // exact bytes the node gets; "" = nothing
	}{
		{"plain", "GET /x HTTP/1.1\r\nHost: b.example\r\n\r\n", 200,
			"GET /x HTTP/1.1\r\nHost: b.example\r\n" + fwd + "X-Forwarded-Host: b.example\r\n\r\n"},
		{"space in name", "GET /x HTTP/1.1\r\nHost: b.example\r\nX A: b\r\n\r\n", 400, ""},
		{"space in name, lower case", "GET /x HTTP/1.1\r\nHost: b.example\r\nx a: b\r\n\r\n", 400, ""},
		{"space in name after a good one", "GET /x HTTP/1.1\r\nHost: b.example\r\nX-A: 1\r\nCookie A: b\r\n\r\n", 400, ""},
		{"control char in name", "GET /x HTTP/1.1\r\nHost: b.example\r\nX\x01A: b\r\n\r\n", 400, ""},
		{"empty name", "GET /x HTTP/1.1\r\nHost: b.example\r\n: b\r\n\r\n", 400, ""},
		{"separator in name", "GET /x HTTP/1.1\r\nHost: b.example\r\nX(A): b\r\n\r\n", 400, ""},
		{"absolute-form", "GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n", 200,
			"GET /x HTTP/1.1\r\nHost: a.example\r\n" + fwd + "X-Forwarded-Host: a.example\r\n\r\n"},
		{"absolute-form upper case with port and query", "GET HTTPS://A.Example:8443/x?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n", 200,
			"GET /x?q=1 HTTP/1.1\r\nHost: a.example:8443\r\n" + fwd + "X-Forwarded-Host: a.example:8443\r\n\r\n"},
		{"absolute-form without path", "GET http://a.example HTTP/1.1\r\nHost: b.example\r\n\r\n", 200,
			"GET / HTTP/1.1\r\nHost: a.example\r\n" + fwd + "X-Forwarded-Host: a.example\r\n\r\n"},
		{"absolute-form HTTP/1.0 without Host", "GET http://a.example/x HTTP/1.0\r\n\r\n", 200,
			"GET /x HTTP/1.0\r\nHost: a.example\r\n" + fwd + "X-Forwarded-Host: a.example\r\n\r\n"},
		{"absolute-form empty authority", "GET http:///x HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, ""},
		{"absolute-form empty authority HTTP/1.0", "GET http:///x HTTP/1.0\r\n\r\n", 400, ""},
		{"absolute-form user info", "GET http://u:p@a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, ""},
		{"absolute-form other scheme", "GET ftp://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, ""},
		{"absolute-form bad authority", "GET http://a.example:99999/x HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, ""},
		{"absolute-form IPv6", "GET http://[::1]:8080/x HTTP/1.1\r\nHost: b.example\r\n\r\n", 200,
			"GET /x HTTP/1.1\r\nHost: [::1]:8080\r\n" + fwd + "X-Forwarded-Host: [::1]:8080\r\n\r\n"},
		{"authority-form", "GET a.example:80 HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, ""},
		{"relative target", "GET x HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, ""},
		{"Host with a space", "GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ""},
		{"Host folded", "GET /x HTTP/1.1\r\nHost: a\r\n X: b\r\n\r\n", 400, ""},
		{"Host with user info", "GET /x HTTP/1.1\r\nHost: u@a.example\r\n\r\n", 400, ""},
		{"Host with a path", "GET /x HTTP/1.1\r\nHost: a.example/evil\r\n\r\n", 400, ""},
		{"Host port too large", "GET /x HTTP/1.1\r\nHost: a.example:65536\r\n\r\n", 400, ""},
		{"Host port not a number", "GET /x HTTP/1.1\r\nHost: a.example:8o\r\n\r\n", 400, ""},
		{"Host unclosed IPv6", "GET /x HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, ""},
		{"Host IPv6 junk after bracket", "GET /x HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400, ""},
		{"Host IPv6", "GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 200,
			"GET /x HTTP/1.1\r\nHost: [::1]:80\r\n" + fwd + "X-Forwarded-Host: [::1]:80\r\n\r\n"},
		{"Expect is not forwarded", "POST /x HTTP/1.1\r\nHost: b.example\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200,
			"POST /x HTTP/1.1\r\nHost: b.example\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n" + fwd + "X-Forwarded-Host: b.example\r\n\r\nhi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(n.received())
			answer := rawExchange(t, addr, tt.raw)
			answer = strings.TrimPrefix(answer, "HTTP/1.1 100 Continue\r\n\r\n")
			if got := statusOf(answer); got != tt.status {
				t.Errorf("status = %d, want %d; answer:\n%q", got, tt.status, answer)
			}
			got := n.received()[before:]
			switch {
			case tt.node == "" && len(got) > 0:
				t.Errorf("node received %q, want nothing", got)
			case tt.node != "" && (len(got) != 1 || got[0] != tt.node):
				t.Errorf("node received %q, want [%q]", got, tt.node)
			}
		})
	}
}

// TestExpectContinueOverLimit: a declared body over its route class's limit
// (limits.body_bytes, capped by limits.max_body_bytes) gets 413 without a
// 100 Continue first, so the client never sends it (issue 11, item 7; issue
// 12, item 6), and with the same JSON body as every other refusal; one
// within the limit gets the 100 and is served.
func TestExpectContinueOverLimit(t *testing.T) {
	n := startRawNode(t)
	cfg := testConfig(t, baseYAML+"limits: {max_body_bytes: 4096, body_bytes: {frontend: 1024}}\n")
	_, addr := startLB(t, cfg, []NodeSpec{{Name: "n1", Address: n.ln.Addr().String(), Weight: 100}})
	const frontend = "/api/v1/frontend/check-form-data"
	for _, tt := range []struct {
		name, raw   string
		status      int
		wantPrelude bool   // a 100 Continue before the final answer
		body        []byte // the final answer's body, when the LB answers
	}{
		{"over", "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4097\r\n\r\n", 413, false, bodyTooLarge},
		{"far over", "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 99999999999\r\n\r\n", 413, false, bodyTooLarge},
		{"over the class limit", "POST " + frontend + " HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n", 413, false, bodyTooLarge},
		{"over the class limit, prefixed", "POST /index.php" + frontend + " HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n", 413, false, bodyTooLarge},
		{"bad header name", "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nX A: b\r\nContent-Length: 2\r\n\r\n", 400, false, bodyBadRequest},
		{"within", "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200, true, nil},
		{"within the class limit", "POST " + frontend + " HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(n.received())
			answer := rawExchange(t, addr, tt.raw)
			prelude := strings.HasPrefix(answer, "HTTP/1.1 100 ")
			if prelude != tt.wantPrelude {
				t.Errorf("100 Continue sent = %v, want %v; answer:\n%q", prelude, tt.wantPrelude, answer)
			}
			if prelude {
				_, answer, _ = strings.Cut(answer, "\r\n\r\n")
			}
			if got := statusOf(answer); got != tt.status {
				t.Errorf("status = %d, want %d; answer:\n%q", got, tt.status, answer)
			}
			if tt.body != nil {
				if _, body, _ := strings.Cut(answer, "\r\n\r\n"); body != string(tt.body) {
					t.Errorf("body = %q, want %q", body, tt.body)
				}
				if !strings.Contains(answer, "Content-Type: application/json\r\n") {
					t.Errorf("answer is not JSON:\n%q", answer)
				}
			}
			if got := len(n.received()) - before; got != 0 && tt.status != 200 {
				t.Errorf("node received %d requests, want none", got)
			}
		})
	}
}

// TestRedirectHTTPSLocation: the Location of redirect_https keeps IPv6
// brackets, takes an absolute-form target's authority and path, uses the
// listener's default_host for a request without Host, and refuses what is
// not a host (issue 11, item 9).
func TestRedirectHTTPSLocation(t *testing.T) {
	for _, tt := range []struct {
		name, listen, raw string
		status            int
		location          string
	}{
		{"name", `{redirect_https: true}`, "GET /x?q=1 HTTP/1.1\r\nHost: a.example:80\r\n\r\n", 308, "https://a.example/x?q=1"},
		{"IPv6 with port", `{redirect_https: true}`, "GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 308, "https://[::1]/x"},
		{"IPv6 without port", `{redirect_https: true}`, "GET /x HTTP/1.1\r\nHost: [::1]\r\n\r\n", 308, "https://[::1]/x"},
		{"IPv6 to another port", `{redirect_https: true, redirect_port: 8443}`, "GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 308, "https://[::1]:8443/x"},
		{"absolute-form", `{redirect_https: true}`, "GET http://evil.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n", 308, "https://evil.example/x"},
		{"absolute-form query only", `{redirect_https: true}`, "GET http://a.example?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n", 308, "https://a.example/?q=1"},
		{"absolute-form empty authority", `{redirect_https: true}`, "GET http:///x HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, ""},
		{"no Host", `{redirect_https: true}`, "GET /x HTTP/1.0\r\n\r\n", 400, ""},
		{"no Host, default_host", `{redirect_https: true, default_host: "mosparo.example:8080"}`, "GET /x HTTP/1.0\r\n\r\n", 308, "https://mosparo.example/x"},
		{"Host with a path", `{redirect_https: true}`, "GET /x HTTP/1.1\r\nHost: a.example/y\r\n\r\n", 400, ""},
		{"Host with a space", `{redirect_https: true}`, "GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ""},
		{"Host with user info", `{redirect_https: true}`, "GET /x HTTP/1.1\r\nHost: evil.example@a\r\n\r\n", 400, ""},
		{"asterisk", `{redirect_https: true}`, "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", 308, "https://a.example/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := strings.Replace(tt.listen, "{", `{address: "127.0.0.1:0", `, 1)
			cfg := testConfig(t, "listen: ["+l+"]\nadmin: {listen: off}\n")
			_, addr := startLB(t, cfg, nil)
			answer := rawExchange(t, addr, tt.raw)
			if got := statusOf(answer); got != tt.status {
				t.Fatalf("status = %d, want %d; answer:\n%q", got, tt.status, answer)
			}
			var loc string
			for _, line := range strings.Split(answer, "\r\n") {
				if k, v, ok := strings.Cut(line, ": "); ok && k == "Location" {
					loc = v
				}
			}
			if loc != tt.location {
				t.Errorf("Location = %q, want %q", loc, tt.location)
			}
		})
	}
}
