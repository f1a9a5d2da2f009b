package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"go.uber.org/zap"
)

// ALPNProtocol is the ALPN protocol of tls-alpn-01 handshakes (RFC 8737).
const ALPNProtocol = "acme-tls/1"

// ErrNoChallenge refuses an acme-tls/1 handshake this LB has no answer
// for (no ACME here, or no active challenge for the name).
var ErrNoChallenge = errors.New("acme: no tls-alpn-01 challenge for this name")

// Options are what a Manager needs besides the configuration.
type Options struct {
	Logger *zap.Logger // nil logs nothing
	// Storage keeps certificates, keys, the account, challenge answers
	// and locks; both LBs of an HA pair must use the same. Required.
	Storage certmagic.Storage
	// HTTPPort and TLSPort are the ports of the LB's own plain and TLS
	// listeners: certmagic's solvers try to bind them, find them taken and
	// leave the answers to this package (the LB routes them here). 0 means
	// 80 and 443.
	HTTPPort, TLSPort int
	// RenewCheckInterval is how often certificates are checked for
	// renewal. Default certmagic's (10m); tests with short-lived
	// certificates shorten it.
	RenewCheckInterval time.Duration
	// OCSPCheckInterval is how often OCSP staples are refreshed. Default
	// certmagic's (1h).
	OCSPCheckInterval time.Duration
}

// Manager obtains and renews the certificates of one ACME account's
// domains and answers the CA's challenges. New prepares it without side
// effects; Run manages the certificates until its context ends. Its
// methods are safe for concurrent use and serve nothing (nil certificate,
// 404) while Run is not running.
type Manager struct {
	settings configs.ACME
	domains  map[string]bool
	roots    *x509.CertPool // nil: system roots
	opts     Options
	log      *zap.Logger
	status   *statusBook
	staples  stapleChecker

	magic  atomic.Pointer[certmagic.Config]
	cache  atomic.Pointer[certmagic.Cache]
	issuer atomic.Pointer[certmagic.ACMEIssuer]

	challengeRequests  atomic.Uint64
	challengesAnswered atomic.Uint64
}

// New prepares a manager for s (configs.Config.ACMESettings): it reads
// ca_root, starts nothing and touches no storage.
func New(s configs.ACME, opts Options) (*Manager, error) {
	if opts.Storage == nil {
		return nil, errors.New("acme: no storage")
	}
	if len(s.Domains) == 0 {
		return nil, errors.New("acme: no domains")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	m := &Manager{settings: s, domains: map[string]bool{}, opts: opts, log: opts.Logger}
	for _, d := range s.Domains {
		m.domains[strings.ToLower(d)] = true
	}
	if s.CARoot != "" {
		pem, err := os.ReadFile(s.CARoot)
		if err != nil {
			return nil, fmt.Errorf("acme: ca_root: %w", err)
		}
		m.roots = x509.NewCertPool()
		if !m.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme: ca_root %s holds no PEM certificate", s.CARoot)
		}
	}
	m.status = newStatusBook(s.Domains)
	return m, nil
}

// Domains are the managed names, lower-cased, in configuration order.
func (m *Manager) Domains() []string { return m.settings.Domains }

// Run manages the certificates until ctx ends: loads what the storage
// holds, obtains what is missing and renews in the background (certmagic's
// jitter, ARI windows and retries with backoff), refreshes OCSP staples.
// It returns nil once ctx is done and everything it started has stopped.
func (m *Manager) Run(ctx context.Context) error {
	// certmagic logs at Info what an operator wants to see (obtained,
	// renewed); the observer also reads its retry schedule (status.go).
	logger := zap.New(&retryObserver{Core: m.log.Core(), book: m.status}).Named("certmagic")
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: m.opts.RenewCheckInterval,
		OCSPCheckInterval:  m.opts.OCSPCheckInterval,
		Logger:             logger,
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage: m.opts.Storage,
		Logger:  logger,
		OnEvent: m.status.onEvent,
		OCSP:    ocspConfig(),
	})
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      m.settings.CA,
		Email:                   m.settings.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    !m.allows(configs.ChallengeHTTP01),
		DisableTLSALPNChallenge: !m.allows(configs.ChallengeTLSALPN01),
		TrustedRoots:            m.roots,
		AltHTTPPort:             portOr(m.opts.HTTPPort, 80),
		AltTLSALPNPort:          portOr(m.opts.TLSPort, 443),
		Logger:                  logger,
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	m.cache.Store(cache)
	m.magic.Store(magic)
	m.issuer.Store(issuer)
	mctx, cancel := context.WithCancel(ctx)
	err := magic.ManageAsync(mctx, m.settings.Domains)
	if err == nil {
		<-ctx.Done()
	}
	cancel()
	m.issuer.Store(nil)
	m.magic.Store(nil)
	m.cache.Store(nil)
	cache.Stop()
	// A storage with locks of its own (Consul sessions) releases what it
	// still holds, so the peer need not wait for a TTL.
	if c, ok := m.opts.Storage.(interface{ Close(context.Context) error }); ok {
		cctx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if cerr := c.Close(cctx); cerr != nil {
			m.log.Warn("releasing storage locks", zap.Error(cerr))
		}
		cancelClose()
	}
	if err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	return nil
}

func (m *Manager) allows(c configs.Challenge) bool {
	for _, x := range m.settings.Challenges {
		if x == c {
			return true
		}
	}
	return false
}

// Certificate returns the managed certificate for the client's SNI from
// memory, or nil when the name is not managed here or has no certificate
// yet (the listener's files then serve). A tls-alpn-01 handshake gets the
// challenge certificate of an order this LB or its peer started, or
// ErrNoChallenge. It never waits on the CA.
func (m *Manager) Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if IsALPNChallenge(hello) {
		magic := m.magic.Load()
		if _, ok := challengeHost([]byte(hello.ServerName)); !ok || magic == nil || !m.allows(configs.ChallengeTLSALPN01) {
			return nil, ErrNoChallenge
		}
		m.challengeRequests.Add(1)
		// certmagic answers a single-protocol acme-tls/1 hello with a
		// ServerName from its challenge memory or the shared storage only.
		cert, err := magic.GetCertificate(hello)
		if err != nil || cert == nil {
			return nil, ErrNoChallenge
		}
		m.challengesAnswered.Add(1)
		return cert, nil
	}
	cache := m.cache.Load()
	name := strings.ToLower(hello.ServerName)
	if cache == nil || !m.domains[name] {
		return nil, nil
	}
	certs := cache.AllMatchingCertificates(name)
	pick := -1
	for i := range certs {
		if hello.SupportsCertificate(&certs[i].Certificate) == nil {
			pick = i
			break
		}
	}
	if pick < 0 && len(certs) > 0 {
		pick = 0
	}
	if pick < 0 {
		return nil, nil
	}
	// certs are copies: dropping a staple here leaves certmagic's cache alone.
	c := &certs[pick]
	if err, first := m.staples.check(c, time.Now()); err != nil {
		if first {
			m.status.ocspRejected(c.Names, err)
		}
		c.Certificate.OCSPStaple = nil
	}
	return &c.Certificate, nil
}

// IsALPNChallenge reports a tls-alpn-01 validation handshake: the CA
// offers acme-tls/1 and nothing else (RFC 8737 section 3).
func IsALPNChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProtocol
}

func portOr(p, def int) int {
	if p <= 0 {
		return def
	}
	return p
}

// ListenerPort is the port of a listen: address, 0 when it has none.
func ListenerPort(address string) int {
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0
	}
	return n
}
