package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"golang.org/x/crypto/ocsp"
)

// ocspFixture is an issuer, a leaf it signed and the issuer's key.
type ocspFixture struct {
	issuer, leaf *x509.Certificate
	key          *ecdsa.PrivateKey
}

func newOCSPFixture(t testing.TB) ocspFixture {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := x509.ParseCertificate(der)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lt := &x509.Certificate{SerialNumber: big.NewInt(4242), DNSNames: []string{"lb.mosparo.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err = x509.CreateCertificate(rand.Reader, lt, issuer, &leafKey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return ocspFixture{issuer: issuer, leaf: leaf, key: key}
}

// cert is what certmagic's cache would hold for the leaf with staple.
func (f ocspFixture) cert(staple []byte, chain bool) *certmagic.Certificate {
	c := &certmagic.Certificate{Names: []string{"lb.mosparo.test"}}
	c.Leaf = f.leaf
	c.Certificate = tls.Certificate{Certificate: [][]byte{f.leaf.Raw}, Leaf: f.leaf, OCSPStaple: staple}
	if chain {
		c.Certificate.Certificate = append(c.Certificate.Certificate, f.issuer.Raw)
	}
	return c
}

func (f ocspFixture) response(t testing.TB, status int, serial *big.Int, next time.Time, signer *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := ocsp.CreateResponse(f.issuer, f.issuer, ocsp.Response{Status: status, SerialNumber: serial,
		ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: next, RevokedAt: time.Now().Add(-time.Hour)}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestStapleCheck: only a staple a browser would accept is served;
// certmagic checks the signature but not the serial, and keeps serving a
// staple past its NextUpdate when the responder stops answering.
func TestStapleCheck(t *testing.T) {
	f := newOCSPFixture(t)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	soon, later := time.Now().Add(time.Minute), time.Now().Add(time.Hour)
	good := f.response(t, ocsp.Good, f.leaf.SerialNumber, later, f.key)
	for _, tc := range []struct {
		name   string
		staple []byte
		chain  bool
		at     time.Time
		ok     bool
	}{
		{"none", nil, true, time.Now(), true},
		{"good", good, true, time.Now(), true},
		{"good until next update", f.response(t, ocsp.Good, f.leaf.SerialNumber, soon, f.key), true, soon.Add(-time.Second), true},
		{"past next update", f.response(t, ocsp.Good, f.leaf.SerialNumber, soon, f.key), true, soon, false},
		{"no issuer in chain", good, false, time.Now(), false},
		{"revoked", f.response(t, ocsp.Revoked, f.leaf.SerialNumber, later, f.key), true, time.Now(), false},
		{"unknown", f.response(t, ocsp.Unknown, f.leaf.SerialNumber, later, f.key), true, time.Now(), false},
		{"wrong serial", f.response(t, ocsp.Good, big.NewInt(4243), later, f.key), true, time.Now(), false},
		{"wrong signer", f.response(t, ocsp.Good, f.leaf.SerialNumber, later, stranger), true, time.Now(), false},
		{"truncated", good[:len(good)/2], true, time.Now(), false},
		{"garbage", []byte("<html>not ocsp</html>"), true, time.Now(), false},
		{"zeros", make([]byte, 1<<16), true, time.Now(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s stapleChecker
			c := f.cert(tc.staple, tc.chain)
			err, _ := s.check(c, tc.at)
			if (err == nil) != tc.ok {
				t.Errorf("check(%s) = %v, want ok %v", tc.name, err, tc.ok)
			}
			// The verdict is kept: asking again gives the same answer and
			// does not count as a first verdict.
			again, first := s.check(c, tc.at)
			if (again == nil) != tc.ok || first {
				t.Errorf("second check(%s) = %v, first %v", tc.name, again, first)
			}
		})
	}
}

// TestStapleCheckBounded: refreshed staples do not grow the verdicts
// without bound.
func TestStapleCheckBounded(t *testing.T) {
	f := newOCSPFixture(t)
	var s stapleChecker
	staple := f.response(t, ocsp.Good, f.leaf.SerialNumber, time.Now().Add(time.Hour), f.key)
	for i := 0; i < 3*maxVerdicts; i++ {
		if err, _ := s.check(f.cert(append([]byte(nil), staple...), true), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.count.Load(); n > maxVerdicts {
		t.Errorf("%d verdicts kept, want at most %d", n, maxVerdicts)
	}
	if err, _ := s.check(f.cert(staple, true), time.Now().Add(2*time.Hour)); !errors.Is(err, errStapleExpired) {
		t.Errorf("check past next update = %v, want %v", err, errStapleExpired)
	}
}

// FuzzStapleCheck: whatever a responder sends as a staple, checking it
// never panics, and only a Good answer for the leaf's serial passes.
func FuzzStapleCheck(f *testing.F) {
	fx := newOCSPFixture(f)
	good := fx.response(f, ocsp.Good, fx.leaf.SerialNumber, time.Now().Add(time.Hour), fx.key)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(fx.response(f, ocsp.Revoked, fx.leaf.SerialNumber, time.Now().Add(time.Hour), fx.key))
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}) // a length claiming 4 GiB
	f.Fuzz(func(t *testing.T, staple []byte) {
		if len(staple) == 0 {
			return
		}
		var s stapleChecker
		if err, _ := s.check(fx.cert(staple, true), time.Now()); err == nil {
			r, perr := ocsp.ParseResponseForCert(staple, fx.leaf, fx.issuer)
			if perr != nil || r.Status != ocsp.Good {
				t.Errorf("staple %x passed: %v %v", staple, perr, r)
			}
		}
	})
}
