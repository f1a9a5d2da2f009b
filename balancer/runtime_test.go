package balancer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/ratelimit"
)

// A configuration that passed configs' validation can still hold values
// only the runtime reads (files, prefixes, limiter and encoder settings);
// each is refused with an error naming its key, and no runtime is built.
// Configurations built in code, or changed after parsing, reach NewRuntime
// unvalidated, so every bad value is set on a parsed one here.
func TestNewRuntimeRefusals(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := writeCert(t, dir, "a.example")
	_, keyB := writeCert(t, dir, "b.example")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withCert := func(cert, key string) func(*configs.Config) {
		return func(c *configs.Config) {
			c.Listen[0].TLS = &configs.TLS{Certificates: []configs.Certificate{{Cert: cert, Key: key}}}
		}
	}
	manyNodes := make([]NodeSpec, maxPoolNodes+1)
	for i := range manyNodes {
		manyNodes[i] = NodeSpec{Name: fmt.Sprintf("n%d", i), Address: fmt.Sprintf("127.0.0.1:%d", 1000+i), Weight: 100}
	}
	for _, tc := range []struct {
		name   string
		nodes  []NodeSpec
		mutate func(c *configs.Config)
		want   string // in the error
		is     error  // the error wraps it, when set
	}{
		{"more nodes than a pool holds", manyNodes, func(*configs.Config) {}, "65 nodes; at most 64 are supported", nil},
		{"trusted_proxies not a prefix", nil, func(c *configs.Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "balancer: trusted_proxies: ", nil},
		{"trusted_proxies empty", nil, func(c *configs.Config) { c.TrustedProxies = []string{""} }, "balancer: trusted_proxies: ", nil},
		{"trusted_proxies with NUL", nil, func(c *configs.Config) { c.TrustedProxies = []string{"10.0.0.1\x00"} }, "balancer: trusted_proxies: ", nil},
		{"trusted_proxies huge", nil, func(c *configs.Config) { c.TrustedProxies = []string{strings.Repeat("1", 1<<16)} }, "balancer: trusted_proxies: ", nil},
		{"allow_health_from a name", nil, func(c *configs.Config) { c.Edge.AllowHealthFrom = []string{"monitor.example"} }, "balancer: edge.allow_health_from: ", nil},
		{"allow_cron_from /129", nil, func(c *configs.Config) { c.Edge.AllowCronFrom = []string{"::1/129"} }, "balancer: edge.allow_cron_from: ", nil},
		{"rate_limits.exempt", nil, func(c *configs.Config) { c.RateLimits.Exempt = []string{"10.0.0.0/8x"} }, "balancer: rate_limits: ", nil},
		{"rate_limits burst 0", nil, func(c *configs.Config) { c.RateLimits.Frontend = &configs.RateLimit{Rate: 1, Burst: 0} }, "balancer: rate_limits: ", ratelimit.ErrConfig},
		{"rate_limits rate NaN", nil, func(c *configs.Config) { c.RateLimits.API = &configs.RateLimit{Rate: math.NaN(), Burst: 10} }, "balancer: rate_limits: ", ratelimit.ErrConfig},
		{"rate_limits rate +Inf", nil, func(c *configs.Config) { c.RateLimits.API = &configs.RateLimit{Rate: math.Inf(1), Burst: 10} }, "balancer: rate_limits: ", ratelimit.ErrConfig},
		{"rate_limits ipv6_prefix", nil, func(c *configs.Config) {
			c.RateLimits.Frontend = &configs.RateLimit{Rate: 1, Burst: 10}
			c.RateLimits.IPv6Prefix = 129
		}, "balancer: rate_limits: ", ratelimit.ErrConfig},
		{"compression gzip level", nil, func(c *configs.Config) {
			c.Compression.Enabled, c.Compression.Algorithms, c.Compression.GzipLevel = true, []string{"gzip"}, 42
		}, "balancer: compression: ", nil},
		{"proxy_protocol.from", nil, func(c *configs.Config) {
			c.Listen[0].ProxyProtocol = &configs.ProxyProtocol{From: []string{"haproxy.example"}}
		}, "balancer: listener 127.0.0.1:0: proxy_protocol.from: ", nil},
		{"missing certificate file", nil, withCert(filepath.Join(dir, "absent.crt"), keyA), "balancer: listener 127.0.0.1:0: ", os.ErrNotExist},
		{"missing key file", nil, withCert(certA, filepath.Join(dir, "absent.key")), "balancer: listener 127.0.0.1:0: ", os.ErrNotExist},
		{"key of another certificate", nil, withCert(certA, keyB), "balancer: listener 127.0.0.1:0: ", nil},
		{"garbage certificate", nil, withCert(garbage, keyA), "balancer: listener 127.0.0.1:0: ", nil},
		{"certificate as key", nil, withCert(certA, certA), "balancer: listener 127.0.0.1:0: ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, baseYAML)
			tc.mutate(cfg)
			rt, err := NewRuntime(cfg, tc.nodes, Deps{})
			if err == nil || rt != nil {
				t.Fatalf("NewRuntime = %v, %v; want an error", rt, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
		})
	}
}

// recMetrics records which recorders a runtime asked for.
type recMetrics struct {
	mu    sync.Mutex
	names []string
}

func (m *recMetrics) Node(name string) RequestRecorder {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.names = append(m.names, name)
	return recorderFunc(func(Class, int, time.Duration, int) {})
}

type recorderFunc func(Class, int, time.Duration, int)

func (f recorderFunc) Observe(c Class, status int, d time.Duration, retries int) {
	f(c, status, d, retries)
}

// NewRuntime carries the configuration into what requests read: balancing,
// timeouts, per-class pools, node clients, listeners' certificates and
// default hosts, forwarding, rate limits, and a metrics recorder per node.
func TestNewRuntimeFromConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "files.example")
	cfg := testConfig(t, fmt.Sprintf(`
listen:
  - {address: "127.0.0.1:0", default_host: "www.example"}
  - address: "127.0.0.2:0"
    tls: {certificates: [{cert: %q, key: %q}]}
  - address: "127.0.0.3:0"
    tls: {acme: {domains: [LB.Mosparo.Test, other.test], ca: "https://127.0.0.1:1/dir"}}
  - {address: "127.0.0.4:0"}
nodes: [{name: n1, address: "127.0.0.1:1001"}, {name: n2, address: "127.0.0.1:1002", weight: 50, admin: true}]
timeouts: {connect: 200ms, request: 3s, client_read: 4s, idle: 5s, queue: 6s, upstream_idle: 7s}
limits: {max_conns_per_node: 7}
balancing: {policy: client_ip_hash, retries: 3, pools: {frontend: [n2]}, update_node: n1}
health: {passive: {count_5xx: true}}
edge: {forwarded_prefix: /mosparo, allow_health_from: [10.0.0.0/8]}
rate_limits: {frontend: {rate: 2, burst: 5}, frontend_answer: delay, exempt: [192.0.2.0/24]}
`, certFile, keyFile))
	nodes := []NodeSpec{{Name: "n1", Address: "127.0.0.1:1001", Weight: 100}, {Name: "n2", Address: "127.0.0.1:1002", Weight: 50, Admin: true}}
	m := &recMetrics{}
	rt, err := NewRuntime(cfg, nodes, Deps{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if rt.deps.Logger == nil {
		t.Error("no logger given: the runtime must have a no-op one")
	}
	if rt.retries != 3 || !rt.hashClients || !rt.count5xx || rt.timeout != 3*time.Second || rt.clientRead != 4*time.Second || rt.idle != 5*time.Second {
		t.Errorf("retries %d, hash %v, count_5xx %v, timeouts %v/%v/%v; want 3, true, true, 3s/4s/5s",
			rt.retries, rt.hashClients, rt.count5xx, rt.timeout, rt.clientRead, rt.idle)
	}
	if rt.updateNode != "n1" || string(rt.fwd.prefix) != "/mosparo" || len(rt.allowHealth) != 1 || len(rt.allowCron) != 0 {
		t.Errorf("update node %q, prefix %q, allow health %v, allow cron %v", rt.updateNode, rt.fwd.prefix, rt.allowHealth, rt.allowCron)
	}
	for c := Class(0); c < NumClasses; c++ {
		var names []string
		for _, u := range rt.pools[c].nodes {
			names = append(names, u.name)
		}
		want := []string{"n1", "n2"}
		if c == Frontend {
			want = []string{"n2"} // balancing.pools
		}
		if !slices.Equal(names, want) || rt.pools[c].class != c {
			t.Errorf("pool %s = %v, want %v", c, names, want)
		}
	}
	for i, u := range rt.nodes {
		n := nodes[i]
		hc := u.hc
		if u.name != n.Name || u.addr != n.Address || u.weight != n.Weight || u.admin != n.Admin || u.maxConns != 7 || u.rec == nil {
			t.Errorf("node %d = %s %s w%d admin %v max %d, want %+v with max 7 and a recorder", i, u.name, u.addr, u.weight, u.admin, u.maxConns, n)
		}
		if hc.Addr != n.Address || hc.MaxConns != 7 || hc.MaxConnWaitTimeout != 6*time.Second || hc.MaxIdleConnDuration != 7*time.Second || hc.MaxIdemponentCallAttempts != 1 {
			t.Errorf("node %s client: addr %s, max %d, queue %v, idle %v, attempts %d", n.Name, hc.Addr, hc.MaxConns, hc.MaxConnWaitTimeout, hc.MaxIdleConnDuration, hc.MaxIdemponentCallAttempts)
		}
	}
	if m.names = slices.Sorted(slices.Values(m.names)); !slices.Equal(m.names, []string{"", "n1", "n2"}) || rt.noNode == nil {
		t.Errorf("metrics recorders for %q, want the LB's own and one per node", m.names)
	}
	wantHosts := []string{"www.example", "files.example", "LB.Mosparo.Test", ""}
	for i, want := range wantHosts {
		if got := string(rt.defaultHosts[i]); got != want || (want == "") != (rt.defaultHosts[i] == nil) {
			t.Errorf("listener %d default host %q, want %q", i, got, want)
		}
	}
	if len(rt.certs) != 4 || len(rt.certs[1]) != 1 || rt.certs[0] != nil || rt.certs[2] != nil {
		t.Errorf("certificates per listener: %d, want only listener 1's", len(rt.certs))
	}
	if len(rt.acme) != 4 || !rt.acme[2]["lb.mosparo.test"] || !rt.acme[2]["other.test"] || rt.acme[0] != nil {
		t.Errorf("ACME domains per listener: %v", rt.acme)
	}
	fr := rt.rate.byClass[Frontend]
	if fr == nil || rt.rate.byClass[API] != nil || !rt.rate.delay {
		t.Fatalf("rate limits: frontend %v, api %v, delay %v; want frontend only, delay", fr, rt.rate.byClass[API], rt.rate.delay)
	}
	if c := fr.Config(); c.Rate != 2 || c.Burst != 5 || len(c.Exempt) != 1 || c.Exempt[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("frontend limiter %+v, want rate 2, burst 5, exempt 192.0.2.0/24", c)
	}
}

// Without rate_limits no class is limited; each class turned on gets its
// own limiter with the shared settings.
func TestNewRateLimits(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name     string
		cfg      configs.RateLimits
		frontend bool
		api      bool
		delay    bool
	}{
		{"off", configs.RateLimits{}, false, false, false},
		{"frontend", configs.RateLimits{Frontend: &configs.RateLimit{Rate: 1, Burst: 10}, MaxEntries: 1024}, true, false, false},
		{"api with delay answer", configs.RateLimits{API: &configs.RateLimit{Rate: 1, Burst: 10}, FrontendAnswer: "delay", IPv6Prefix: 48}, false, true, true},
		{"both", configs.RateLimits{Frontend: &configs.RateLimit{Rate: 0.5, Burst: 1}, API: &configs.RateLimit{Rate: 1e6, Burst: 1e6}}, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newRateLimits(tc.cfg, epoch)
			if err != nil {
				t.Fatal(err)
			}
			for c := Class(0); c < NumClasses; c++ {
				want := c == Frontend && tc.frontend || c == API && tc.api
				if l := r.byClass[c]; (l != nil) != want {
					t.Errorf("class %s limited: %v, want %v", c, l != nil, want)
				} else if l != nil {
					lc := tc.cfg.Frontend
					if c == API {
						lc = tc.cfg.API
					}
					if got := l.Config(); got.Rate != lc.Rate || got.Burst != lc.Burst || got.IPv6Prefix != tc.cfg.IPv6Prefix || got.MaxEntries != tc.cfg.MaxEntries {
						t.Errorf("class %s limiter %+v, want %+v", c, got, lc)
					}
				}
			}
			if r.delay != tc.delay {
				t.Errorf("delay = %v, want %v", r.delay, tc.delay)
			}
		})
	}
}

