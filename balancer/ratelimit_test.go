package balancer

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/valyala/fasthttp"
)

// rateLimitYAML limits each client to a burst of 3 frontend and 2 API calls
// with no refill during the test (one token per 1000 s); clients are named
// by X-Forwarded-For, as the test's loopback peer is a trusted proxy.
const rateLimitYAML = baseYAML + `trusted_proxies: [127.0.0.0/8]
rate_limits:
  frontend: {rate: 0.001, burst: 3}
  api: {rate: 0.001, burst: 2}
  exempt: [198.51.100.0/24]
`

const submitTokenForm = "publicKey=" + mosparoemu.DemoPublicKey + "&pageTitle=Contact&pageUrl=https%3A%2F%2Fwww.example.com%2Fcontact"

// rlRequest sends one request through the LB as client (one X-Forwarded-For
// line per element) and returns the answer.
func rlRequest(t *testing.T, addr, method, path string, client ...string) *fasthttp.Response {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: mosparo.example\r\nOrigin: https://www.example.com\r\n", method, path)
	for _, c := range client {
		fmt.Fprintf(&b, "X-Forwarded-For: %s\r\n", c)
	}
	if method == "POST" {
		fmt.Fprintf(&b, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(submitTokenForm), submitTokenForm)
	} else {
		b.WriteString("\r\n")
	}
	resp, _ := doRaw(t, addr, b.String())
	return resp
}

