package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHTTPClientRequest(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(bodyConnected))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name, host, wantHost string
	}{
		{"node Host", "mosparo.example.com", "mosparo.example.com"},
		{"no Host: the address", "", addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			status, body, err := HTTPClient{}.Get(ctx, addr, tt.host, "/api/v1/health/check")
			if err != nil || status != 200 || string(body) != bodyConnected {
				t.Fatalf("Get = %d, %q, %v", status, body, err)
			}
			if got.Method != http.MethodGet || got.URL.Path != "/api/v1/health/check" || got.Host != tt.wantHost {
				t.Errorf("request %s %s Host %q; want GET /api/v1/health/check Host %q", got.Method, got.URL, got.Host, tt.wantHost)
			}
			want := map[string]string{"User-Agent": "mosparo-lb", "Accept": "application/json"}
			for k, v := range want {
				if got.Header.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, got.Header.Get(k), v)
				}
			}
			if !got.Close {
				t.Error("probe does not ask for Connection: close")
			}
			for k := range got.Header {
				if _, ok := want[k]; !ok && k != "Connection" {
					t.Errorf("unexpected header %s: %q (probes carry no forwarded or other headers)", k, got.Header[k])
				}
			}
		})
	}
}

func TestHTTPClientFailures(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 2*maxProbeBody))
	}))
	defer big.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name, addr string
		wantCtx    bool
	}{
		{"timeout", strings.TrimPrefix(slow.URL, "http://"), true},
		{"refused", refused, false},
		{"body too large", strings.TrimPrefix(big.URL, "http://"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, _, err := HTTPClient{}.Get(ctx, tt.addr, "", "/")
			if err == nil {
				t.Fatal("Get succeeded")
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("Get took %v with a 200ms context", el)
			}
			if tt.wantCtx != errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v; deadline exceeded want %v", err, tt.wantCtx)
			}
		})
	}
}