// certWith is a self-signed certificate with the given names, not written
// anywhere.
func certWith(t *testing.T, dns []string, ips []net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cn.example"},
		DNSNames: dns, IPAddresses: ips, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A listener's default host from its first certificate: the first DNS name
// that is no wildcard, else the first IP (bracketed for IPv6), never the
// subject's common name.
func TestCertHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		dns  []string
		ips  []net.IP
		want string
	}{
		{"one name", []string{"a.example"}, nil, "a.example"},
		{"wildcard first", []string{"*.example", "b.example"}, nil, "b.example"},
		{"names before addresses", []string{"c.example"}, []net.IP{net.ParseIP("192.0.2.1")}, "c.example"},
		{"only a wildcard and an address", []string{"*.example"}, []net.IP{net.ParseIP("192.0.2.1")}, "192.0.2.1"},
		{"IPv6", nil, []net.IP{net.ParseIP("2001:db8::1")}, "[2001:db8::1]"},
		{"IPv4-mapped IPv6", nil, []net.IP{net.ParseIP("::ffff:192.0.2.7").To16()}, "192.0.2.7"},
		{"only wildcards", []string{"*.example", "*.other"}, nil, ""},
		{"no names", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := certWith(t, tc.dns, tc.ips)
			if got := certHost(&cert); got != tc.want {
				t.Errorf("certHost(%v, %v) = %q, want %q", tc.dns, tc.ips, got, tc.want)
			}
			// With the leaf parsed already, the same.
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			cert.Leaf = leaf
			if got := certHost(&cert); got != tc.want {
				t.Errorf("with Leaf: certHost = %q, want %q", got, tc.want)
			}
		})
	}
	for name, cert := range map[string]tls.Certificate{
		"empty":       {},
		"garbage DER": {Certificate: [][]byte{[]byte("\x30\x03\x02\x01")}},
		"nil DER":     {Certificate: [][]byte{nil}},
	} {
		if got := certHost(&cert); got != "" {
			t.Errorf("%s: certHost = %q, want \"\"", name, got)
		}
	}
}

// Edge lists take CIDRs or single addresses (IPv4-mapped ones as IPv4) and
// match the client address by containment; an empty list allows no one.
func TestPrefixesAllowed(t *testing.T) {
	list, err := prefixes([]string{"10.1.2.3/8", "::ffff:192.0.2.9", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.9/32"), netip.MustParsePrefix("2001:db8::/32")}; !slices.Equal(list, want) {
		t.Errorf("prefixes = %v, want %v", list, want)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.255.0.1", true},
		{"11.0.0.1", false},
		{"192.0.2.9", true},
		{"192.0.2.10", false},
		{"2001:db8:ffff::1", true},
		{"2001:db9::1", false},
		// The client address is unmapped before it gets here (clientaddr.go).
		{"::ffff:10.0.0.1", false},
	} {
		if got := allowed(list, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("allowed(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if allowed(nil, netip.MustParseAddr("127.0.0.1")) {
		t.Error("an empty list allowed 127.0.0.1")
	}
}
