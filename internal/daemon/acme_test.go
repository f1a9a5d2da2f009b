package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/acme"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/mosparo-lb/mosparo-lb/internal/pebbletest"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap/zaptest"
)

// acmeDomain resolves to the LB through pebble-challtestsrv.
const acmeDomain = "lb.mosparo.test"

// acmeLB is one LB with listen[].tls.acme against a Pebble.
type acmeLB struct {
	t                 *testing.T
	d                 *Daemon
	path              string
	httpAddr, tlsAddr string
	stop              func()
}

// acmeYAML is an LB on ip with a plain listener (redirecting) and a TLS
// one whose certificate comes from ca, kept in storage.
func acmeYAML(nodes []*mosparoemu.Node, ip string, httpPort, tlsPort int, ca *pebbletest.CA, storage string, domains []string, challenges string) string {
	return fmt.Sprintf(`listen:
  - {address: "%s:%d", redirect_https: true}
  - address: "%s:%d"
    tls: {acme: {domains: [%s], email: ops@mosparo.test, ca: %q, ca_root: %q, challenges: [%s]}}
acme: {storage_dir: %q}
admin: {listen: "127.0.0.1:0"}
timeouts: {connect: 300ms, request: 3s}
%s
log: {level: warn, access_log: false}
shutdown: {grace: 1s}
`, ip, httpPort, ip, tlsPort, strings.Join(domains, ", "), ca.Directory, ca.TrustFile, challenges, storage, calmHealth) + nodesYAML(nodes)
}

func startACMELB(t *testing.T, yaml string, renewCheck time.Duration) *acmeLB {
	t.Helper()
	l := &acmeLB{t: t, path: filepath.Join(t.TempDir(), "lb.yaml")}
	if err := os.WriteFile(l.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), Options{Path: l.path, Loggers: &Loggers{Main: zaptest.NewLogger(t)}, ACMERenewCheck: renewCheck})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	l.d, l.httpAddr, l.tlsAddr = d, d.Addrs()[0], d.Addrs()[1]
	var once sync.Once
	l.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

// domainStatus is the LB's /status entry for domain.
func (l *acmeLB) domainStatus(domain string) acme.DomainStatus {
	s := l.d.Snapshot()
	if s.ACME != nil {
		for _, d := range s.ACME.Domains {
			if d.Domain == domain {
				return d
			}
		}
	}
	return acme.DomainStatus{}
}

