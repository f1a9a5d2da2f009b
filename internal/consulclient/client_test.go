package consulclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

type canned struct {
	code int
	body []byte
}

func (c canned) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: c.code, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(c.body)), Request: r}, nil
}

// The bound passes a body of exactly the limit and refuses one byte more.
func TestTransportBound(t *testing.T) {
	for _, tt := range []struct {
		size    int
		wantErr bool
	}{{0, false}, {10, false}, {11, true}, {1000, true}} {
		resp, err := Transport(canned{code: 200, body: bytes.Repeat([]byte("x"), tt.size)}, 10, nil).RoundTrip(&http.Request{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tt.wantErr != errors.Is(err, ErrAnswerTooLarge) || !tt.wantErr && len(b) != tt.size {
			t.Errorf("body of %d bytes under a bound of 10: read %d, %v", tt.size, len(b), err)
		}
	}
}

// Ending Requests ends a request the server holds (a blocking query).
func TestTransportRequestsEnd(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cl, err := New(Config{Address: strings.TrimPrefix(srv.URL, "http://"), MaxAnswer: 1 << 10, Requests: ctx,
		HTTPClient: &http.Client{Transport: &http.Transport{}}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := cl.KV().Get("k", &api.QueryOptions{WaitIndex: 5, WaitTime: time.Minute})
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a request after Requests ended succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the held request did not end with Requests")
	}
}

func TestErrorPrintable(t *testing.T) {
	err := Error("query", api.StatusError{Code: 500, Body: "No leader\n\x1b[31m" + strings.Repeat("x", 500)})
	if s := err.Error(); !strings.HasPrefix(s, "consul query: 500 No leader??[31m") || len(s) > 120 || strings.ContainsAny(s, "\n\x1b") {
		t.Errorf("Error = %q", s)
	}
	if err := Error("query", context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Error lost the cause: %v", err)
	}
}

func TestNewNeedsBound(t *testing.T) {
	if _, err := New(Config{Address: "127.0.0.1:8500"}); err == nil {
		t.Error("New without MaxAnswer succeeded")
	}
}
