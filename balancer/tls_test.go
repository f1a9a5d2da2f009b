package balancer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// writeCert writes a self-signed certificate for name into dir.
func writeCert(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSWithTwoSNICertificates(t *testing.T) {
	dir := t.TempDir()
	ca, ka := writeCert(t, dir, "a.example")
	cb, kb := writeCert(t, dir, "b.example")
	n := startEcho(t, "n1")
	cfg := testConfig(t, fmt.Sprintf(`
listen:
  - address: "127.0.0.1:0"
    tls: {certificates: [{cert: %q, key: %q}, {cert: %q, key: %q}]}
`, ca, ka, cb, kb))
	_, addr := startLB(t, cfg, nodesOf(n))
	for _, tt := range []struct{ sni, want string }{{"a.example", "a.example"}, {"b.example", "b.example"}, {"other.example", "a.example"}} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: tt.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("dial with SNI %s: %v", tt.sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		conn.Close()
		if got != tt.want {
			t.Errorf("SNI %s: certificate %s, want %s", tt.sni, got, tt.want)
		}
	}
	_, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Error("a TLS 1.1 handshake succeeded; TLS 1.2 is the minimum")
	}
	c := &fasthttp.Client{TLSConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "b.example"}}
	_, e := func() (int, echoed) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("https://" + addr + "/login")
		req.Header.SetHost("b.example")
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		var e echoed
		decode(t, resp.Body(), &e)
		return resp.StatusCode(), e
	}()
	if got := e.Headers["X-Forwarded-Proto"]; len(got) != 1 || got[0] != "https" {
		t.Errorf("X-Forwarded-Proto over TLS = %q, want https", got)
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	cfg := testConfig(t, `
listen: [{address: "127.0.0.1:0", redirect_https: true, redirect_port: 8443}]
`)
	_, addr := startLB(t, cfg, nil)
	resp, _ := doRaw(t, addr, "POST /login?x=1 HTTP/1.1\r\nHost: mosparo.example:80\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode() != 308 {
		t.Errorf("status = %d, want 308", resp.StatusCode())
	}
	if got, want := string(resp.Header.Peek("Location")), "https://mosparo.example:8443/login?x=1"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
}
