package balancer

import (
	"crypto/tls"
	"errors"
	"strings"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/valyala/fasthttp"
)

// ACME holds the managed certificates of listen[].tls.acme domains and
// answers an ACME CA's challenges (package acme; issue 14).
type ACME interface {
	// ServeHTTPChallenge answers a plain-HTTP request under
	// /.well-known/acme-challenge/ and returns true; false for any other
	// path. It must not keep ctx.
	ServeHTTPChallenge(ctx *fasthttp.RequestCtx) bool
	// Certificate returns the managed certificate for hello from memory,
	// nil for a name without one, or an error that refuses the handshake;
	// for a tls-alpn-01 hello (acme-tls/1 alone) the challenge certificate.
	Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// acmeALPN is the ALPN protocol of tls-alpn-01 validation (RFC 8737). It is
// offered on every TLS listener (their tls.Config outlives reloads); a
// listener without tls.acme refuses such handshakes.
const acmeALPN = "acme-tls/1"

var errNoACME = errors.New("balancer: no ACME on this listener")

// acmeDomains are, per listener index, the names its tls.acme manages;
// nil for a listener without.
func acmeDomains(ls []configs.Listener) []map[string]bool {
	out := make([]map[string]bool, len(ls))
	for i, l := range ls {
		if l.TLS == nil || l.TLS.ACME == nil {
			continue
		}
		out[i] = map[string]bool{}
		for _, d := range l.TLS.ACME.Domains {
			out[i][strings.ToLower(d)] = true
		}
	}
	return out
}

// acmeCertificate is the ACME part of a TLS listener's certificate choice:
// done reports that cert and err are the answer; otherwise the listener's
// files are chosen from.
func (rt *Runtime) acmeCertificate(index int, hello *tls.ClientHelloInfo) (cert *tls.Certificate, done bool, err error) {
	var domains map[string]bool
	if index < len(rt.acme) {
		domains = rt.acme[index]
	}
	challenge := len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeALPN
	if domains == nil || rt.deps.ACME == nil {
		if challenge {
			return nil, true, errNoACME
		}
		return nil, false, nil
	}
	if !challenge && !domains[strings.ToLower(hello.ServerName)] {
		return nil, false, nil
	}
	cert, err = rt.deps.ACME.Certificate(hello)
	if err != nil || cert != nil {
		return cert, true, err
	}
	return nil, false, nil
}

// serveACMEChallenge answers an http-01 request on a plain listener, ahead
// of redirect_https and routing; false when it is none or ACME is off.
func (rt *Runtime) serveACMEChallenge(ctx *fasthttp.RequestCtx) bool {
	return rt.deps.ACME != nil && rt.deps.ACME.ServeHTTPChallenge(ctx)
}

// acmeDefaultHost is the default_host of a listener with neither
// default_host nor certificate files: its first ACME domain.
func acmeDefaultHost(l configs.Listener) string {
	if l.TLS == nil || l.TLS.ACME == nil || len(l.TLS.ACME.Domains) == 0 {
		return ""
	}
	return l.TLS.ACME.Domains[0]
}
