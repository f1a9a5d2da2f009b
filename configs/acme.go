package configs

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"reflect"
	"strings"
)

// ACME is a listener's automatically managed certificates (issue 14): the
// LB obtains and renews them from an ACME CA in the background. For its
// domains they win over the listener's certificate files.
type ACME struct {
	// Domains are the DNS names to hold certificates for, one certificate
	// each. Wildcards need the dns-01 challenge and are refused. Required.
	Domains []string `yaml:"domains"`
	// Email is the ACME account's contact, for the CA's expiry notices.
	// Default: none.
	Email string `yaml:"email"`
	// CA is the ACME directory URL (https). Default: Let's Encrypt production.
	CA string `yaml:"ca"`
	// CARoot is a PEM file of the root(s) the CA's own HTTPS certificate
	// chains to, for a private CA (step-ca, Pebble). Default: the system roots.
	CARoot string `yaml:"ca_root"`
	// Challenges the CA may use: http-01 (on a plain-HTTP listener, port 80)
	// and tls-alpn-01 (on this listener, port 443). Default: both.
	Challenges []Challenge `yaml:"challenges"`
}

// Challenge is an ACME challenge type (RFC 8555 section 8.3, RFC 8737).
type Challenge string

// The challenges the LB answers itself.
const (
	ChallengeHTTP01    Challenge = "http-01"
	ChallengeTLSALPN01 Challenge = "tls-alpn-01"
)

// Challenges are the valid listen[].tls.acme.challenges values.
var Challenges = []Challenge{ChallengeHTTP01, ChallengeTLSALPN01}

// LetsEncryptCA is the default ACME directory.
const LetsEncryptCA = "https://acme-v02.api.letsencrypt.org/directory"

// ACMEStorage is where ACME certificates, keys, the account, challenge
// answers and locks are kept (the top-level acme: section). Both LBs of an
// HA pair must share it: the backup then holds the master's certificate and
// answers challenges for the master's orders.
type ACMEStorage struct {
	// StorageDir is the directory used when discovery.consul is not set;
	// put it on shared storage for an HA pair. Default /var/lib/mosparo-lb.
	StorageDir string `yaml:"storage_dir"`
	// ConsulPrefix is the Consul KV prefix used when discovery.consul is
	// set. Default mosparo-lb/acme.
	ConsulPrefix string `yaml:"consul_prefix"`
}

// ACMESettings is the one ACME account every listener shares (validation
// makes the listeners agree) and the union of their domains, in listen:
// order; nil when no listener has tls.acme.
func (c *Config) ACMESettings() *ACME {
	var out *ACME
	seen := map[string]bool{}
	for _, l := range c.Listen {
		if l.TLS == nil || l.TLS.ACME == nil {
			continue
		}
		a := l.TLS.ACME
		if out == nil {
			out = &ACME{Email: a.Email, CA: a.CA, CARoot: a.CARoot, Challenges: a.Challenges}
		}
		for _, d := range a.Domains {
			d = strings.ToLower(d)
			if !seen[d] {
				seen[d] = true
				out.Domains = append(out.Domains, d)
			}
		}
	}
	return out
}

func (s *ACMEStorage) defaults() {
	if s.StorageDir == "" {
		s.StorageDir = "/var/lib/mosparo-lb"
	}
	if s.ConsulPrefix == "" {
		s.ConsulPrefix = "mosparo-lb/acme"
	}
}

func (a *ACME) defaults() {
	if a.CA == "" {
		a.CA = LetsEncryptCA
	}
	if a.Challenges == nil {
		a.Challenges = []Challenge{ChallengeHTTP01, ChallengeTLSALPN01}
	}
}

// maxACMEDomains bounds one listener's list: each domain is an order and
// a background job.
const maxACMEDomains = 100

