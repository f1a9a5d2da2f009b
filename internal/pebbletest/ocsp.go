package pebbletest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSPMode is what an OCSPResponder answers.
type OCSPMode int

// The responder's answers: a well-behaved one, then the hostile ones.
const (
	OCSPGood        OCSPMode = iota // signed by the issuer, Good (Revoked for serials passed to Revoke)
	OCSPDown                        // the connection is closed without an answer
	OCSPTruncated                   // a Good response cut in half
	OCSPWrongSigner                 // Good, signed by a key that is not the issuer's
	OCSPWrongSerial                 // Good, signed by the issuer, for another serial
	OCSPHuge                        // 8 MiB of zeros
	OCSPHang                        // never answers (until the test ends)
)

// OCSPResponder is an OCSP responder (RFC 6960) on loopback that signs with
// Pebble's intermediate; its URL goes into Options.OCSPResponderURL before
// Pebble starts, its issuer is set with SetIssuer once Pebble runs.
type OCSPResponder struct {
	// URL is the responder's address, for certificates' AIA extension.
	URL string
	// Validity is how long a response is fresh (NextUpdate - ThisUpdate).
	Validity time.Duration

	mu       sync.Mutex
	issuer   *x509.Certificate
	key      crypto.Signer
	mode     OCSPMode
	revoked  map[string]bool
	requests int
	stop     chan struct{}
}

// StartOCSPResponder serves OCSP on a loopback port until the test ends.
func StartOCSPResponder(t testing.TB, validity time.Duration) *OCSPResponder {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &OCSPResponder{URL: "http://" + l.Addr().String() + "/", Validity: validity, revoked: map[string]bool{}, stop: make(chan struct{})}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	t.Cleanup(func() {
		close(r.stop)
		srv.Close()
		<-done
	})
	return r
}

// SetIssuer installs the issuing certificate and key (PEM, as Intermediate
// returns them).
func (r *OCSPResponder) SetIssuer(t testing.TB, certPEM, keyPEM []byte) {
	t.Helper()
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		t.Fatal("pebbletest: intermediate certificate or key is no PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
				t.Fatalf("pebbletest: intermediate key: %v", err)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issuer, r.key = cert, key.(crypto.Signer)
}

// SetMode switches what the responder answers from now on.
func (r *OCSPResponder) SetMode(m OCSPMode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode = m
}

// Revoke makes the Good mode answer Revoked for serial.
func (r *OCSPResponder) Revoke(serial *big.Int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[serial.String()] = true
}

// Requests is how many OCSP requests arrived.
func (r *OCSPResponder) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// ServeHTTP answers an OCSP request by POST (and GET with the request in
// the path is not needed: certmagic POSTs).
func (r *OCSPResponder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	r.mu.Lock()
	r.requests++
	mode, issuer, key := r.mode, r.issuer, r.key
	revoked := false
	r.mu.Unlock()
	if err != nil || issuer == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	oreq, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	revoked = r.revoked[oreq.SerialNumber.String()]
	r.mu.Unlock()
	switch mode {
	case OCSPDown:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	case OCSPHang:
		select {
		case <-r.stop:
		case <-req.Context().Done():
		}
		return
	case OCSPHuge:
		w.Header().Set("Content-Type", "application/ocsp-response")
		zeros := make([]byte, 64<<10)
		for i := 0; i < 128; i++ {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
		return
	}
	now := time.Now().Truncate(time.Second)
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: oreq.SerialNumber,
		ThisUpdate: now.Add(-time.Second), NextUpdate: now.Add(r.Validity)}
	if revoked {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, now.Add(-time.Minute), ocsp.KeyCompromise
	}
	signer := key
	switch mode {
	case OCSPWrongSerial:
		tmpl.SerialNumber = new(big.Int).Add(oreq.SerialNumber, big.NewInt(1))
	case OCSPWrongSigner:
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		signer = other
	}
	der, err := ocsp.CreateResponse(issuer, issuer, tmpl, signer)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if mode == OCSPTruncated {
		der = der[:len(der)/2]
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}
