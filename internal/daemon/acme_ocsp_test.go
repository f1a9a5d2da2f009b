package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/acme"
	"github.com/mosparo-lb/mosparo-lb/internal/pebbletest"
	"golang.org/x/crypto/ocsp"
)

// ocspValidity is how long the test responder's answers are fresh:
// certmagic refreshes at half of it, the LB stops serving a staple past it.
const ocspValidity = 4 * time.Second

// stapledHandshake connects with SNI domain (Go's client always asks for
// a staple) and returns the leaf and the staple, nil when none came. A
// failed handshake fails the test: no responder may break TLS.
func stapledHandshake(t *testing.T, addr, domain string, pool *x509.CertPool) (*x509.Certificate, []byte) {
	t.Helper()
	var staple []byte
	var leaf *x509.Certificate
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{
		ServerName: domain, RootCAs: pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			staple, leaf = cs.OCSPResponse, cs.PeerCertificates[0]
			return nil
		},
	})
	if err != nil {
		t.Fatalf("TLS handshake with %s for %s: %v", addr, domain, err)
	}
	conn.Close()
	return leaf, staple
}

// adminACME is the acme part of the LB's /status as an operator reads it.
func adminACME(t *testing.T, l *acmeLB, domain string) acme.DomainStatus {
	t.Helper()
	var s struct {
		ACME *acme.Status `json:"acme"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+l.d.AdminAddr()+"/status")), &s); err != nil || s.ACME == nil {
		t.Fatalf("/status: %v, acme %v", err, s.ACME)
	}
	for _, d := range s.ACME.Domains {
		if d.Domain == domain {
			return d
		}
	}
	t.Fatalf("/status has no %s", domain)
	return acme.DomainStatus{}
}

// TestACMEOCSPStapling: Pebble names a responder on loopback that signs
// with Pebble's intermediate. The LB staples its Good answer (checked the
// way a browser would: signature, serial, status), refreshes it, shows it
// in /status; a responder that goes down, answers garbage, signs with the
// wrong key or for the wrong serial, sends 8 MiB or hangs leaves handshakes
// working without a staple and the failure in /status, and the LB staples
// again once it behaves; a Revoked answer makes the LB renew the
// certificate, whose Good staple it then serves.
func TestACMEOCSPStapling(t *testing.T) {
	nodes := startNodes(t, 1)
	httpPort, tlsPort := pebbletest.FreePort(t), pebbletest.FreePort(t)
	responder := pebbletest.StartOCSPResponder(t, ocspValidity)
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort, OCSPResponderURL: responder.URL, KeyAlgorithm: "rsa"})
	interPEM, interKey := ca.Intermediate(t)
	responder.SetIssuer(t, interPEM, interKey)
	block, _ := pem.Decode(interPEM)
	issuer, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.IssuerRoot(t))
	lb := startACMELB(t, acmeYAML(nodes, "127.0.0.1", httpPort, tlsPort, ca, t.TempDir(), []string{acmeDomain}, "http-01"), 500*time.Millisecond)
	lb.waitCertificate(acmeDomain, nil)

	// waitStaple handshakes (bounded) until ok(staple) and returns the
	// parsed staple, nil when none is wanted.
	waitStaple := func(what string, ok func(leaf *x509.Certificate, staple []byte) bool) (*x509.Certificate, *ocsp.Response) {
		t.Helper()
		for i := 0; i < 900; i++ {
			leaf, staple := stapledHandshake(t, lb.tlsAddr, acmeDomain, pool)
			if ok(leaf, staple) {
				if staple == nil {
					return leaf, nil
				}
				resp, err := ocsp.ParseResponseForCert(staple, leaf, issuer)
				if err != nil {
					t.Fatalf("%s: served staple does not verify: %v", what, err)
				}
				return leaf, resp
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: not reached after 90s (responder saw %d requests)", what, responder.Requests())
		return nil, nil
	}
	stapled := func(_ *x509.Certificate, s []byte) bool { return s != nil }
	unstapled := func(_ *x509.Certificate, s []byte) bool { return s == nil }

	leaf, first := waitStaple("first staple", stapled)
	if first.Status != ocsp.Good || first.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("staple status %d serial %x, want Good for %x", first.Status, first.SerialNumber, leaf.SerialNumber)
	}
	if st := adminACME(t, lb, acmeDomain); !st.OCSPStapled || st.OCSPError != "" {
		t.Errorf("/status with a staple: %+v, want ocsp_stapled and no ocsp_error", st)
	}
	if m := httpGet(t, "http://"+lb.d.AdminAddr()+"/metrics"); !strings.Contains(m, `mosparo_lb_acme_ocsp_stapled{domain="`+acmeDomain+`"} 1`) {
		t.Errorf("/metrics lacks the staple gauge:\n%s", grepLines(m, "acme"))
	}
	_, refreshed := waitStaple("refreshed staple", func(l *x509.Certificate, s []byte) bool {
		r, err := ocsp.ParseResponseForCert(s, l, issuer)
		return err == nil && r.ThisUpdate.After(first.ThisUpdate)
	})
	if !refreshed.NextUpdate.After(first.NextUpdate) {
		t.Errorf("refreshed staple's next update %v is not after %v", refreshed.NextUpdate, first.NextUpdate)
	}

	for _, tc := range []struct {
		name string
		mode pebbletest.OCSPMode
		want string // in ocsp_error
	}{
		{"down", pebbletest.OCSPDown, "EOF"},
		{"truncated DER", pebbletest.OCSPTruncated, "parsing OCSP response"},
		{"wrong signer", pebbletest.OCSPWrongSigner, "signature"},
		// certmagic staples it; the LB does not serve it (acme/ocsp.go).
		{"wrong serial", pebbletest.OCSPWrongSerial, "no response matching"},
		{"huge body", pebbletest.OCSPHuge, "parsing OCSP response"},
		// certmagic's default client has no timeout; the LB gives it one
		// (acme/ocsp.go), so the maintenance loop comes back after 30s.
		{"hangs", pebbletest.OCSPHang, "Timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			responder.SetMode(tc.mode)
			waitStaple(tc.name+": staple gone", unstapled)
			var st acme.DomainStatus
			for i := 0; i < 900; i++ {
				if st = adminACME(t, lb, acmeDomain); st.OCSPError != "" {
					break
				}
				stapledHandshake(t, lb.tlsAddr, acmeDomain, pool)
				time.Sleep(100 * time.Millisecond)
			}
			if st.OCSPStapled || !strings.Contains(st.OCSPError, tc.want) || st.State != "valid" {
				t.Errorf("/status with a %s responder: %+v, want valid, not stapled, an ocsp_error with %q", tc.name, st, tc.want)
			}
			responder.SetMode(pebbletest.OCSPGood)
			waitStaple(tc.name+": stapled again", stapled)
			if st := adminACME(t, lb, acmeDomain); !st.OCSPStapled || st.OCSPError != "" {
				t.Errorf("/status after recovery: %+v, want ocsp_stapled, no ocsp_error", st)
			}
		})
	}

	// Revoked: certmagic never staples it and orders a new certificate.
	before := adminACME(t, lb, acmeDomain)
	responder.Revoke(leaf.SerialNumber)
	newLeaf, resp := waitStaple("new certificate stapled", func(l *x509.Certificate, s []byte) bool {
		return s != nil && l.SerialNumber.Cmp(leaf.SerialNumber) != 0
	})
	if resp.Status != ocsp.Good || resp.SerialNumber.Cmp(newLeaf.SerialNumber) != 0 {
		t.Errorf("new certificate's staple: status %d serial %x, want Good for %x", resp.Status, resp.SerialNumber, newLeaf.SerialNumber)
	}
	if st := adminACME(t, lb, acmeDomain); st.Obtained <= before.Obtained || st.OCSPRevoked || !st.OCSPStapled {
		t.Errorf("/status after revocation: %+v, want one more order, stapled, no longer revoked", st)
	}
}
