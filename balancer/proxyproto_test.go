package balancer

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/pires/go-proxyproto"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// v1 and v2 headers as senders write them.
func proxyV1(src, dst string) []byte {
	fam := "TCP4"
	if strings.Contains(src, ":") {
		fam = "TCP6"
	}
	return []byte(fmt.Sprintf("PROXY %s %s %s 40000 443\r\n", fam, src, dst))
}

func proxyV2(t testing.TB, src, dst string, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(s), net.TCPAddrFromAddrPort(d))
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func proxyV2Local(t testing.TB) []byte {
	t.Helper()
	b, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func proxyV2Unix(t testing.TB) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UnixStream,
		SourceAddr: &net.UnixAddr{Net: "unix", Name: "/run/client.sock"}, DestinationAddr: &net.UnixAddr{Net: "unix", Name: "/run/lb.sock"}}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var someTLVs = []proxyproto.TLV{
	{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("mosparo.example")},
	{Type: proxyproto.PP2_TYPE_UNIQUE_ID, Value: []byte("abc-123")},
	{Type: proxyproto.PP2_TYPE_NOOP, Value: make([]byte, 300)}, // longer than one first read
}

// TestReadProxyHeader frames and parses headers, whole and one byte per
// read (the spec asks receivers to tolerate split headers), and rejects
// what is no header; the client's bytes after the header are kept.
func TestReadProxyHeader(t *testing.T) {
	req := []byte("GET / HTTP/1.1\r\n\r\n")
	for _, tt := range []struct {
		name   string
		in     []byte
		client string // "" when the real peer stays the client
		err    error  // nil: any error fails; errAny: some error
	}{
		{"v1 tcp4", proxyV1("192.0.2.7", "203.0.113.1"), "192.0.2.7:40000", nil},
		{"v1 tcp6", proxyV1("2001:db8::7", "2001:db8::1"), "[2001:db8::7]:40000", nil},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), "", nil},
		{"v1 unknown with addresses", []byte("PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n"), "", nil},
		{"v2 tcp4", proxyV2(t, "192.0.2.7:40000", "203.0.113.1:443"), "192.0.2.7:40000", nil},
		{"v2 tcp6", proxyV2(t, "[2001:db8::7]:40000", "[2001:db8::1]:443"), "[2001:db8::7]:40000", nil},
		{"v2 v4-mapped", proxyV2(t, "[::ffff:192.0.2.7]:40000", "[2001:db8::1]:443"), "192.0.2.7:40000", nil},
		{"v2 tlvs", proxyV2(t, "192.0.2.7:40000", "203.0.113.1:443", someTLVs...), "192.0.2.7:40000", nil},
		{"v2 local", proxyV2Local(t), "", nil},
		{"v2 unix", proxyV2Unix(t), "", nil},
		{"no header", []byte("GET / HTTP/1.1\r\n"), "", proxyproto.ErrNoProxyProtocol},
		{"tls hello", []byte("\x16\x03\x01\x02\x00\x01"), "", proxyproto.ErrNoProxyProtocol},
		{"lower case", []byte("proxy TCP4 192.0.2.7 203.0.113.1 1 2\r\n"), "", proxyproto.ErrNoProxyProtocol},
		{"v1 no space", []byte("PROXYTCP4 192.0.2.7 203.0.113.1 1 2\r\n"), "", proxyproto.ErrNoProxyProtocol},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n"), "", proxyproto.ErrVersion1HeaderTooLong},
		{"v1 bare LF", []byte("PROXY TCP4 192.0.2.7 203.0.113.1 40000 443\n"), "", errAny},
		{"v1 bad address", []byte("PROXY TCP4 192.0.2.300 203.0.113.1 40000 443\r\n"), "", errAny},
		{"v1 v6 in tcp4", []byte("PROXY TCP4 2001:db8::1 203.0.113.1 40000 443\r\n"), "", errAny},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 fe80::2 40000 443\r\n"), "", errAny},
		{"v1 bad port", []byte("PROXY TCP4 192.0.2.7 203.0.113.1 70000 443\r\n"), "", errAny},
		{"v1 extra token", []byte("PROXY TCP4 192.0.2.7 203.0.113.1 40000 443 x\r\n"), "", errAny},
		{"v1 udp", []byte("PROXY UDP4 192.0.2.7 203.0.113.1 40000 443\r\n"), "", errAny},
		{"v2 bad version", append(append([]byte{}, proxyproto.SIGV2...), 0x31, 0x11, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2), "", errAny},
		{"v2 short address block", append(append([]byte{}, proxyproto.SIGV2...), 0x21, 0x11, 0, 4, 1, 2, 3, 4), "", errAny},
		{"v2 huge length", append(append([]byte{}, proxyproto.SIGV2...), 0x21, 0x11, 0xff, 0xff), "", proxyproto.ErrInvalidLength},
		{"v2 unspec proxy", append(append([]byte{}, proxyproto.SIGV2...), 0x21, 0x00, 0, 0), "", errAny},
		{"v2 unknown family", append(append([]byte{}, proxyproto.SIGV2...), 0x21, 0x41, 0, 0), "", errAny},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := append(append([]byte{}, tt.in...), req...)
			for _, split := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(in)
				if split {
					r = iotest.OneByteReader(r)
				}
				h, rest, err := readProxyHeader(r)
				if tt.err != nil {
					if err == nil || tt.err != errAny && !errors.Is(err, tt.err) {
						t.Errorf("split %v: readProxyHeader = %v, want error %v", split, err, tt.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("split %v: readProxyHeader: %v", split, err)
				}
				// What was read past the header is the client's, none of it lost.
				if !bytes.HasPrefix(req, rest) || split && len(rest) != 0 {
					t.Errorf("split %v: rest = %q", split, rest)
				}
				client, named := proxiedClient(h)
				got := ""
				if named {
					got = client.String()
				}
				if got != tt.client {
					t.Errorf("split %v: client = %q, want %q", split, got, tt.client)
				}
			}
		})
	}
}

