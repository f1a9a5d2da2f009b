package balancer

import (
	"strings"
	"testing"
)

// TestClientIPHeadersStripped: from an untrusted peer the CDN client-address
// headers mosparo can be told to trust (FACTS 11.6), their '_' spellings in
// any case, X-Forwarded-* spelled with '_', and the operator's
// strip_client_ip_headers never reach a node; Proxy (httpoxy) is dropped
// from trusted peers too (issue 11, item 5).
func TestClientIPHeadersStripped(t *testing.T) {
	n := startRawNode(t)
	nodes := []NodeSpec{{Name: "n1", Address: n.ln.Addr().String(), Weight: 100}}
	const extra = "strip_client_ip_headers: [X-Client-Address, my_real_ip]\n"
	_, untrusted := startLB(t, testConfig(t, baseYAML+extra), nodes)
	_, trusted := startLB(t, testConfig(t, baseYAML+extra+"trusted_proxies: [127.0.0.0/8]\n"), nodes)
	const req = "GET /x HTTP/1.1\r\nHost: a\r\n"
	const fwd = "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\n\r\n"
	var hostile []string
	for _, name := range append(append([]string(nil), clientIPHeaders...), "X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Client-Address", "My-Real-IP", "Proxy") {
		hostile = append(hostile, name, strings.ToLower(name), strings.ToUpper(name),
			strings.ReplaceAll(name, "-", "_"), strings.ReplaceAll(strings.ToLower(name), "-", "_"))
	}
	tests := []struct {
		name, addr, headers, node string
	}{
		{"every spelling, untrusted", untrusted, headerLines(hostile, "203.0.113.9"), req + fwd},
		{"repeated", untrusted, strings.Repeat("CF-Connecting-IP: 203.0.113.9\r\n", 50) + strings.Repeat("cf_connecting_ip: 1\r\n", 50), req + fwd},
		{"mixed dashes", untrusted, "True_Client-IP: 1\r\nX-Forwarded_Host: evil\r\nx_forwarded_whatever: 1\r\n", req + fwd},
		{"look-alikes kept", untrusted, "X-Custom-IP: 1\r\nCF-Connecting-IPs: 2\r\nProxy-Status: 3\r\n",
			req + "X-Custom-Ip: 1\r\nCf-Connecting-Ips: 2\r\nProxy-Status: 3\r\n" + fwd},
		{"trusted keeps CDN headers, not Proxy", trusted, "CF-Connecting-IP: 203.0.113.9\r\nProxy: http://evil.example\r\nproxy: x\r\n",
			req + "Cf-Connecting-Ip: 203.0.113.9\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(n.received())
			answer := rawExchange(t, tt.addr, req+tt.headers+"\r\n")
			if got := statusOf(answer); got != 200 {
				t.Fatalf("status = %d, want 200; answer:\n%q", got, answer)
			}
			got := n.received()[before:]
			if len(got) != 1 || got[0] != tt.node {
				t.Errorf("node received %q, want [%q]", got, tt.node)
			}
		})
	}
}

func headerLines(names []string, value string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + ": " + value + "\r\n")
	}
	return b.String()
}