// Through a real LB to an emulated mosparo node: over its limit a client
// gets 429 with Retry-After and mosparo's JSON error shape, the node never
// sees the request, and nothing counts against the node (issue 15).
func TestRateLimitEndToEnd(t *testing.T) {
	node, err := mosparoemu.Start(mosparoemu.Options{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	srv, addr := startLB(t, testConfig(t, rateLimitYAML), []NodeSpec{{Name: "n1", Address: node.Addr(), Weight: 100}})

	const frontend = "/api/v1/frontend/request-submit-token"
	const verify = "/api/v1/verification/verify"
	forwarded, limited := 0, map[Class]int{}
	expect := func(resp *fasthttp.Response, class Class, wantLimited bool, what string) {
		t.Helper()
		if got := resp.StatusCode() == fasthttp.StatusTooManyRequests; got != wantLimited {
			t.Fatalf("%s: status %d, want limited = %v; body %s", what, resp.StatusCode(), wantLimited, resp.Body())
		}
		if !wantLimited {
			if len(resp.Header.Peek("X-Mosparo-Node")) == 0 {
				t.Fatalf("%s: status %d not from the node", what, resp.StatusCode())
			}
			forwarded++
			return
		}
		limited[class]++
		checks := []struct{ name, got, want string }{
			{"body", string(resp.Body()), `{"error":true,"errorMessage":"Too many requests from your address; please try again in a moment."}`},
			{"Content-Type", string(resp.Header.ContentType()), "application/json"},
			{"Retry-After", string(resp.Header.Peek("Retry-After")), "1000"},
			{"X-Mosparo-Node", string(resp.Header.Peek("X-Mosparo-Node")), ""},
		}
		if class == Frontend {
			// The widget's XHR is cross-origin: without this it cannot read the message.
			checks = append(checks, struct{ name, got, want string }{"Access-Control-Allow-Origin", string(resp.Header.Peek("Access-Control-Allow-Origin")), "https://www.example.com"})
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: %s = %q, want %q", what, c.name, c.got, c.want)
			}
		}
	}

	for i := range 3 {
		expect(rlRequest(t, addr, "POST", frontend, "192.0.2.1"), Frontend, false, fmt.Sprintf("frontend burst %d", i))
	}
	expect(rlRequest(t, addr, "POST", frontend, "192.0.2.1"), Frontend, true, "frontend over the burst")
	expect(rlRequest(t, addr, "POST", "/api/v1/frontend/check-form-data", "192.0.2.1"), Frontend, true, "another frontend route, same bucket")
	// HAProxy's forwardfor adds its own line after the client's spoofed one.
	expect(rlRequest(t, addr, "POST", frontend, "203.0.113.50", "192.0.2.1"), Frontend, true, "spoofed X-Forwarded-For line")
	expect(rlRequest(t, addr, "POST", frontend, "203.0.113.50, 192.0.2.1"), Frontend, true, "spoofed X-Forwarded-For entry")
	expect(rlRequest(t, addr, "POST", frontend, "192.0.2.2"), Frontend, false, "another client")

	// The API class has its own bucket; other classes are not limited.
	expect(rlRequest(t, addr, "POST", verify, "192.0.2.1"), API, false, "api 1")
	expect(rlRequest(t, addr, "POST", verify, "192.0.2.1"), API, false, "api 2")
	expect(rlRequest(t, addr, "POST", verify, "192.0.2.1"), API, true, "api over the burst")
	for i := range 5 {
		expect(rlRequest(t, addr, "GET", "/login", "192.0.2.1"), Admin, false, fmt.Sprintf("admin %d", i))
	}

	// One IPv6 client is its /64.
	for i := range 3 {
		expect(rlRequest(t, addr, "POST", frontend, fmt.Sprintf("2001:db8:1:2::%x", i+1)), Frontend, false, "ipv6 burst")
	}
	expect(rlRequest(t, addr, "POST", frontend, "2001:db8:1:2:ffff::1"), Frontend, true, "same /64")
	expect(rlRequest(t, addr, "POST", frontend, "[2001:db8:1:3::1]:443"), Frontend, false, "next /64")

	// The exempt website backend.
	for i := range 6 {
		expect(rlRequest(t, addr, "POST", verify, "198.51.100.7"), API, false, fmt.Sprintf("exempt %d", i))
	}

	if got := node.Total(); got != int64(forwarded) {
		t.Errorf("node saw %d requests, want the %d forwarded ones", got, forwarded)
	}
	for _, ns := range srv.NodeStats() {
		if ns.Requests != uint64(forwarded) || ns.Failures != 0 {
			t.Errorf("node stats %+v, want %d requests and no failure", ns, forwarded)
		}
	}
	stats := srv.RateLimitStats()
	if len(stats) != 2 || stats[0].Route != "frontend" || stats[1].Route != "api" {
		t.Fatalf("RateLimitStats = %+v, want frontend and api", stats)
	}
	for i, c := range []Class{Frontend, API} {
		if got := stats[i].Limited; got != uint64(limited[c]) {
			t.Errorf("%s: Limited = %d, want %d", c, got, limited[c])
		}
	}
	if stats[0].Entries != 4 || stats[1].Entries != 1 {
		t.Errorf("entries = %d, %d; want 4 frontend clients (2 IPv4, 2 /64s) and 1 api client", stats[0].Entries, stats[1].Entries)
	}

	// A rebuild with the same limits keeps the buckets; other limits start afresh.
	rt, err := NewRuntime(testConfig(t, rateLimitYAML), []NodeSpec{{Name: "n1", Address: node.Addr(), Weight: 100}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	swapRuntime(t, srv, rt)
	expect(rlRequest(t, addr, "POST", frontend, "192.0.2.1"), Frontend, true, "after a rebuild")
	rt, err = NewRuntime(testConfig(t, strings.Replace(rateLimitYAML, "burst: 3", "burst: 4", 1)), []NodeSpec{{Name: "n1", Address: node.Addr(), Weight: 100}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	swapRuntime(t, srv, rt)
	expect(rlRequest(t, addr, "POST", frontend, "192.0.2.1"), Frontend, false, "after a reload with another burst")
	if got := srv.RateLimitStats()[1].Limited; got != 1 {
		t.Errorf("api Limited after the reload = %d, want 1 (its limiter was kept)", got)
	}
}

// Without rate_limits nothing is limited and no limiter exists.
func TestRateLimitOffByDefault(t *testing.T) {
	node, err := mosparoemu.Start(mosparoemu.Options{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	srv, addr := startLB(t, testConfig(t, baseYAML), []NodeSpec{{Name: "n1", Address: node.Addr(), Weight: 100}})
	for i := range 20 {
		if resp := rlRequest(t, addr, "POST", "/api/v1/frontend/request-submit-token"); resp.StatusCode() == fasthttp.StatusTooManyRequests {
			t.Fatalf("request %d limited", i)
		}
	}
	if st := srv.RateLimitStats(); st != nil {
		t.Errorf("RateLimitStats = %+v, want none", st)
	}
}

// With frontend_answer: delay a limited widget call gets mosparo's own delay
// answer, which the widget counts down before it asks again (mosparo 1.5.4
// shows only its generic error for a 429); the api class still gets 429.
func TestRateLimitFrontendDelayAnswer(t *testing.T) {
	node, err := mosparoemu.Start(mosparoemu.Options{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	cfg := testConfig(t, baseYAML+"rate_limits: {frontend_answer: delay, frontend: {rate: 0.25, burst: 1}, api: {rate: 0.25, burst: 1}}\n")
	_, addr := startLB(t, cfg, []NodeSpec{{Name: "n1", Address: node.Addr(), Weight: 100}})
	const frontend = "/api/v1/frontend/request-submit-token"
	if resp := rlRequest(t, addr, "POST", frontend); resp.StatusCode() != 200 || len(resp.Header.Peek("X-Mosparo-Node")) == 0 {
		t.Fatalf("first request: %d from %q, want 200 from the node", resp.StatusCode(), resp.Header.Peek("X-Mosparo-Node"))
	}
	resp := rlRequest(t, addr, "POST", frontend)
	checks := []struct{ name, got, want string }{
		{"status", fmt.Sprint(resp.StatusCode()), "200"},
		{"body", string(resp.Body()), `{"security":true,"type":"delay","forSeconds":4}`},
		{"Content-Type", string(resp.Header.ContentType()), "application/json"},
		{"Access-Control-Allow-Origin", string(resp.Header.Peek("Access-Control-Allow-Origin")), "https://www.example.com"},
		{"Retry-After", string(resp.Header.Peek("Retry-After")), ""},
		{"X-Mosparo-Node", string(resp.Header.Peek("X-Mosparo-Node")), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("limited frontend request: %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	rlRequest(t, addr, "POST", "/api/v1/verification/verify")
	if resp := rlRequest(t, addr, "POST", "/api/v1/verification/verify"); resp.StatusCode() != fasthttp.StatusTooManyRequests {
		t.Errorf("limited api request: status %d, want 429", resp.StatusCode())
	}
	if got := node.Total(); got != 2 {
		t.Errorf("node saw %d requests, want 2", got)
	}
}

// swapRuntime swaps rt in as a reload does, keeping the listeners.
func swapRuntime(t *testing.T, srv *Server, rt *Runtime) {
	t.Helper()
	b, err := srv.Bind(context.Background(), rt)
	if err != nil {
		t.Fatal(err)
	}
	srv.Swap(rt, b)
}