var errAny = errors.New("any error")

// TestReadProxyHeaderTruncated: a header cut short is an error, never a
// header; a read error is passed on.
func TestReadProxyHeaderTruncated(t *testing.T) {
	for _, full := range [][]byte{proxyV1("192.0.2.7", "203.0.113.1"), proxyV2(t, "192.0.2.7:1", "203.0.113.1:2", someTLVs...)} {
		for n := 0; n < len(full); n++ {
			if _, _, err := readProxyHeader(bytes.NewReader(full[:n])); err == nil {
				t.Fatalf("%q cut at %d: no error", full, n)
			}
		}
	}
	boom := errors.New("boom")
	if _, _, err := readProxyHeader(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("read error = %v, want %v", err, boom)
	}
}

// proxyLB is a balancer whose one listener takes PROXY headers, over a
// node that records every request byte for byte.
type proxyLB struct {
	srv  *Server
	addr string
	node *rawNode
	logs *observer.ObservedLogs // the access log and warnings
}

func startProxyLB(t *testing.T, yaml string) *proxyLB {
	t.Helper()
	n := startRawNode(t)
	cfg := testConfig(t, yaml)
	core, logs := observer.New(zapcore.InfoLevel)
	rt, err := NewRuntime(cfg, []NodeSpec{{Name: "n1", Address: n.ln.Addr().String(), Weight: 100}}, Deps{Logger: zap.New(core), AccessLog: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	s := serveRuntime(t, rt)
	return &proxyLB{srv: s, addr: s.Addrs()[0], node: n, logs: logs}
}

// dialFrom connects to addr from a loopback address of the caller's choice.
func dialFrom(t *testing.T, from, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	return c.(*net.TCPConn)
}

// sendProxied writes header and request (one write each, or a byte per
// write when split), half-closes and returns all the balancer answers
// before it closes.
func sendProxied(t *testing.T, from, addr string, header, request []byte, split bool) string {
	t.Helper()
	c := dialFrom(t, from, addr)
	data := append(append([]byte{}, header...), request...)
	if split {
		for i := range data {
			if _, err := c.Write(data[i : i+1]); err != nil {
				break
			}
			time.Sleep(time.Millisecond) // so they travel as separate segments
		}
	} else if _, err := c.Write(data); err != nil {
		t.Logf("write: %v", err)
	}
	_ = c.CloseWrite()
	got, _ := io.ReadAll(c)
	return string(got)
}

const proxyYAML = `
listen: [{address: "127.0.0.1:0", proxy_protocol: {from: [127.0.0.1], timeout: 1s}}]
timeouts: {connect: 500ms, request: 2s, client_read: 2s}
limits: {max_conns_per_ip: 2}
`

const loginRequest = "GET /login HTTP/1.1\r\nHost: mosparo.example\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\n\r\n"

// forwardedFor is what the node must read for loginRequest from client.
func forwardedFor(client string) string {
	return "GET /login HTTP/1.1\r\nHost: mosparo.example\r\nX-Forwarded-For: " + client +
		"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: mosparo.example\r\n\r\n"
}

// TestProxyProtocolClientAddress: the address a header carries is the
// client in the node's forwarding headers, byte for byte, and in the access
// log; LOCAL, UNKNOWN and UNIX headers leave the real peer the client.
func TestProxyProtocolClientAddress(t *testing.T) {
	lb := startProxyLB(t, proxyYAML)
	for _, tt := range []struct {
		name   string
		header []byte
		split  bool
		client string
	}{
		{"v1", proxyV1("192.0.2.7", "203.0.113.1"), false, "192.0.2.7"},
		{"v1 split in bytes", proxyV1("192.0.2.8", "203.0.113.1"), true, "192.0.2.8"},
		{"v1 tcp6", proxyV1("2001:db8::7", "2001:db8::1"), false, "2001:db8::7"},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), false, "127.0.0.1"},
		{"v2", proxyV2(t, "198.51.100.9:5555", "203.0.113.1:443"), false, "198.51.100.9"},
		{"v2 split in bytes", proxyV2(t, "198.51.100.10:5555", "203.0.113.1:443"), true, "198.51.100.10"},
		{"v2 tlvs", proxyV2(t, "198.51.100.11:5555", "203.0.113.1:443", someTLVs...), false, "198.51.100.11"},
		{"v2 v4-mapped", proxyV2(t, "[::ffff:198.51.100.12]:5555", "[2001:db8::1]:443"), false, "198.51.100.12"},
		{"v2 local", proxyV2Local(t), false, "127.0.0.1"},
		{"v2 unix", proxyV2Unix(t), false, "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(lb.node.received())
			answer := sendProxied(t, "127.0.0.1", lb.addr, tt.header, []byte(loginRequest), tt.split)
			if statusOf(answer) != 200 {
				t.Fatalf("answer %q, want 200", answer)
			}
			got := lb.node.received()
			if len(got) != before+1 {
				t.Fatalf("node read %d requests, want 1", len(got)-before)
			}
			if want := forwardedFor(tt.client); got[before] != want {
				t.Errorf("node read\n%q\nwant\n%q", got[before], want)
			}
			waitFor(t, func() bool {
				return lb.logs.FilterMessage("request").FilterField(zap.String("client", tt.client)).Len() > 0
			})
		})
	}
}

