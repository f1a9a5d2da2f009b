// Package pebbletest runs Let's Encrypt's test ACME server, Pebble, with
// pebble-challtestsrv as its DNS, on loopback for one test: built from the
// Go module proxy into a cache directory on first use, started with a TLS
// certificate made here, killed when the test ends.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Version is the Pebble module the tests run.
const Version = "v2.10.3"

// Options configure one Pebble.
type Options struct {
	// HTTPPort and TLSPort are where Pebble's validation authority sends
	// http-01 and tls-alpn-01 requests (the LB's listeners). Required.
	HTTPPort, TLSPort int
	// ResolveTo is the address every name resolves to. Default 127.0.0.1.
	ResolveTo string
	// Validity of issued certificates. Default 90 days.
	Validity time.Duration
	// OCSPResponderURL, when set, is written into issued certificates
	// (Pebble itself answers no OCSP).
	OCSPResponderURL string
	// KeyAlgorithm of Pebble's CA keys: "ecdsa" (default) or "rsa", which
	// an OCSPResponder needs (Pebble serves only RSA intermediate keys).
	KeyAlgorithm string
}

// CA is a running Pebble.
type CA struct {
	// Directory is the ACME directory URL.
	Directory string
	// TrustFile is a PEM file of the root of Pebble's own HTTPS
	// certificate (what listen[].tls.acme.ca_root names).
	TrustFile  string
	management string
}

var buildMu sync.Mutex

// binaries returns the paths of pebble and pebble-challtestsrv, building
// them into the user cache directory when missing.
func binaries(t testing.TB) (pebble, challtest string) {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "mosparo-lb", "pebble-"+Version)
	pebble, challtest = filepath.Join(dir, "pebble"), filepath.Join(dir, "pebble-challtestsrv")
	if fileExists(pebble) && fileExists(challtest) {
		return pebble, challtest
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "install",
		"github.com/letsencrypt/pebble/v2/cmd/pebble@"+Version,
		"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@"+Version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building Pebble %s: %v\n%s", Version, err, out)
	}
	return pebble, challtest
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Start runs Pebble and its DNS until the test ends.
func Start(t testing.TB, opts Options) *CA {
	t.Helper()
	if opts.HTTPPort == 0 || opts.TLSPort == 0 {
		t.Fatal("pebbletest: HTTPPort and TLSPort are required")
	}
	if opts.ResolveTo == "" {
		opts.ResolveTo = "127.0.0.1"
	}
	if opts.KeyAlgorithm == "" {
		opts.KeyAlgorithm = "ecdsa"
	}
	if opts.Validity == 0 {
		opts.Validity = 90 * 24 * time.Hour
	}
	pebbleBin, challBin := binaries(t)
	dir := t.TempDir()
	certFile, keyFile, trustFile := writeServerCert(t, dir)
	// The caller's ports are not bound yet: FreePort could hand them out
	// again, and the LB's listener then collides with challtestsrv.
	taken := []int{opts.HTTPPort, opts.TLSPort}
	port := func() string {
		for {
			p := FreePort(t)
			if !slices.Contains(taken, p) {
				taken = append(taken, p)
				return "127.0.0.1:" + strconv.Itoa(p)
			}
		}
	}
	dnsAddr := port()
	start(t, "challtestsrv", challBin, nil,
		"-dnsserver", dnsAddr, "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-management", port(), "-defaultIPv4", opts.ResolveTo, "-defaultIPv6", "")
	listen := port()
	mgmt := port()
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": opts.HTTPPort, "tlsPort": opts.TLSPort,
		"ocspResponderURL": opts.OCSPResponderURL, "externalAccountBindingRequired": false,
		"retryAfter":   map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm": opts.KeyAlgorithm,
		"profiles":     map[string]any{"default": map[string]any{"description": "test", "validityPeriod": int(opts.Validity / time.Second)}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, "pebble", pebbleBin, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		"-config", cfgFile, "-dnsserver", dnsAddr, "-strict=false")
	ca := &CA{Directory: "https://" + listen + "/dir", TrustFile: trustFile, management: "https://" + mgmt}
	ca.waitReady(t)
	return ca
}

// start runs a process until the test ends, its output in the test log
// when the test fails.
func start(t testing.TB, name, bin string, env []string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	var mu sync.Mutex
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	w := lockedWriter{&mu, &out}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("%s output:\n%s", name, out.String())
			mu.Unlock()
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (ca *CA) client(t testing.TB) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(ca.TrustFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

func (ca *CA) waitReady(t testing.TB) {
	t.Helper()
	c := ca.client(t)
	for i := 0; i < 300; i++ {
		resp, err := c.Get(ca.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("Pebble at %s did not answer", ca.Directory)
}

// IssuerRoot is the PEM root Pebble signs certificates with (a new one
// each start), from its management API: what a client trusts.
func (ca *CA) IssuerRoot(t testing.TB) []byte {
	t.Helper()
	return ca.get(t, "/roots/0")
}

// Intermediate returns Pebble's issuing certificate and key (PEM).
func (ca *CA) Intermediate(t testing.TB) (cert, key []byte) {
	t.Helper()
	return ca.get(t, "/intermediates/0"), ca.get(t, "/intermediate-keys/0")
}

func (ca *CA) get(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := ca.client(t).Get(ca.management + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return b
}

// FreePort returns a loopback TCP port free at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeServerCert makes a root and a certificate for 127.0.0.1 and
// localhost signed by it, for Pebble's HTTPS listeners.
func writeServerCert(t testing.TB, dir string) (certFile, keyFile, trustFile string) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebbletest root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, rootCert, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile, trustFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "root.pem")
	for f, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: leafDER}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER},
		trustFile: {Type: "CERTIFICATE", Bytes: rootDER}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, trustFile
}

// String names the CA in test logs.
func (ca *CA) String() string { return fmt.Sprintf("pebble %s", ca.Directory) }