// waitCertificate waits (bounded) until domain's certificate is served.
func (l *acmeLB) waitCertificate(domain string, ok func(acme.DomainStatus) bool) acme.DomainStatus {
	l.t.Helper()
	var st acme.DomainStatus
	for i := 0; i < 1200; i++ {
		st = l.domainStatus(domain)
		if st.State == "valid" && (ok == nil || ok(st)) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.t.Fatalf("no certificate for %s after 120s: %+v", domain, st)
	return st
}

// handshake connects to addr with SNI domain, verifying the chain against
// root, and returns the served leaf.
func handshake(t *testing.T, addr, domain string, root []byte) (*x509.Certificate, tls.ConnectionState) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(root) {
		t.Fatal("Pebble's root is no PEM")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: domain, RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS handshake with %s for %s: %v", addr, domain, err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0], st
}

// curlWithRoot fetches path from the LB by domain with a real curl that
// trusts only Pebble's root.
func curlWithRoot(t *testing.T, tlsAddr, domain, path string, root []byte) string {
	t.Helper()
	rootFile := filepath.Join(t.TempDir(), "pebble-root.pem")
	if err := os.WriteFile(rootFile, root, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(tlsAddr)
	host, _, _ := net.SplitHostPort(tlsAddr)
	out, err := exec.Command("curl", "-sS", "--max-time", "10", "--cacert", rootFile,
		"--resolve", domain+":"+port+":"+host, "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}",
		"https://"+domain+":"+port+path).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	return string(out)
}

func TestACMEIssuanceHTTP01(t *testing.T) {
	testACMEIssuance(t, "http-01")
}

func TestACMEIssuanceTLSALPN01(t *testing.T) {
	testACMEIssuance(t, "tls-alpn-01")
}

// testACMEIssuance: the LB gets a certificate from Pebble by one challenge
// type, serves it to a handshake naming the domain and to curl, and keeps
// redirecting plain HTTP that is not a challenge.
func testACMEIssuance(t *testing.T, challenge string) {
	nodes := startNodes(t, 1)
	httpPort, tlsPort := pebbletest.FreePort(t), pebbletest.FreePort(t)
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
	lb := startACMELB(t, acmeYAML(nodes, "127.0.0.1", httpPort, tlsPort, ca, t.TempDir(), []string{acmeDomain}, challenge), 0)
	st := lb.waitCertificate(acmeDomain, nil)
	if st.Obtained != 1 || st.LastError != "" || st.NotAfter.Before(time.Now().Add(80*24*time.Hour)) || st.NextAttempt.IsZero() {
		t.Errorf("status = %+v, want one certificate obtained, valid ~90 days, no error, a next attempt", st)
	}
	root := ca.IssuerRoot(t)
	leaf, cs := handshake(t, lb.tlsAddr, acmeDomain, root)
	if fmt.Sprintf("%x", leaf.SerialNumber) != st.Serial || leaf.DNSNames[0] != acmeDomain {
		t.Errorf("served %v serial %x, status says %s", leaf.DNSNames, leaf.SerialNumber, st.Serial)
	}
	if cs.NegotiatedProtocol == acme.ALPNProtocol {
		t.Errorf("a browser handshake negotiated %s", acme.ALPNProtocol)
	}
	if got := curlWithRoot(t, lb.tlsAddr, acmeDomain, "/login", root); got != "200 0" {
		t.Errorf("curl https://%s/login = %q, want \"200 0\" (status, verify result)", acmeDomain, got)
	}
	s := lb.d.Snapshot().ACME
	if s.ChallengeRequests == 0 || s.ChallengesAnswered == 0 {
		t.Errorf("challenges requested %d, answered %d; want both > 0", s.ChallengeRequests, s.ChallengesAnswered)
	}
	metrics := httpGet(t, "http://"+lb.d.AdminAddr()+"/metrics")
	expiry, _ := strconv.ParseFloat(strings.TrimPrefix(grepLines(metrics, `mosparo_lb_acme_certificate_expiry_seconds{domain="`+acmeDomain+`"} `),
		`mosparo_lb_acme_certificate_expiry_seconds{domain="`+acmeDomain+`"} `), 64)
	if int64(expiry) != st.NotAfter.Unix() || !strings.Contains(metrics, `mosparo_lb_acme_certificates_obtained_total{domain="`+acmeDomain+`"} 1`) {
		t.Errorf("/metrics lacks the certificate's expiry and order count:\n%s", grepLines(metrics, "acme"))
	}
	// Plain HTTP that is not a challenge still redirects.
	code, loc := plainGet(t, lb.httpAddr, acmeDomain, "/login")
	if code != 308 || loc != "https://"+acmeDomain+"/login" {
		t.Errorf("GET http://%s/login = %d %q, want 308 to https", acmeDomain, code, loc)
	}
}

// plainGet sends GET path with Host host to addr.
func plainGet(t *testing.T, addr, host, path string) (int, string) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetHost(host)
	req.UseHostHeader = true
	c := &fasthttp.Client{}
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode(), string(resp.Header.Peek("Location"))
}

// httpGet returns the body of a GET.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &fasthttp.Client{}
	code, body, err := c.GetTimeout(nil, url, 5*time.Second)
	if err != nil || code != 200 {
		t.Fatalf("GET %s = %d, %v", url, code, err)
	}
	return string(body)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestACMERenewal: with Pebble's short validity the LB renews in the
// background and serves the new certificate; status shows the new expiry.
func TestACMERenewal(t *testing.T) {
	nodes := startNodes(t, 1)
	httpPort, tlsPort := pebbletest.FreePort(t), pebbletest.FreePort(t)
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort, Validity: 30 * time.Second})
	lb := startACMELB(t, acmeYAML(nodes, "127.0.0.1", httpPort, tlsPort, ca, t.TempDir(), []string{acmeDomain}, "http-01, tls-alpn-01"), time.Second)
	first := lb.waitCertificate(acmeDomain, nil)
	if !first.NextAttempt.Before(first.NotAfter) {
		t.Errorf("next attempt %v is not before expiry %v", first.NextAttempt, first.NotAfter)
	}
	renewed := lb.waitCertificate(acmeDomain, func(s acme.DomainStatus) bool { return s.Serial != first.Serial })
	if !renewed.NotAfter.After(first.NotAfter) || renewed.Obtained < 2 {
		t.Errorf("after renewal: %+v, want a later expiry than %v and two orders", renewed, first.NotAfter)
	}
	leaf, _ := handshake(t, lb.tlsAddr, acmeDomain, ca.IssuerRoot(t))
	if got := fmt.Sprintf("%x", leaf.SerialNumber); got != renewed.Serial && leaf.NotAfter.Before(renewed.NotAfter) {
		t.Errorf("handshake serves serial %s, want the renewed %s", got, renewed.Serial)
	}
}