// TestProxyProtocolRefusals: no header, a malformed or truncated one, one
// too slow, and any connection from a peer outside proxy_protocol.from are
// closed without an answer, nothing reaches the node, and each is counted.
func TestProxyProtocolRefusals(t *testing.T) {
	lb := startProxyLB(t, proxyYAML)
	v1 := proxyV1("192.0.2.7", "203.0.113.1")
	for _, tt := range []struct {
		name   string
		from   string
		header []byte
		peer   bool // counted as a peer refusal, else as a header one
	}{
		{"no header", "127.0.0.1", nil, false},
		{"malformed v1", "127.0.0.1", []byte("PROXY TCP4 192.0.2.7 nonsense 1 2\r\n"), false},
		{"malformed v2", "127.0.0.1", append(append([]byte{}, proxyproto.SIGV2...), 0x21, 0x11, 0, 3, 1, 2, 3), false},
		{"truncated v1", "127.0.0.1", v1[:20], false},
		{"closed before a byte (a TCP health check, not counted)", "127.0.0.1", nil, false},
		{"peer outside from", "127.0.0.2", v1, true},
		{"peer outside from without header", "127.0.0.3", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := lb.srv.ConnStats()
			request := []byte(loginRequest)
			silent := strings.HasPrefix(tt.name, "closed before a byte")
			if silent || len(tt.header) > 0 && tt.header[len(tt.header)-1] != '\n' && tt.name != "malformed v2" {
				request = nil // the connection ends inside the header, or before it
			}
			if answer := sendProxied(t, tt.from, lb.addr, tt.header, request, false); answer != "" {
				t.Errorf("answer %q, want the connection closed without one", answer)
			}
			if silent {
				waitFor(t, func() bool { return lb.srv.ConnStats().Open == 0 })
			}
			after := lb.srv.ConnStats()
			counted := uint64(1)
			if silent {
				counted = 0
			}
			if tt.peer && after.RefusedProxyPeer != before.RefusedProxyPeer+counted || !tt.peer && after.RefusedProxyHeader != before.RefusedProxyHeader+counted {
				t.Errorf("ConnStats %+v after %+v: not counted", after, before)
			}
		})
	}
	t.Run("slow header", func(t *testing.T) {
		before := lb.srv.ConnStats().RefusedProxyHeader
		c := dialFrom(t, "127.0.0.1", lb.addr)
		if _, err := c.Write([]byte("PROXY TCP4 192.0.2.7 ")); err != nil {
			t.Fatal(err)
		}
		// The rest never comes: proxy_protocol.timeout (1s) closes it.
		got, err := io.ReadAll(c)
		if err != nil || len(got) != 0 {
			t.Errorf("read %q, %v; want the connection closed without an answer", got, err)
		}
		if n := lb.srv.ConnStats().RefusedProxyHeader; n != before+1 {
			t.Errorf("header refusals %d, want %d", n, before+1)
		}
	})
	if got := lb.node.received(); len(got) != 0 {
		t.Errorf("node read %q, want nothing", got)
	}
	if lb.logs.FilterMessage("client connection refused").Len() == 0 {
		t.Error("no refusal was logged")
	}
	waitFor(t, func() bool { return lb.srv.ConnStats().Open == 0 })
}

