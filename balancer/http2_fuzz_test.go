//lint:file-ignore SA1019 the fuzz client uses x/net/http2's Framer, not its deprecated server.

package balancer

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzHTTP2Request sends fuzzed header lists (one "name\x00value" field a
// line, in order, pseudo-headers included) as an h2 request through the
// LB: never a panic or hang, and what reaches a node is a plain HTTP/1.1
// request with the LB's forwarding headers and no connection-specific
// field.
func FuzzHTTP2Request(f *testing.F) {
	for _, s := range []string{
		":method\x00GET\n:scheme\x00https\n:authority\x00mosparo.example\n:path\x00/login",
		":method\x00GET\n:scheme\x00https\n:authority\x00mosparo.example\n:path\x00/index.php/cron-jobs/execute",
		":method\x00CONNECT\n:authority\x00mosparo.example:443",
		":method\x00POST\n:scheme\x00https\n:authority\x00a\n:path\x00/api/v1/frontend/check-form-data\ncontent-length\x005",
		":method\x00GET\n:scheme\x00https\n:authority\x00a\n:path\x00/\nx-forwarded-for\x00127.0.0.1\nforwarded\x00for=1.2.3.4",
		":method\x00GET\n:scheme\x00https\n:path\x00/\ncookie\x00a=1\ncookie\x00b=2\nte\x00trailers",
		":method\x00OPTIONS\n:scheme\x00https\n:authority\x00a\n:path\x00*",
		":method\x00GET\n:scheme\x00http\n:authority\x00[::1]:1\n:path\x00/%2e%2e/cron-jobs/execute",
	} {
		f.Add(s)
	}
	n := startEcho(f, "n1")
	_, addr := startLB(f, testConfig(f, h2YAML(f, "", "")), nodesOf(n))
	f.Fuzz(func(t *testing.T, s string) {
		var fields [][2]string
		for line := range strings.SplitSeq(s, "\n") {
			k, v, _ := strings.Cut(line, "\x00")
			fields = append(fields, [2]string{k, v})
		}
		h := dialH2(t, addr)
		if err := h.headers(1, true, fields...); err != nil {
			return // not encodable: nothing sent
		}
		r := h.await(1)
		var e echoed
		if r.status == "" || json.Unmarshal(r.body, &e) != nil || e.Node == "" {
			return // refused before any node
		}
		if got := e.Headers["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("node saw X-Forwarded-For %q", got)
		}
		for _, k := range []string{"Forwarded", "Connection", "Keep-Alive", "Te", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "X-Real-Ip"} {
			if v, ok := e.Headers[k]; ok {
				t.Errorf("node saw %s: %q", k, v)
			}
		}
		if e.URI == "" || e.URI[0] != '/' && e.URI != "*" {
			t.Errorf("node saw request target %q", e.URI)
		}
		if strings.Contains(strings.ToLower(e.URI), "cron-jobs") {
			t.Errorf("node saw guarded target %q", e.URI)
		}
	})
}
