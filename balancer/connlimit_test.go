package balancer

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestConnectionLimits: over limits.max_conns_per_ip from one address, or
// over limits.max_conns in all, a new connection is closed at accept and
// counted; trusted proxies are exempt from the per-IP cap; a closed
// connection frees its place (issue 11, item 11).
func TestConnectionLimits(t *testing.T) {
	n := startRawNode(t)
	cfg := testConfig(t, baseYAML+"limits: {max_conns: 6, max_conns_per_ip: 2}\ntrusted_proxies: [127.0.0.9]\n")
	s, addr := startLB(t, cfg, []NodeSpec{{Name: "n1", Address: n.ln.Addr().String(), Weight: 100}})
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// served reports whether c gets an answer; a refused connection reads
	// EOF or a reset instead.
	served := func(c net.Conn) bool {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
			return false
		}
		var resp fasthttp.Response
		return resp.Read(bufio.NewReader(c)) == nil && resp.StatusCode() == 200
	}
	var kept []net.Conn
	for _, tt := range []struct {
		from string
		want bool
	}{
		{"127.0.0.1", true}, {"127.0.0.1", true},
		{"127.0.0.1", false}, // third from one address
		{"127.0.0.2", true}, {"127.0.0.2", true},
		{"127.0.0.9", true}, {"127.0.0.9", true}, // a trusted proxy: no per-IP cap
		{"127.0.0.9", false}, // but max_conns (6) holds for it too
		{"127.0.0.3", false},
	} {
		c := dial(tt.from)
		if got := served(c); got != tt.want {
			t.Fatalf("connection from %s served = %v, want %v (stats %+v)", tt.from, got, tt.want, s.ConnStats())
		}
		if tt.want {
			kept = append(kept, c)
		}
	}
	st := s.ConnStats()
	if st.Open != 6 || st.RefusedPerIP != 1 || st.RefusedTotal != 2 || st.LargestPerIPNow != 2 {
		t.Errorf("ConnStats = %+v, want 6 open, 1 refused per IP, 2 refused in all", st)
	}
	// Closing one frees its place, for its own address too.
	kept[0].Close()
	waitFor(t, func() bool { return s.ConnStats().Open == 5 })
	if c := dial("127.0.0.1"); !served(c) {
		t.Errorf("connection after one closed was refused (stats %+v)", s.ConnStats())
	}
	for _, c := range kept {
		c.Close()
	}
	waitFor(t, func() bool { return s.ConnStats().Open <= 1 })
}

// waitFor polls cond for up to 10 s: the server sees a client's close only
// when its read returns.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

// TestLimitKeyGroupsIPv6: one IPv6 /64 is one client for the per-IP cap,
// IPv4 and IPv4-mapped addresses are themselves.
func TestLimitKeyGroupsIPv6(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"},
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "::ffff:192.0.2.7"},
	} {
		if got := limitKey(netip.MustParseAddr(tt.a)); got != netip.MustParseAddr(tt.b) {
			t.Errorf("limitKey(%s) = %s, want %s", tt.a, got, tt.b)
		}
	}
}