// TestProxyProtocolPerIPLimit: limits.max_conns_per_ip counts the client
// a header names, not the load balancer that carries them all.
func TestProxyProtocolPerIPLimit(t *testing.T) {
	lb := startProxyLB(t, proxyYAML)
	open := func(client string) (*net.TCPConn, bool) {
		c := dialFrom(t, "127.0.0.1", lb.addr)
		if _, err := c.Write(append(proxyV1(client, "203.0.113.1"), "GET /login HTTP/1.1\r\nHost: mosparo.example\r\n\r\n"...)); err != nil {
			return c, false
		}
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		return c, statusOf(string(buf[:n])) == 200
	}
	// Five clients behind one balancer: more than max_conns_per_ip (2) from
	// its address, all served.
	for i := range 5 {
		if _, ok := open(fmt.Sprintf("192.0.2.%d", i+1)); !ok {
			t.Fatalf("client %d behind the balancer refused (stats %+v)", i+1, lb.srv.ConnStats())
		}
	}
	// One client's third connection is over its limit.
	open("198.51.100.1")
	open("198.51.100.1")
	if _, ok := open("198.51.100.1"); ok {
		t.Errorf("third connection of one proxied client served (stats %+v)", lb.srv.ConnStats())
	}
	if st := lb.srv.ConnStats(); st.RefusedPerIP != 1 || st.LargestPerIPNow != 2 || st.Open != 7 {
		t.Errorf("ConnStats = %+v, want 1 refused per IP, at most 2 per client, 7 open", st)
	}
}

// TestProxyProtocolGuardsAndHash: the edge guards and client_ip_hash see
// the client a header names.
func TestProxyProtocolGuardsAndHash(t *testing.T) {
	lb := startProxyLB(t, proxyYAML+"edge: {allow_health_from: [192.0.2.0/24]}\n")
	health := []byte("GET /api/v1/health/check HTTP/1.1\r\nHost: mosparo.example\r\n\r\n")
	if a := sendProxied(t, "127.0.0.1", lb.addr, proxyV1("192.0.2.7", "203.0.113.1"), health, false); statusOf(a) != 200 {
		t.Errorf("health check from an allowed proxied client: %q, want 200", a)
	}
	if a := sendProxied(t, "127.0.0.1", lb.addr, proxyV1("198.51.100.7", "203.0.113.1"), health, false); statusOf(a) != 403 {
		t.Errorf("health check from another proxied client: %q, want 403", a)
	}

	// client_ip_hash: the key is the proxied client, so one client keeps its
	// node and different clients reach different nodes.
	ns := []*echoNode{startEcho(t, "a"), startEcho(t, "b"), startEcho(t, "c")}
	_, addr := startLB(t, testConfig(t, proxyYAML+"balancing: {policy: client_ip_hash}\n"), nodesOf(ns...))
	nodes := map[string]bool{}
	for i := range 12 {
		client := fmt.Sprintf("192.0.2.%d", 10+i)
		first := ""
		for range 2 {
			a := sendProxied(t, "127.0.0.1", addr, proxyV2(t, client+":1000", "203.0.113.1:443"), []byte("GET /login HTTP/1.1\r\nHost: x\r\n\r\n"), false)
			_, node, _ := strings.Cut(a, "X-Mosparo-Node: ")
			node, _, _ = strings.Cut(node, "\r\n")
			if first == "" {
				first = node
			} else if node != first {
				t.Errorf("client %s went to %s, then %s", client, first, node)
			}
		}
		nodes[first] = true
	}
	if len(nodes) < 2 {
		t.Errorf("12 proxied clients all went to %v: the hash does not see them", nodes)
	}
}

