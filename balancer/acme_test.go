package balancer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mosparo-lb/mosparo-lb/acme"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// secretMarker is the content of a file beside the ACME storage.
const secretMarker = "TOPSECRET-7f3a"

// challengeLB is an LB with a real acme.Manager (running against a CA that
// is not there, so certmagic's issuer is live but no order completes) and
// four listeners: plain redirecting, plain serving, TLS with tls.acme and
// TLS with files only.
type challengeLB struct {
	node                                *echoNode
	redirect, plain, tlsACME, tlsNoACME string
	storage                             string
}

func startChallengeLB(t testing.TB) *challengeLB {
	t.Helper()
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	// A file beside the storage that traversal would reach.
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(secretMarker), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeCert(t, dir, "files.example")
	cfg := testConfig(t, fmt.Sprintf(`
listen:
  - {address: "127.0.0.1:0", redirect_https: true}
  - {address: "127.0.0.2:0"}
  - address: "127.0.0.3:0"
    tls: {acme: {domains: [lb.mosparo.test], ca: "https://127.0.0.1:1/dir", challenges: [http-01, tls-alpn-01]}}
  - address: "127.0.0.4:0"
    tls: {certificates: [{cert: %q, key: %q}]}
timeouts: {connect: 200ms, request: 2s}
`, certFile, keyFile))
	logger := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		logger = zaptest.NewLogger(tt) // a fuzz target's logs would go to f
	}
	// certmagic's obtain jobs outlive Run and log after the test ended (a
	// race on testing.T under -race): the manager logs nowhere.
	m, err := acme.New(*cfg.Listen[2].TLS.ACME, acme.Options{Logger: zap.NewNop(),
		Storage: &certmagic.FileStorage{Path: storage}, HTTPPort: 1, TLSPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	n := startEcho(t, "n1")
	rt, err := NewRuntime(cfg, nodesOf(n), Deps{Logger: logger, ACME: m})
	if err != nil {
		t.Fatal(err)
	}
	s := serveRuntime(t, rt)
	a := s.Addrs()
	return &challengeLB{node: n, redirect: a[0], plain: a[1], tlsACME: a[2], tlsNoACME: a[3], storage: storage}
}

// rawStatus sends raw bytes to addr and returns the status code and body of
// the answer, 0 when the LB closed the connection without one.
func rawStatus(t testing.TB, addr, raw string) (int, string) {
	t.Helper()
	resp, err := rawAnswer(t, addr, raw)
	if err != nil {
		return 0, ""
	}
	return resp.StatusCode(), string(resp.Body())
}

// TestACMEChallengeHostile: hostile http-01 requests on both plain
// listeners are answered by the LB with 404 (or refused as malformed with
// 400), never by a node, never with a file of the storage or beside it. A
// path that decodes out of the challenge prefix is no challenge: it is
// routed (or redirected) like any path.
func TestACMEChallengeHostile(t *testing.T) {
	lb := startChallengeLB(t)
	p := acme.ChallengePrefix
	for _, tc := range []struct {
		name, method, target, host string
		want                       int
	}{
		{"unknown token", "GET", p + "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "lb.mosparo.test", 404},
		{"head unknown token", "HEAD", p + "abc", "lb.mosparo.test", 404},
		{"traversal", "GET", p + "../../secret", "lb.mosparo.test", -1},
		{"traversal inside", "GET", p + "x/../../acme-challenge/abc", "lb.mosparo.test", 404},
		{"dot dot token", "GET", p + "..", "lb.mosparo.test", -1},
		// %2F is decoded before the path is normalised (fasthttp), so this is
		// /.well-known/secret: no challenge.
		{"encoded slash", "GET", p + "a%2F..%2F..%2Fsecret", "lb.mosparo.test", -1},
		{"encoded slash in token", "GET", p + "a%2Fb", "lb.mosparo.test", 404},
		{"encoded dots", "GET", p + "%2e%2e%2f%2e%2e%2fsecret", "lb.mosparo.test", -1},
		{"double encoded", "GET", p + "%252e%252e%252fsecret", "lb.mosparo.test", 404},
		{"nul", "GET", p + "abc%00def", "lb.mosparo.test", 404},
		{"huge token", "GET", p + strings.Repeat("A", 6000), "lb.mosparo.test", 404},
		{"storage key", "GET", p + "acme%2Fchallenge_tokens%2Flb.mosparo.test.json", "lb.mosparo.test", 404},
		{"post", "POST", p + "abc", "lb.mosparo.test", 404},
		{"put", "PUT", p + "abc", "lb.mosparo.test", 404},
		{"delete", "DELETE", p + "abc", "lb.mosparo.test", 404},
		{"options", "OPTIONS", p + "abc", "lb.mosparo.test", 404},
		{"host not managed", "GET", p + "abc", "other.example", 404},
		{"host traversal", "GET", p + "abc", "..%2f..", 400},
		{"host ip", "GET", p + "abc", "127.0.0.1", 404},
		{"host uppercase", "GET", p + "abc", "LB.MOSPARO.TEST", 404},
		{"absolute form", "GET", "http://lb.mosparo.test" + p + "abc", "lb.mosparo.test", 404},
		{"prefix without slash", "GET", strings.TrimSuffix(p, "/"), "lb.mosparo.test", -1},
	} {
		for _, ln := range []struct{ name, addr string }{{"redirecting", lb.redirect}, {"plain", lb.plain}} {
			t.Run(tc.name+"/"+ln.name, func(t *testing.T) {
				before := lb.node.hits.Load()
				body := ""
				if tc.method == "POST" || tc.method == "PUT" {
					body = "Content-Length: 3\r\n\r\nabc"
				} else {
					body = "\r\n"
				}
				code, got := rawStatus(t, ln.addr, tc.method+" "+tc.target+" HTTP/1.1\r\nHost: "+tc.host+"\r\nConnection: close\r\n"+body)
				if strings.Contains(got, secretMarker) || strings.Contains(got, "PRIVATE KEY") {
					t.Errorf("%s %s answered with a file: %q", tc.method, tc.target, got)
				}
				if tc.want < 0 {
					// Out of the prefix: routed like any path (never the
					// storage); the redirecting listener redirects.
					if ln.addr == lb.redirect && code != 308 {
						t.Errorf("%s %s = %d, want the HTTPS redirect", tc.method, tc.target, code)
					}
					return
				}
				if code != tc.want {
					t.Errorf("%s %s Host %s = %d, want %d", tc.method, tc.target, tc.host, code, tc.want)
				}
				if n := lb.node.hits.Load() - before; n != 0 {
					t.Errorf("%s %s reached a node %d times", tc.method, tc.target, n)
				}
			})
		}
	}
}

// TestACMEALPNHostileSNI: tls-alpn-01 hellos (acme-tls/1 alone) with
// hostile names are refused, on the listener with tls.acme (no challenge
// for the name) and the one without; ordinary handshakes still work after.
func TestACMEALPNHostileSNI(t *testing.T) {
	lb := startChallengeLB(t)
	for _, sni := range []string{"", "lb.mosparo.test", "LB.MOSPARO.TEST", "other.example", strings.Repeat("a", 63) + "." + strings.Repeat("b", 190),
		"a..b", "under_score.test", "*.mosparo.test"} {
		for _, ln := range []struct{ name, addr string }{{"acme", lb.tlsACME}, {"files", lb.tlsNoACME}} {
			t.Run(fmt.Sprintf("%.20s/%s", sni, ln.name), func(t *testing.T) {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.addr,
					&tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{acme.ALPNProtocol}})
				if err == nil {
					conn.Close()
					t.Errorf("tls-alpn-01 hello for %q completed on the %s listener", sni, ln.name)
				}
			})
		}
	}
	// The files listener still serves ordinary handshakes (the ACME one has
	// no certificate: its CA is not there).
	for _, addr := range []string{lb.tlsNoACME} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: "files.example", InsecureSkipVerify: true})
		if err != nil {
			t.Errorf("ordinary handshake on %s: %v", addr, err)
			continue
		}
		conn.Close()
	}
}

