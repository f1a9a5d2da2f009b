package acme

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"golang.org/x/crypto/ocsp"
)

// OCSP stapling is certmagic's: it fetches a response when a certificate
// is loaded or obtained, keeps it in the storage (so the HA peer reuses
// it), refreshes it in the background halfway through its validity and
// renews a certificate whose response says Revoked. This file only closes
// the gaps found testing it against a hostile responder (ocsp_test.go in
// internal/daemon).

// ocspConfig is certmagic's OCSP configuration. A non-nil HTTPProxy makes
// certmagic use an HTTP client with a 30 s timeout instead of
// http.DefaultClient, which has none: a responder that accepts and never
// answers would otherwise stall the caching of a new certificate and the
// maintenance loop that also renews certificates. ProxyFromEnvironment is
// what the default client did.
func ocspConfig() certmagic.OCSPConfig {
	return certmagic.OCSPConfig{HTTPProxy: http.ProxyFromEnvironment}
}

// errStapleExpired: the staple's NextUpdate has passed (the responder has
// not answered since); certmagic would keep serving it.
var errStapleExpired = errors.New("acme: OCSP staple past its next update")

// stapleChecker decides whether a staple certmagic holds may be served:
// signed by the certificate's issuer, for this certificate's serial (which
// certmagic does not check), Good, and not past NextUpdate. Verdicts are
// kept per staple, so a handshake parses nothing.
type stapleChecker struct {
	by    sync.Map // stapleKey -> stapleVerdict
	count atomic.Int32
}

// stapleKey identifies a staple by its bytes' address: certmagic replaces
// a staple, never changes one in place.
type stapleKey struct {
	p *byte
	n int
}

type stapleVerdict struct {
	err        error
	nextUpdate time.Time // zero: none given (RFC 6960 section 2.4)
}

// maxVerdicts bounds the verdicts kept; refreshed staples leave old ones.
const maxVerdicts = 256

// check returns nil when c's staple may be served at now; first is true
// when the verdict was just made (the caller reports a rejection once).
func (s *stapleChecker) check(c *certmagic.Certificate, now time.Time) (err error, first bool) {
	staple := c.Certificate.OCSPStaple
	if len(staple) == 0 {
		return nil, false
	}
	key := stapleKey{&staple[0], len(staple)}
	v, ok := s.by.Load(key)
	if !ok {
		if s.count.Add(1) > maxVerdicts {
			s.by.Clear()
			s.count.Store(1)
		}
		v, _ = s.by.LoadOrStore(key, verifyStaple(c))
		first = true
	}
	verdict := v.(stapleVerdict)
	if verdict.err != nil {
		return verdict.err, first
	}
	if !verdict.nextUpdate.IsZero() && !now.Before(verdict.nextUpdate) {
		return errStapleExpired, false
	}
	return nil, false
}

func verifyStaple(c *certmagic.Certificate) stapleVerdict {
	chain := c.Certificate.Certificate
	if c.Leaf == nil || len(chain) < 2 {
		return stapleVerdict{err: errors.New("acme: OCSP staple without an issuer to check it against")}
	}
	issuer, err := x509.ParseCertificate(chain[1])
	if err != nil {
		return stapleVerdict{err: fmt.Errorf("acme: OCSP staple: issuer: %w", err)}
	}
	resp, err := ocsp.ParseResponseForCert(c.Certificate.OCSPStaple, c.Leaf, issuer)
	if err != nil {
		return stapleVerdict{err: fmt.Errorf("acme: OCSP staple rejected: %w", err)}
	}
	if resp.Status != ocsp.Good {
		return stapleVerdict{err: fmt.Errorf("acme: OCSP staple rejected: status %d", resp.Status)}
	}
	return stapleVerdict{nextUpdate: resp.NextUpdate}
}