// TestProxyProtocolTLS: on a TLS listener the header comes first, then
// the handshake, and the request is forwarded for the proxied client.
func TestProxyProtocolTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "mosparo.example")
	lb := startProxyLB(t, fmt.Sprintf(`
listen: [{address: "127.0.0.1:0", tls: {certificates: [{cert: %q, key: %q}]}, proxy_protocol: {from: [127.0.0.1]}}]
timeouts: {connect: 500ms, request: 2s}
`, cert, key))
	for _, header := range [][]byte{proxyV1("192.0.2.7", "203.0.113.1"), proxyV2(t, "192.0.2.7:1", "203.0.113.1:443", someTLVs...)} {
		raw := dialFrom(t, "127.0.0.1", lb.addr)
		if _, err := raw.Write(header); err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, &tls.Config{ServerName: "mosparo.example", InsecureSkipVerify: true})
		if _, err := c.Write([]byte("GET /login HTTP/1.1\r\nHost: mosparo.example\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatalf("TLS after the PROXY header: %v", err)
		}
		answer, _ := io.ReadAll(c)
		if statusOf(string(answer)) != 200 {
			t.Fatalf("answer %q, want 200", answer)
		}
		got := lb.node.received()
		want := "GET /login HTTP/1.1\r\nHost: mosparo.example\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: mosparo.example\r\n\r\n"
		if got[len(got)-1] != want {
			t.Errorf("node read\n%q\nwant\n%q", got[len(got)-1], want)
		}
	}
	// A TLS client without the header is closed before its handshake.
	raw := dialFrom(t, "127.0.0.1", lb.addr)
	c := tls.Client(raw, &tls.Config{ServerName: "mosparo.example", InsecureSkipVerify: true})
	if err := c.Handshake(); err == nil {
		t.Error("a handshake without a PROXY header succeeded")
	}
}