// TestACMECertificateHostileHello: hellos a Go client cannot send (an IP
// literal as SNI, control bytes, 64 KiB names) reach the certificate choice
// unharmed: refused for acme-tls/1, the files otherwise.
func TestACMECertificateHostileHello(t *testing.T) {
	m, err := acme.New(configs.ACME{Domains: []string{"lb.mosparo.test"}, CA: "https://127.0.0.1:1/dir", Challenges: []configs.Challenge{configs.ChallengeTLSALPN01}},
		acme.Options{Storage: &certmagic.FileStorage{Path: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "files.example")
	cfg := testConfig(t, fmt.Sprintf(`
listen:
  - address: "127.0.0.1:0"
    tls: {acme: {domains: [lb.mosparo.test], ca: "https://127.0.0.1:1/dir"}}
  - address: "127.0.0.2:0"
    tls: {certificates: [{cert: %q, key: %q}]}
`, certFile, keyFile))
	rt, err := NewRuntime(cfg, nil, Deps{Logger: zaptest.NewLogger(t), ACME: m})
	if err != nil {
		t.Fatal(err)
	}
	for _, sni := range []string{"", "127.0.0.1", "::1", "[::1]", "lb.mosparo.test\x00.evil", strings.Repeat("a", 65536), "LB.MOSPARO.TEST", "lb.mosparo.test."} {
		for index := 0; index < 2; index++ {
			challenge := &tls.ClientHelloInfo{ServerName: sni, SupportedProtos: []string{acme.ALPNProtocol}}
			if cert, done, err := rt.acmeCertificate(index, challenge); !done || err == nil || cert != nil {
				t.Errorf("listener %d: acme-tls/1 hello for %.40q = %v, %v, %v; want refused", index, sni, cert, done, err)
			}
			ordinary := &tls.ClientHelloInfo{ServerName: sni, SupportedProtos: []string{"h2", "http/1.1"}}
			if cert, done, err := rt.acmeCertificate(index, ordinary); done || err != nil || cert != nil {
				t.Errorf("listener %d: hello for %.40q = %v, %v, %v; want the files", index, sni, cert, done, err)
			}
		}
	}
}

// FuzzACMEChallenge: whatever method, path and Host a client sends to a
// plain listener under the challenge prefix, the LB answers it itself
// without a panic and no node sees it unless the path leaves the prefix.
func FuzzACMEChallenge(f *testing.F) {
	lb := startChallengeLB(f)
	f.Add("GET", "abc", "lb.mosparo.test")
	f.Add("GET", "../../secret", "lb.mosparo.test")
	f.Add("POST", "%2e%2e%2fsecret", "..")
	f.Add("GET", "a%00b", "127.0.0.1:80")
	f.Add("HEAD", strings.Repeat("A", 300), "LB.MOSPARO.TEST")
	f.Fuzz(func(t *testing.T, method, token, host string) {
		if strings.ContainsAny(method+token+host, " \r\n") || method == "" {
			return // no longer one request line and one Host
		}
		before := lb.node.hits.Load()
		code, body := rawStatus(t, lb.plain, method+" "+acme.ChallengePrefix+token+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if strings.Contains(body, secretMarker) || strings.Contains(body, "PRIVATE KEY") {
			t.Errorf("%s %q answered with a file: %q", method, token, body)
		}
		if lb.node.hits.Load() != before && !strings.Contains(token, "..") && !strings.Contains(strings.ToLower(token), "%2e") {
			t.Errorf("%s %q Host %q reached a node (status %d)", method, token, host, code)
		}
	})
}

// Per listener, the names its tls.acme manages, lower-cased (SNI is
// compared lower-cased); nil for a listener without tls.acme.
func TestACMEDomains(t *testing.T) {
	acmeOf := func(domains ...string) *configs.TLS {
		return &configs.TLS{ACME: &configs.ACME{Domains: domains}}
	}
	got := acmeDomains([]configs.Listener{
		{Address: "plain"},
		{Address: "files", TLS: &configs.TLS{Certificates: []configs.Certificate{{Cert: "c", Key: "k"}}}},
		{Address: "acme", TLS: acmeOf("LB.Mosparo.Test", "b.test", "b.test")},
		{Address: "acme, no domains", TLS: acmeOf()},
	})
	want := []map[string]bool{nil, nil, {"lb.mosparo.test": true, "b.test": true}, {}}
	if len(got) != len(want) {
		t.Fatalf("acmeDomains = %v, want %v", got, want)
	}
	for i := range want {
		if (got[i] == nil) != (want[i] == nil) || !maps.Equal(got[i], want[i]) {
			t.Errorf("listener %d: %v, want %v", i, got[i], want[i])
		}
	}
	if got := acmeDomains(nil); len(got) != 0 {
		t.Errorf("acmeDomains(nil) = %v, want none", got)
	}
}

// A listener with neither default_host nor certificate files defaults to
// its first ACME domain, as written.
func TestACMEDefaultHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    configs.Listener
		want string
	}{
		{"plain", configs.Listener{}, ""},
		{"files only", configs.Listener{TLS: &configs.TLS{Certificates: []configs.Certificate{{Cert: "c", Key: "k"}}}}, ""},
		{"no domains", configs.Listener{TLS: &configs.TLS{ACME: &configs.ACME{}}}, ""},
		{"first domain", configs.Listener{TLS: &configs.TLS{ACME: &configs.ACME{Domains: []string{"LB.Mosparo.Test", "b.test"}}}}, "LB.Mosparo.Test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := acmeDefaultHost(tc.l); got != tc.want {
				t.Errorf("acmeDefaultHost = %q, want %q", got, tc.want)
			}
		})
	}
}

