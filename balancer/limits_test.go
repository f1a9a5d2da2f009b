package balancer

import (
	"fmt"
	"strings"
	"testing"
)

// TestBodyLimitsPerClass: the frontend API keeps a small limit while admin
// and API routes take bodies up to max_body_bytes (FACTS 11.8), for every
// spelling of the route and for chunked bodies.
func TestBodyLimitsPerClass(t *testing.T) {
	n := startEcho(t, "n1")
	cfg := testConfig(t, baseYAML+"limits: {max_body_bytes: 16384, body_bytes: {frontend: 2048, cron: 1024}}\n")
	_, addr := startLB(t, cfg, nodesOf(n))
	body := strings.Repeat("a", 5000)
	post := func(path string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	}
	chunked := func(path string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", path, len(body), body)
	}
	for _, tt := range []struct {
		name, raw string
		want      int
	}{
		{"frontend", post("/api/v1/frontend/store-form-data"), 413},
		{"frontend prefixed", post("/index.php/api/v1/frontend/store-form-data"), 413},
		{"frontend encoded", post("/%69ndex.php/api/v1/%66rontend/store-form-data"), 413},
		{"frontend chunked", chunked("/api/v1/frontend/store-form-data"), 413},
		{"api", post("/api/v1/rule-package/import"), 200},
		{"admin", post("/project/1/tools/import"), 200},
		{"admin chunked", chunked("/project/1/tools/import"), 200},
	} {
		resp, _ := doRaw(t, addr, tt.raw)
		if resp.StatusCode() != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode(), tt.want)
		}
	}
	big := strings.Repeat("c", 20000)
	resp, _ := doRaw(t, addr, fmt.Sprintf("POST /project/1/tools/import HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(big), big))
	if resp.StatusCode() != 413 {
		t.Errorf("admin body over max_body_bytes: status %d, want 413", resp.StatusCode())
	}
}