// TestProxyProtocolFromHAProxy puts a real sender in front: HAProxy in TCP
// mode with send-proxy (v1), send-proxy-v2 with TLVs, and send-proxy-v2 to
// a TLS listener (HAProxy passes the TLS through). HAProxy connects from
// 127.0.0.3, the only address in proxy_protocol.from; clients come from
// 127.0.0.5, which the node must see, byte for byte. HAProxy's own health
// checks (v2 LOCAL) pass too, with its address as the client.
func TestProxyProtocolFromHAProxy(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("MOSPARO_LB_REQUIRE_ROOT_TESTS") == "1" {
			t.Fatal("haproxy is not installed (scripts/install-test-deps.sh)")
		}
		t.Skip("haproxy is not installed")
	}
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "mosparo.example")
	lb := startProxyLB(t, fmt.Sprintf(`
listen:
  - {address: "127.0.0.1:0", proxy_protocol: {from: [127.0.0.3]}}
  - {address: "127.0.0.2:0", proxy_protocol: {from: [127.0.0.3]}, tls: {certificates: [{cert: %q, key: %q}]}}
timeouts: {connect: 500ms, request: 2s}
`, cert, key))
	plain, tlsAddr := lb.srv.Addrs()[0], lb.srv.Addrs()[1]
	fronts := startHAProxyFronts(t, fmt.Sprintf(`
frontend v1
    bind fd@3
    default_backend v1
frontend v2
    bind fd@4
    unique-id-format %%{+X}o\ %%ci:%%cp
    default_backend v2
frontend tls
    bind fd@5
    default_backend tls
backend v1
    server lb %s send-proxy source 127.0.0.3
backend v2
    option httpchk
    http-check send meth GET uri /lbcheck ver HTTP/1.1 hdr Host mosparo.example
    server lb %s send-proxy-v2 proxy-v2-options crc32c,unique-id source 127.0.0.3 check inter 100ms
backend tls
    server lb %s send-proxy-v2 source 127.0.0.3
`, plain, plain, tlsAddr), 3)
	request := []byte("GET /login HTTP/1.1\r\nHost: mosparo.example\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n")
	for i, name := range []string{"send-proxy", "send-proxy-v2"} {
		before := len(lb.node.received())
		answer := sendProxied(t, "127.0.0.5", fronts[i], nil, request, false)
		if statusOf(answer) != 200 {
			t.Fatalf("%s: answer %q, want 200", name, answer)
		}
		got := lb.node.received()
		if len(got) <= before || !slices.Contains(got[before:], forwardedFor("127.0.0.5")) {
			t.Errorf("%s: node read %q, want %q among them", name, got[before:], forwardedFor("127.0.0.5"))
		}
	}
	raw := dialFrom(t, "127.0.0.5", fronts[2])
	c := tls.Client(raw, &tls.Config{ServerName: "mosparo.example", InsecureSkipVerify: true})
	if _, err := c.Write([]byte("GET /login HTTP/1.1\r\nHost: mosparo.example\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatalf("TLS through HAProxy: %v", err)
	}
	if answer, _ := io.ReadAll(c); statusOf(string(answer)) != 200 {
		t.Fatalf("TLS through HAProxy: answer %q, want 200", answer)
	}
	want := "GET /login HTTP/1.1\r\nHost: mosparo.example\r\nX-Forwarded-For: 127.0.0.5\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: mosparo.example\r\n\r\n"
	if got := lb.node.received(); !slices.Contains(got, want) {
		t.Errorf("TLS: node read %q, want %q among them", got, want)
	}
	check := "GET /lbcheck HTTP/1.1\r\nHost: mosparo.example\r\nX-Forwarded-For: 127.0.0.3\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: mosparo.example\r\n\r\n"
	waitFor(t, func() bool { return slices.Contains(lb.node.received(), check) })
	if st := lb.srv.ConnStats(); st.RefusedProxyHeader != 0 || st.RefusedProxyPeer != 0 {
		t.Errorf("ConnStats = %+v: HAProxy's connections were refused", st)
	}
}

// startHAProxyFronts runs haproxy with sections after a TCP-mode defaults
// block, its listening sockets made here and passed as fd 3 on, so there is
// no port race. It returns their addresses.
func startHAProxyFronts(t *testing.T, sections string, n int) []string {
	t.Helper()
	var files []*os.File
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
		addrs = append(addrs, ln.Addr().String())
	}
	cfg := "global\n    maxconn 100\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout check 1s\n" + sections
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("haproxy", "-db", "-f", path)
	cmd.ExtraFiles = files
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("haproxy did not exit")
		}
		if strings.Contains(out.String(), "[ALERT]") {
			t.Errorf("haproxy: %s", out.String())
		}
	})
	return addrs
}

// TestProxyProtocolSlowHeaderBlocksNoOne: a peer that sends half a header
// holds only its own connection; the listener keeps accepting and serving
// others meanwhile (the header is read in the connection's goroutine).
func TestProxyProtocolSlowHeaderBlocksNoOne(t *testing.T) {
	lb := startProxyLB(t, `
listen: [{address: "127.0.0.1:0", proxy_protocol: {from: [127.0.0.1], timeout: 1m}}]
timeouts: {connect: 500ms, request: 2s}
shutdown: {grace: 1s}
`)
	var slow []*net.TCPConn
	for range 3 {
		c := dialFrom(t, "127.0.0.1", lb.addr)
		if _, err := c.Write([]byte("PROXY TCP4 192.0.2.7 ")); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
	}
	// Within sendProxied's 15 s deadline, far below the header timeout.
	if a := sendProxied(t, "127.0.0.1", lb.addr, proxyV1("192.0.2.8", "203.0.113.1"), []byte(loginRequest), false); statusOf(a) != 200 {
		t.Errorf("answer %q while other headers are pending, want 200", a)
	}
	for _, c := range slow {
		c.Close()
	}
}