// challengeRuntimes are a runtime whose first listener has tls.acme and a
// real (not running) ACME manager, and the same configuration without
// ACME.
func challengeRuntimes(t *testing.T) (withACME, without *Runtime) {
	t.Helper()
	m, err := acme.New(configs.ACME{Domains: []string{"lb.mosparo.test"}, CA: "https://127.0.0.1:1/dir", Challenges: []configs.Challenge{configs.ChallengeTLSALPN01, configs.ChallengeHTTP01}},
		acme.Options{Storage: &certmagic.FileStorage{Path: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, `
listen:
  - address: "127.0.0.1:0"
    tls: {acme: {domains: [lb.mosparo.test], ca: "https://127.0.0.1:1/dir"}}
  - {address: "127.0.0.2:0"}
`)
	if withACME, err = NewRuntime(cfg, nil, Deps{ACME: m}); err != nil {
		t.Fatal(err)
	}
	if without, err = NewRuntime(cfg, nil, Deps{}); err != nil {
		t.Fatal(err)
	}
	return withACME, without
}

// The balancer hands a plain request to ACME exactly when its normalised
// path is under /.well-known/acme-challenge/ (the manager then answers it,
// 404 for a token it has not), and never without ACME: look-alikes,
// case variants and paths that only normalise into the prefix or out of it
// are routed like any request.
func TestServeACMEChallengeRouting(t *testing.T) {
	withACME, without := challengeRuntimes(t)
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{acme.ChallengePrefix + "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", true},
		{acme.ChallengePrefix, true},
		{acme.ChallengePrefix + "a/b", true},
		{acme.ChallengePrefix + "abc?x=1", true},
		{"//.well-known//acme-challenge/abc", true},
		{"/.well-known/./acme-challenge/abc", true},
		{"/x/../.well-known/acme-challenge/abc", true},
		{"/.well-known/%61cme-challenge/abc", true},
		// fasthttp decodes %2F before it normalises (TestACMEChallengeHostile).
		{"/.well-known%2Facme-challenge%2Fabc", true},
		{"http://evil.example" + acme.ChallengePrefix + "abc", true},
		{"/.well-known/acme-challenge", false},
		{"/.well-known/acme-challenge-x/abc", false},
		{"/.well-known/acme-challengeabc", false},
		{"/.WELL-KNOWN/acme-challenge/abc", false},
		{"/.well-known/ACME-CHALLENGE/abc", false},
		{"/x/.well-known/acme-challenge/abc", false},
		{"/.well-known/acme-challenge/../../login", false},
		{"/login", false},
		{"/", false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI(tc.target)
			ctx.Request.Header.SetHost("lb.mosparo.test")
			if got := withACME.serveACMEChallenge(&ctx); got != tc.want {
				t.Errorf("with ACME, %s (path %s) served = %v, want %v", tc.target, ctx.Path(), got, tc.want)
			}
			if tc.want && ctx.Response.StatusCode() != 404 {
				t.Errorf("with ACME, %s = %d, want 404 (no such token)", tc.target, ctx.Response.StatusCode())
			}
			var plain fasthttp.RequestCtx
			plain.Request.SetRequestURI(tc.target)
			if without.serveACMEChallenge(&plain) {
				t.Errorf("without ACME, %s was served as a challenge", tc.target)
			}
		})
	}
}

