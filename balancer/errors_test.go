package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestNoNodeAnswers503JSON(t *testing.T) {
	cfg := testConfig(t, baseYAML)
	_, addr := startLB(t, cfg, nil)
	code, body, err := fasthttp.Post(nil, "http://"+addr+"/api/v1/frontend/request-submit-token", nil)
	if err != nil || code != 503 {
		t.Fatalf("POST = %d, %v; want 503", code, err)
	}
	if want := `{"error":true,"errorMessage":"No mosparo node is available to answer this request."}`; string(body) != want {
		t.Errorf("body = %s, want %s", body, want)
	}
}

// Every answer the LB writes itself has mosparo's error shape (FACTS 2.1),
// which the widget parses: exactly {"error":true,"errorMessage":"..."}
// with a sentence in it.
func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"no node", bodyNoNode},
		{"bad gateway", bodyBadGateway},
		{"timeout", bodyTimeout},
		{"forbidden", bodyForbidden},
		{"no route", bodyNoRoute},
		{"update pending", bodyUpdatePending},
		{"too large", bodyTooLarge},
		{"headers", bodyHeaders},
		{"bad request", bodyBadRequest},
		{"request timeout", bodyReqTimeout},
		{"no host", bodyNoHost},
		{"busy", bodyBusy},
		{"rate limited", bodyRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]any
			if err := json.Unmarshal(tc.body, &got); err != nil {
				t.Fatalf("body %s is no JSON: %v", tc.body, err)
			}
			msg, _ := got["errorMessage"].(string)
			if len(got) != 2 || got["error"] != true || !strings.HasSuffix(msg, ".") || msg != strings.TrimSpace(msg) {
				t.Errorf("body = %s, want {\"error\":true,\"errorMessage\":\"<sentence>.\"}", tc.body)
			}
		})
	}
}

