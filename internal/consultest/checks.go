package consultest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// armCheck (re)starts a check's timer: the TTL expiry of a TTL check, the
// next run of an HTTP check. Caller holds a.mu.
func (a *Agent) armCheck(c *check) {
	if c.stopTimer != nil {
		c.stopTimer()
		c.stopTimer = nil
	}
	if a.closed {
		return
	}
	switch c.kind {
	case "ttl":
		// FACTS.md: a TTL that is not refreshed goes critical with Output
		// "TTL expired" (a 2 s TTL flipped at 2.0 s).
		c.stopTimer = a.clock.AfterFunc(c.ttl, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if !c.removed {
				a.setStatus(c, Critical, "TTL expired")
			}
		})
	case "http":
		// Consul staggers a new check's first run randomly within one
		// interval; until it runs the check keeps its initial (critical)
		// status (FACTS.md).
		// armCheck runs for an HTTP check only when it is registered.
		c.stopTimer = a.clock.AfterFunc(rand.N(c.interval)+1, func() { a.startHTTPRun(c) })
	}
}

// startHTTPRun probes an HTTP check's URL in a tracked goroutine.
func (a *Agent) startHTTPRun(c *check) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.removed || a.closed {
		return
	}
	c.stopTimer = nil
	a.runs.Add(1)
	go func() {
		defer a.runs.Done()
		status, output := a.probe(c.def.Method, c.def.HTTP, c.timeout)
		a.mu.Lock()
		defer a.mu.Unlock()
		if c.removed || a.closed {
			return
		}
		a.setStatus(c, status, output)
		c.stopTimer = a.clock.AfterFunc(c.interval, func() { a.startHTTPRun(c) })
	}()
}

// probe is one HTTP check run: 2xx passing, 429 warning, anything else or
// a transport error critical, as Consul's HTTP check maps them. The output
// of a refused connection is Go's error text, `Get "…": dial tcp …:
// connection refused`, which is what FACTS.md records.
func (a *Agent) probe(method, url string, timeout time.Duration) (status, output string) {
	if method == "" {
		method = http.MethodGet
	}
	ctx, cancel := context.WithTimeout(a.runCtx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return Critical, err.Error()
	}
	req.Header.Set("User-Agent", "Consul Health Check")
	resp, err := a.checkClient.Do(req)
	if err != nil {
		return Critical, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	output = fmt.Sprintf("HTTP %s %s: %s Output: %s", method, url, resp.Status, strings.TrimSpace(string(body)))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return Passing, output
	case resp.StatusCode == http.StatusTooManyRequests:
		return Warning, output
	default:
		return Critical, output
	}
}
