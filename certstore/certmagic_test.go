package certstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// testIssuer signs any CSR with a CA of its own: certmagic's whole
// obtain path (locks, storage, cache) without an ACME server. Both LBs'
// issuers share one IssuerKey, as two LBs configured for one CA do.
type testIssuer struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	issued atomic.Int32
	serial atomic.Int64
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certstore test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testIssuer{ca: ca, caKey: key}
}

func (i *testIssuer) IssuerKey() string { return "certstore-test-ca" }

func (i *testIssuer) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	i.issued.Add(1)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1000 + i.serial.Add(1)), Subject: pkix.Name{CommonName: csr.DNSNames[0]},
		DNSNames: csr.DNSNames, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.ca, csr.PublicKey, i.caKey)
	if err != nil {
		return nil, err
	}
	return &certmagic.IssuedCertificate{Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// lbTLS is one LB's certmagic: its own cache and config on its own
// storage value.
func lbTLS(t *testing.T, storage certmagic.Storage, issuer certmagic.Issuer) *certmagic.Config {
	t.Helper()
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		Logger:           zap.NewNop(),
	})
	t.Cleanup(cache.Stop)
	cfg = certmagic.New(cache, certmagic.Config{
		Storage: storage,
		Issuers: []certmagic.Issuer{issuer},
		OCSP:    certmagic.OCSPConfig{DisableStapling: true},
		Logger:  zap.NewNop(),
	})
	return cfg
}

// Two LBs with their own certmagic on one Consul: the master obtains the
// certificate, the backup finds it in the shared storage and serves the
// same one without ordering (issue 14: "Two LBs, one VIP, one
// certificate").
func TestCertmagicSharesCertificate(t *testing.T) {
	const domain = "lb.example.test"
	for _, p := range consulPairs() {
		t.Run(p.name, func(t *testing.T) {
			pair := p.open(t)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			ca := newTestIssuer(t)
			master, backup := lbTLS(t, pair.lb1, ca), lbTLS(t, pair.lb2, ca)

			if err := master.ManageSync(ctx, []string{domain}); err != nil {
				t.Fatalf("master ManageSync = %v", err)
			}
			if n := ca.issued.Load(); n != 1 {
				t.Fatalf("master obtained %d certificates, want 1", n)
			}
			if err := backup.ManageSync(ctx, []string{domain}); err != nil {
				t.Fatalf("backup ManageSync = %v", err)
			}
			if n := ca.issued.Load(); n != 1 {
				t.Errorf("%d certificates obtained after the backup started, want the master's 1", n)
			}
			m, err := master.GetCertificate(&tls.ClientHelloInfo{ServerName: domain})
			if err != nil {
				t.Fatal(err)
			}
			b, err := backup.GetCertificate(&tls.ClientHelloInfo{ServerName: domain})
			if err != nil {
				t.Fatalf("backup GetCertificate = %v", err)
			}
			if m.Leaf == nil || b.Leaf == nil || m.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) != 0 {
				t.Errorf("master and backup serve different certificates")
			}
			keys, err := pair.lb2.List(ctx, certmagic.StorageKeys.CertsSitePrefix(ca.IssuerKey(), domain), false)
			if err != nil || len(keys) != 3 {
				t.Errorf("site assets in Consul = %q, %v, want certificate, key and metadata", keys, err)
			}
			// Both start at once for another name: the issuance lock lets
			// one order it; the other waits and then finds it stored.
			const other = "other.example.test"
			errs := make(chan error, 2)
			for _, cfg := range []*certmagic.Config{master, backup} {
				go func() { errs <- cfg.ManageSync(ctx, []string{other}) }()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("concurrent ManageSync = %v", err)
				}
			}
			if n := ca.issued.Load(); n != 2 {
				t.Errorf("%d certificates obtained for two names by two LBs at once, want 2", n)
			}
			// Nothing is left locked once both are done.
			if s := pair.sessions(t); len(s) != 0 {
				t.Errorf("sessions left = %v", s)
			}
		})
	}
}
