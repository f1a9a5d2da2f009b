package mosparoemu

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// fasthttp starts one process-wide goroutine refreshing the Date header; it never ends.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

// startNode starts a node closed at the end of the test.
func startNode(t *testing.T, opts Options) *Node {
	t.Helper()
	n, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// testClient is a plain net/http client without keep-alive (no idle goroutines left for
// goleak) and without following redirects.
func testClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// testClientFrom is testClient dialling from a given loopback source address, so a test can
// be a client other than 127.0.0.1.
func testClientFrom(src string) *http.Client {
	c := testClient()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c.Transport = &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}
	return c
}

type result struct {
	status int
	header http.Header
	body   string
}

// do sends one request; headers are "Name: value" strings.
func do(t *testing.T, c *http.Client, method, url, body string, headers ...string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		if strings.EqualFold(name, "Host") {
			req.Host = value
			continue
		}
		req.Header.Add(name, value)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func get(t *testing.T, url string, headers ...string) result {
	t.Helper()
	return do(t, testClient(), http.MethodGet, url, "", headers...)
}

func postForm(t *testing.T, url, body string, headers ...string) result {
	t.Helper()
	return do(t, testClient(), http.MethodPost, url, body,
		append([]string{"Content-Type: application/x-www-form-urlencoded"}, headers...)...)
}