// TestConnLimiterTwoSteps: a proxied connection holds a place in
// max_conns from accept and one under its client from the header on; a
// connection closed before its header holds none, even when the header
// is admitted after the close.
func TestConnLimiterTwoSteps(t *testing.T) {
	l := newConnLimiter()
	client := netip.MustParseAddr("192.0.2.7")
	a, b, c := &watchedConn{noPerIP: true}, &watchedConn{noPerIP: true}, &watchedConn{noPerIP: true}
	for range 3 {
		if r := l.admitConn(3); r != admitted {
			t.Fatalf("admitConn = %v", r)
		}
	}
	if r := l.admitConn(3); r != refusedTotal {
		t.Errorf("fourth admitConn = %v, want %v", r, refusedTotal)
	}
	if r := l.admitClient(a, client, 1, false); r != admitted || a.peer != client {
		t.Errorf("admitClient = %v, peer %v", r, a.peer)
	}
	if r := l.admitClient(b, client, 1, false); r != refusedPerIP {
		t.Errorf("second admitClient of one client = %v, want %v", r, refusedPerIP)
	}
	c.closed.Store(true)
	l.release(c)
	if r := l.admitClient(c, netip.MustParseAddr("192.0.2.8"), 1, false); r != admitted || !c.noPerIP {
		t.Errorf("admitClient after close = %v, noPerIP %v: it must take no place", r, c.noPerIP)
	}
	l.release(b)
	l.release(a)
	if st := l.stats(); st.Open != 0 || st.LargestPerIPNow != 0 || len(l.perIP) != 0 {
		t.Errorf("after every release: %+v, per IP %v", st, l.perIP)
	}
}

// TestProxyProtocolFollowsRuntime: a listener's policy is the current
// runtime's, so a reload that turns proxy_protocol on or off, or changes
// from, applies to the next connection (the runtime is stored directly
// here, as Swap does).
func TestProxyProtocolFollowsRuntime(t *testing.T) {
	lb := startProxyLB(t, proxyYAML)
	nodes := []NodeSpec{{Name: "n1", Address: lb.node.ln.Addr().String(), Weight: 100}}
	swap := func(yaml string) {
		t.Helper()
		rt, err := NewRuntime(testConfig(t, yaml), nodes, Deps{Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		rt.wd = lb.srv.wd
		lb.srv.rt.Swap(rt).CloseIdle()
	}
	header := proxyV1("192.0.2.7", "203.0.113.1")
	swap(strings.Replace(proxyYAML, "proxy_protocol: {from: [127.0.0.1], timeout: 1s}", "", 1))
	if a := sendProxied(t, "127.0.0.1", lb.addr, nil, []byte(loginRequest), false); statusOf(a) != 200 {
		t.Errorf("proxy_protocol off: plain request answered %q, want 200", a)
	}
	swap(strings.Replace(proxyYAML, "from: [127.0.0.1]", "from: [127.0.0.2]", 1))
	if a := sendProxied(t, "127.0.0.1", lb.addr, header, []byte(loginRequest), false); a != "" {
		t.Errorf("127.0.0.1 no longer in from: answered %q, want the connection closed", a)
	}
	swap(proxyYAML)
	if a := sendProxied(t, "127.0.0.1", lb.addr, header, []byte(loginRequest), false); statusOf(a) != 200 {
		t.Errorf("proxy_protocol back on: answered %q, want 200", a)
	}
	got := lb.node.received()
	if len(got) != 2 || got[0] != forwardedFor("127.0.0.1") || got[1] != forwardedFor("192.0.2.7") {
		t.Errorf("node read %q", got)
	}
}

// TestProxyProtocolIPv6Balancer: a balancer reaching mosparo-lb over IPv6
// is matched against an IPv6 from list; the client it names may be IPv4.
func TestProxyProtocolIPv6Balancer(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	lb := startProxyLB(t, `
listen: [{address: "[::1]:0", proxy_protocol: {from: ["::1/128"]}}]
timeouts: {connect: 500ms, request: 2s}
`)
	if a := sendProxied(t, "::1", lb.addr, proxyV2(t, "192.0.2.7:1", "203.0.113.1:443"), []byte(loginRequest), false); statusOf(a) != 200 {
		t.Fatalf("answer %q, want 200", a)
	}
	if got := lb.node.received(); len(got) != 1 || got[0] != forwardedFor("192.0.2.7") {
		t.Errorf("node read %q, want %q", got, forwardedFor("192.0.2.7"))
	}
}