// writeError replaces whatever a failed attempt left (a node's status,
// headers, cookies and body) and lets only the widget's cross-origin calls
// read the message: Origin is echoed for Frontend requests alone.
func TestWriteError(t *testing.T) {
	const origin = "https://shop.example"
	for _, tc := range []struct {
		name       string
		class      Class
		origin     string
		wantOrigin string
	}{
		{"frontend with origin", Frontend, origin, origin},
		{"frontend without origin", Frontend, "", ""},
		{"admin with origin", Admin, origin, ""},
		{"api with origin", API, origin, ""},
		// Echoed byte for byte, never reinterpreted (the header parser
		// already refused CR and LF).
		{"frontend with hostile origin", Frontend, `null"; x=<script>`, `null"; x=<script>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			if tc.origin != "" {
				ctx.Request.Header.Set("Origin", tc.origin)
			}
			// What a node's answer left behind.
			ctx.Response.SetStatusCode(200)
			ctx.Response.Header.Set("Set-Cookie", "session=victim")
			ctx.Response.Header.Set("X-Mosparo-Node", "n1")
			ctx.Response.Header.Set("Cache-Control", "public, max-age=3600")
			ctx.Response.SetBodyString("half an answer")

			writeError(&ctx, tc.class, fasthttp.StatusBadGateway, bodyBadGateway)

			r := &ctx.Response
			if r.StatusCode() != 502 || string(r.Body()) != string(bodyBadGateway) {
				t.Errorf("answer = %d %s, want 502 %s", r.StatusCode(), r.Body(), bodyBadGateway)
			}
			for k, want := range map[string]string{
				"Content-Type":                "application/json",
				"Cache-Control":               "no-store",
				"Access-Control-Allow-Origin": tc.wantOrigin,
				"Set-Cookie":                  "",
				"X-Mosparo-Node":              "",
			} {
				if got := string(r.Header.Peek(k)); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// isTimeout sees a deadline through any wrapping, and nothing else.
func TestIsTimeout(t *testing.T) {
	deadline := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"fasthttp timeout", fasthttp.ErrTimeout, true},
		{"fasthttp dial timeout", fasthttp.ErrDialTimeout, true},
		{"read deadline", deadline, true},
		{"wrapped read deadline", fmt.Errorf("reading: %w", deadline), true},
		{"dial timeout in a dialError", &dialError{err: fasthttp.ErrDialTimeout}, true},
		{"net.Error timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, true},
		// context.DeadlineExceeded is a net.Error whose Timeout is true.
		{"context deadline", context.DeadlineExceeded, true},
		{"context canceled", context.Canceled, false},
		{"refused", &dialError{err: syscall.ECONNREFUSED}, false},
		// A net.Error whose Timeout is false.
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, false},
		{"EOF", io.EOF, false},
		{"body too large", fasthttp.ErrBodyTooLarge, false},
		{"message mentioning timeout", errors.New("timeout"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isTimeout(tc.err); got != tc.want {
				t.Errorf("isTimeout(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A dialError keeps its cause for errors.Is/As (cause.go classifies by it)
// and says that the failure was the dial.
func TestDialError(t *testing.T) {
	var err error = fmt.Errorf("node n1: %w", &dialError{err: syscall.ECONNREFUSED})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("errors.Is(%v, ECONNREFUSED) = false, want true", err)
	}
	var de *dialError
	if !errors.As(err, &de) || de.err != syscall.ECONNREFUSED {
		t.Errorf("errors.As(%v, *dialError) = %v, want the dialError", err, de)
	}
	if got, want := err.Error(), "node n1: dial: "+syscall.ECONNREFUSED.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// What fasthttp meets while reading a client's request becomes 431, 413,
// 408 or 400 with the JSON shape, and the connection closes: whatever
// follows the unreadable request on it cannot be trusted to start a new one.
func TestServerError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		body []byte
	}{
		{"headers over the buffer", &fasthttp.ErrSmallBuffer{}, 431, bodyHeaders},
		{"wrapped headers over the buffer", fmt.Errorf("reading: %w", &fasthttp.ErrSmallBuffer{}), 431, bodyHeaders},
		{"body too large", fasthttp.ErrBodyTooLarge, 413, bodyTooLarge},
		{"wrapped body too large", fmt.Errorf("body: %w", fasthttp.ErrBodyTooLarge), 413, bodyTooLarge},
		{"read timeout", fasthttp.ErrTimeout, 408, bodyReqTimeout},
		{"read deadline", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, 408, bodyReqTimeout},
		{"malformed", errors.New("cannot parse request line"), 400, bodyBadRequest},
		{"reset", syscall.ECONNRESET, 400, bodyBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			// A cross-origin widget call: the LB's own answers to unread
			// requests are Admin, so Origin is not echoed.
			ctx.Request.Header.Set("Origin", "https://shop.example")
			serverError(&ctx, tc.err)
			r := &ctx.Response
			if r.StatusCode() != tc.code || string(r.Body()) != string(tc.body) {
				t.Errorf("serverError(%v) = %d %s, want %d %s", tc.err, r.StatusCode(), r.Body(), tc.code, tc.body)
			}
			if !r.ConnectionClose() {
				t.Errorf("serverError(%v) keeps the connection", tc.err)
			}
			if v := r.Header.Peek("Access-Control-Allow-Origin"); len(v) != 0 {
				t.Errorf("serverError(%v) echoed Origin %q", tc.err, v)
			}
		})
	}
}

// The mapping above as a client meets it: hostile requests on a real
// listener get the JSON answer with their status and never reach the node.
func TestServerErrorAnswers(t *testing.T) {
	n := startEcho(t, "n1")
	_, addr := startLB(t, testConfig(t, baseYAML+"limits: {max_header_bytes: 2048}\n"), nodesOf(n))
	for _, tc := range []struct {
		name string
		raw  string
		code int
		body []byte
	}{
		{"headers too large", "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("b", 4000) + "\r\n\r\n", 431, bodyHeaders},
		{"garbage request line", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, bodyBadRequest},
		{"bad content-length", "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, bodyBadRequest},
		{"NUL in a header name", "GET / HTTP/1.1\r\nHost: x\r\nX\x00Y: 1\r\n\r\n", 400, bodyBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := doRaw(t, addr, tc.raw)
			if resp.StatusCode() != tc.code || string(resp.Body()) != string(tc.body) {
				t.Errorf("%.30q = %d %s, want %d %s", tc.raw, resp.StatusCode(), resp.Body(), tc.code, tc.body)
			}
		})
	}
	if h := n.hits.Load(); h != 0 {
		t.Errorf("node saw %d requests; unreadable ones must stop at the LB", h)
	}
}