// http-01 is answered on plain listeners only: on a TLS listener the
// challenge path is an ordinary request, forwarded to a node.
func TestACMEChallengeOnlyOnPlainListeners(t *testing.T) {
	lb := startChallengeLB(t)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", lb.tlsNoACME, &tls.Config{ServerName: "files.example", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	before := lb.node.hits.Load()
	if _, err := c.Write([]byte("GET " + acme.ChallengePrefix + "abc HTTP/1.1\r\nHost: lb.mosparo.test\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(newBufReader(c)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || lb.node.hits.Load() != before+1 {
		t.Errorf("challenge path over TLS = %d, node hits +%d; want 200 from the node", resp.StatusCode(), lb.node.hits.Load()-before)
	}
	if code, _ := rawStatus(t, lb.plain, "GET "+acme.ChallengePrefix+"abc HTTP/1.1\r\nHost: lb.mosparo.test\r\nConnection: close\r\n\r\n"); code != 404 {
		t.Errorf("the same on the plain listener = %d, want 404 from ACME", code)
	}
}

// The certificate choice hands a hello to ACME only on a listener with
// tls.acme: a tls-alpn-01 hello (acme-tls/1 as its only protocol) goes to
// the challenge answer, or is refused where there is no ACME; a hello that
// merely lists acme-tls/1 among others is ordinary.
func TestACMECertificateRouting(t *testing.T) {
	withACME, without := challengeRuntimes(t)
	for _, tc := range []struct {
		name   string
		rt     *Runtime
		index  int
		protos []string
		sni    string
		done   bool
		err    error // wrapped by the refusal; nil: any error
	}{
		{"challenge, acme listener", withACME, 0, []string{acmeALPN}, "lb.mosparo.test", true, acme.ErrNoChallenge},
		{"challenge, plain listener", withACME, 1, []string{acmeALPN}, "lb.mosparo.test", true, errNoACME},
		{"challenge, listener out of range", withACME, 7, []string{acmeALPN}, "lb.mosparo.test", true, errNoACME},
		{"challenge, no ACME", without, 0, []string{acmeALPN}, "lb.mosparo.test", true, errNoACME},
		{"acme-tls/1 first of two", withACME, 0, []string{acmeALPN, "h2"}, "other.example", false, nil},
		{"acme-tls/1 last of two", without, 0, []string{"h2", acmeALPN}, "lb.mosparo.test", false, nil},
		{"upper-case acme-tls/1", withACME, 0, []string{"ACME-TLS/1"}, "other.example", false, nil},
		{"no protocols", withACME, 0, nil, "other.example", false, nil},
		// Managed, but no certificate yet (the CA is not there): the
		// listener's files.
		{"managed name", withACME, 0, []string{"h2"}, "LB.mosparo.TEST", false, nil},
		{"unmanaged name", withACME, 0, []string{"h2"}, "other.example", false, nil},
		{"ordinary, no ACME", without, 0, []string{"h2"}, "lb.mosparo.test", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, done, err := tc.rt.acmeCertificate(tc.index, &tls.ClientHelloInfo{ServerName: tc.sni, SupportedProtos: tc.protos})
			if cert != nil || done != tc.done || (err != nil) != tc.done || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("acmeCertificate = %v, %v, %v; want nil, %v, %v", cert, done, err, tc.done, tc.err)
			}
		})
	}
}
