package cron

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawServer accepts one connection, hands the parsed request to check and
// writes answer; it returns the listener's address.
func rawServer(t *testing.T, answer string, check func(*http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			t.Errorf("read request: %v", err)
			return
		}
		check(req)
		if answer != "" {
			conn.Write([]byte(answer))
		} else {
			// Hold the connection until the client gives up.
			conn.Read(make([]byte, 1))
		}
	}()
	return ln.Addr().String()
}

func TestHTTPCallerRequest(t *testing.T) {
	addr := rawServer(t, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n403 Forbidden", func(r *http.Request) {
		if r.Method != http.MethodGet || r.RequestURI != "/cron-jobs/execute?key=a%2Bb" {
			t.Errorf("request line = %s %s", r.Method, r.RequestURI)
		}
		if r.Host != "mosparo.example.com" || r.UserAgent() != "mosparo-lb" || !r.Close {
			t.Errorf("Host %q, User-Agent %q, close %v", r.Host, r.UserAgent(), r.Close)
		}
		// Nothing that would change mosparo's view of the client IP (FACTS 4).
		for h := range r.Header {
			if strings.HasPrefix(h, "X-Forwarded") || h == "Forwarded" {
				t.Errorf("header %s sent", h)
			}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	code, body, err := HTTPCaller{}.Call(ctx, addr, "mosparo.example.com", "/cron-jobs/execute?key=a%2Bb")
	if err != nil || code != 403 || string(body) != "403 Forbidden" {
		t.Fatalf("Call = %d, %q, %v", code, body, err)
	}
	if o := classify(code, body); o != Inactive {
		t.Errorf("outcome = %s, want inactive", o)
	}
}

func TestHTTPCallerErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, _, err = HTTPCaller{}.Call(t.Context(), closed, "h", "/cron-jobs/execute?key=x")
	if !errors.Is(err, ErrConnect) {
		t.Errorf("refused connection: err = %v, want ErrConnect", err)
	}

	addr := rawServer(t, "", func(*http.Request) {})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, _, err = HTTPCaller{}.Call(ctx, addr, "h", "/cron-jobs/execute?key=x")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrConnect) {
		t.Errorf("silent node: err = %v, want a deadline, not a connect error", err)
	}
	if strings.Contains(err.Error(), "key=") {
		t.Errorf("error %q quotes the target", err)
	}
}