func (a *ACME) validate(v *validator, p string) {
	if len(a.Domains) == 0 {
		v.Errorf(p+".domains", "lists no domain; name the DNS names to get certificates for")
	}
	if len(a.Domains) > maxACMEDomains {
		v.Errorf(p+".domains", "lists %d domains; at most %d", len(a.Domains), maxACMEDomains)
	}
	seen := map[string]bool{}
	for i, d := range a.Domains {
		dp := fmt.Sprintf("%s.domains[%d]", p, i)
		if err := acmeDomain(d); err != nil {
			v.Errorf(dp, "%v", err)
		} else if seen[strings.ToLower(d)] {
			v.Errorf(dp, "%s is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
	}
	if e := a.Email; e != "" {
		at := strings.IndexByte(e, '@')
		if len(e) > 254 || at < 1 || at != strings.LastIndexByte(e, '@') || at == len(e)-1 || strings.ContainsAny(e, " \t\r\n<>,;:\"\\") {
			v.Errorf(p+".email", "%q is not an email address like ops@example.org", e)
		}
	}
	if u, err := url.Parse(a.CA); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		v.Errorf(p+".ca", "%q is not an https:// ACME directory URL like %s", a.CA, LetsEncryptCA)
	}
	if len(a.Challenges) == 0 {
		v.Errorf(p+".challenges", "allows no challenge; use http-01, tls-alpn-01 or both")
	}
	got := map[Challenge]bool{}
	for i, c := range a.Challenges {
		cp := fmt.Sprintf("%s.challenges[%d]", p, i)
		oneOf(v, cp, c, Challenges)
		if got[c] {
			v.Errorf(cp, "%s is listed twice", c)
		}
		got[c] = true
	}
}

// acmeDomain checks a name a CA can validate by http-01 or tls-alpn-01.
func acmeDomain(d string) error {
	switch {
	case strings.HasPrefix(d, "*."):
		return fmt.Errorf("%q is a wildcard, which needs the dns-01 challenge; list the names instead", d)
	case d == "" || len(d) > 253:
		return fmt.Errorf("%q is not a DNS name (1..253 characters)", d)
	}
	if _, err := netip.ParseAddr(strings.Trim(d, "[]")); err == nil {
		return fmt.Errorf("%q is an IP address; ACME certificates here are for DNS names", d)
	}
	if !strings.Contains(d, ".") || strings.HasSuffix(d, ".") || !validHost(d) || strings.Contains(d, ":") {
		return fmt.Errorf("%q is not a fully qualified DNS name like mosparo.example.org", d)
	}
	return nil
}

// validateACME checks what spans listeners: one ACME account (the same
// email, ca, ca_root and challenges everywhere), a plain listener for an
// http-01-only setup, and where the certificates are kept.
func (c *Config) validateACME(v *validator) {
	var first *ACME
	firstAt := 0
	plain := false
	for i, l := range c.Listen {
		if l.TLS == nil {
			plain = true
			continue
		}
		a := l.TLS.ACME
		if a == nil {
			continue
		}
		p := fmt.Sprintf("listen[%d].tls.acme", i)
		if first == nil {
			first, firstAt = a, i
			continue
		}
		if a.Email != first.Email || a.CA != first.CA || a.CARoot != first.CARoot || !reflect.DeepEqual(a.Challenges, first.Challenges) {
			v.Errorf(p, "names another email, ca, ca_root or challenges than listen[%d].tls.acme; the LB has one ACME account, so they must agree", firstAt)
		}
	}
	if first == nil {
		return
	}
	if !plain && len(first.Challenges) == 1 && first.Challenges[0] == ChallengeHTTP01 {
		v.Errorf(fmt.Sprintf("listen[%d].tls.acme.challenges", firstAt), "http-01 is answered on a plain-HTTP listener and there is none; add one on port 80 or allow tls-alpn-01")
	}
	if c.Discovery.Consul == nil {
		if d := c.ACME.StorageDir; !path.IsAbs(d) || path.Clean(d) != strings.TrimSuffix(d, "/") && d != "/" {
			v.Errorf("acme.storage_dir", "must be an absolute, clean directory path like /var/lib/mosparo-lb; got %q", d)
		}
	} else if p := c.ACME.ConsulPrefix; strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || path.Clean(p) != p || strings.HasPrefix(p, "..") {
		v.Errorf("acme.consul_prefix", "must be a KV path without leading or trailing / or .. segments, like mosparo-lb/acme; got %q", p)
	}
}
