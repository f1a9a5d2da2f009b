package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zapcore"
)

// DomainStatus is one managed domain in /status (JSON names are an
// interface: the page and operators' scripts read them).
type DomainStatus struct {
	Domain string `json:"domain"`
	// State is "valid" (a certificate is served), "pending" (none yet),
	// "obtaining" (an order runs), "failing" (the last attempt failed and
	// no certificate is served) or "expired".
	State string `json:"state"`
	// NotAfter is the served certificate's expiry; Serial its serial
	// number (hex), the same on both LBs when they share the storage.
	NotAfter time.Time `json:"not_after,omitzero"`
	Serial   string    `json:"serial,omitempty"`
	// OCSPStapled: handshakes get an OCSP staple with the served
	// certificate (Good, for its serial, signed by its issuer, fresh).
	OCSPStapled bool `json:"ocsp_stapled"`
	// OCSPError is the last failure to fetch or accept a staple, cleared
	// when a staple is served again; OCSPRevoked that the responder said
	// Revoked (certmagic then renews the certificate).
	OCSPError   string    `json:"ocsp_error,omitempty"`
	OCSPErrorAt time.Time `json:"ocsp_error_at,omitzero"`
	OCSPRevoked bool      `json:"ocsp_revoked,omitempty"`
	// NextAttempt is when certmagic tries again after a failure, else
	// when the certificate enters its renewal window (a third of its
	// lifetime left; the CA's ARI window may pick a time within it).
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LastObtained is when this LB last got a certificate from the CA
	// (zero when the peer did and this one loaded it from the storage).
	LastObtained time.Time `json:"last_obtained,omitzero"`
	// LastError is the last failed obtain or renewal, kept until one succeeds.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Obtained and Failures count this LB's orders (renewals included).
	Obtained uint64 `json:"obtained"`
	Failures uint64 `json:"failures"`
}

// Status is the manager's part of /status.
type Status struct {
	CA      string         `json:"ca"`
	Domains []DomainStatus `json:"domains"`
	// ChallengeRequests counts http-01 and tls-alpn-01 requests that
	// reached this LB; ChallengesAnswered those it had an answer for.
	ChallengeRequests  uint64 `json:"challenge_requests"`
	ChallengesAnswered uint64 `json:"challenges_answered"`
}

// Status reads every domain's certificate from memory and its history.
func (m *Manager) Status() Status {
	s := Status{CA: m.settings.CA, ChallengeRequests: m.challengeRequests.Load(), ChallengesAnswered: m.challengesAnswered.Load()}
	cache := m.cache.Load()
	now := time.Now()
	for _, d := range m.settings.Domains {
		var leaf *x509.Certificate
		stapled := false
		if cache != nil {
			certs := cache.AllMatchingCertificates(d)
			for i, c := range certs {
				if c.Leaf != nil && (leaf == nil || c.Leaf.NotAfter.After(leaf.NotAfter)) {
					err, first := m.staples.check(&certs[i], now)
					if err != nil && first {
						m.status.ocspRejected(c.Names, err)
					}
					leaf, stapled = c.Leaf, len(c.OCSPStaple) > 0 && err == nil
				}
			}
		}
		s.Domains = append(s.Domains, m.status.domain(d, leaf, stapled, now))
	}
	return s
}

// statusBook is what certmagic's events and retry logs told about each
// domain; certmagic calls it from its own goroutines.
type statusBook struct {
	mu sync.Mutex
	by map[string]*history
}

type history struct {
	obtaining    bool
	obtained     uint64
	failures     uint64
	lastObtained time.Time
	lastError    string
	lastErrorAt  time.Time
	failAttempt  int       // certmagic's attempt number of the last failure
	retryAt      time.Time // when certmagic retries the last failure; zero: not scheduled
	ocspError    string
	ocspErrorAt  time.Time
	ocspRevoked  bool
}

func newStatusBook(domains []string) *statusBook {
	b := &statusBook{by: map[string]*history{}}
	for _, d := range domains {
		b.by[d] = &history{}
	}
	return b
}

// onEvent is certmagic's event hook. It never vetoes (certmagic would
// abort a handshake or an order on an error).
func (b *statusBook) onEvent(ctx context.Context, event string, data map[string]any) error {
	id, _ := data["identifier"].(string)
	b.mu.Lock()
	defer b.mu.Unlock()
	if event == "cert_ocsp_revoked" {
		names, _ := data["subjects"].([]string)
		for _, n := range names {
			if h := b.by[n]; h != nil {
				h.ocspRevoked = true
			}
		}
		return nil
	}
	h := b.by[id]
	if h == nil {
		return nil
	}
	switch event {
	case "cert_obtaining":
		h.obtaining = true
	case "cert_obtained":
		h.obtaining = false
		h.ocspRevoked = false
		h.obtained++
		h.lastObtained = time.Now()
		h.lastError, h.retryAt = "", time.Time{}
	case "cert_failed":
		h.obtaining = false
		h.failures++
		h.lastErrorAt = time.Now()
		h.lastError = "failed"
		if err, ok := data["error"].(error); ok {
			h.lastError = err.Error()
		}
		h.failAttempt = -1
		if n, ok := ctx.Value(certmagic.AttemptsCtxKey).(*int); ok && n != nil {
			h.failAttempt = *n
		}
		h.retryAt = time.Time{}
	}
	return nil
}

// retryScheduled matches certmagic's "will retry" log (attempt numbers
// count from 1 there, from 0 in the event) to the domain that just failed.
func (b *statusBook) retryScheduled(at time.Time, attempt int, in time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var best *history
	for _, h := range b.by {
		if h.failAttempt == attempt-1 && h.retryAt.IsZero() && !h.lastErrorAt.IsZero() && (best == nil || h.lastErrorAt.After(best.lastErrorAt)) {
			best = h
		}
	}
	if best != nil {
		best.retryAt = at.Add(in)
	}
}

// ocspRejected records a staple failure for the certificate's names.
func (b *statusBook) ocspRejected(names []string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range names {
		if h := b.by[n]; h != nil {
			h.ocspError, h.ocspErrorAt = err.Error(), time.Now()
		}
	}
}

func (b *statusBook) domain(d string, leaf *x509.Certificate, stapled bool, now time.Time) DomainStatus {
	b.mu.Lock()
	if stapled {
		// A failure is over once a staple is served again.
		b.by[d].ocspError, b.by[d].ocspErrorAt = "", time.Time{}
	}
	h := *b.by[d]
	b.mu.Unlock()
	s := DomainStatus{Domain: d, LastObtained: h.lastObtained, LastError: h.lastError, LastErrorAt: h.lastErrorAt,
		Obtained: h.obtained, Failures: h.failures, OCSPStapled: stapled, OCSPRevoked: h.ocspRevoked}
	s.OCSPError, s.OCSPErrorAt = h.ocspError, h.ocspErrorAt
	switch {
	case h.obtaining:
		s.State = "obtaining"
	case leaf != nil && now.After(leaf.NotAfter):
		s.State = "expired"
	case leaf != nil:
		s.State = "valid"
	case h.lastError != "":
		s.State = "failing"
	default:
		s.State = "pending"
	}
	if leaf != nil {
		s.NotAfter, s.Serial = leaf.NotAfter, fmt.Sprintf("%x", leaf.SerialNumber)
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		s.NextAttempt = leaf.NotAfter.Add(-life / 3)
	}
	if h.lastError != "" && !h.retryAt.IsZero() {
		s.NextAttempt = h.retryAt
	}
	return s
}

// retryObserver passes everything to Core and also reads certmagic's
// "will retry" entries: the retry delay is in no event.
type retryObserver struct {
	zapcore.Core
	book *statusBook
}

// Enabled keeps warnings and errors flowing to Check even when Core drops
// them: the retry entry is logged at error level, OCSP failures at warn or
// error.
func (o *retryObserver) Enabled(l zapcore.Level) bool {
	return l >= zapcore.WarnLevel || o.Core.Enabled(l)
}

func (o *retryObserver) With(fields []zapcore.Field) zapcore.Core {
	return &retryObserver{Core: o.Core.With(fields), book: o.book}
}

func (o *retryObserver) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	switch e.Message {
	case "will retry":
		ce = ce.AddCore(e, observerWrite{o.book})
	case "stapling OCSP":
		ce = ce.AddCore(e, ocspObserver{o.book})
	}
	return o.Core.Check(e, ce)
}

// observerWrite is the Core retryObserver adds for the entries it reads;
// it writes nothing.
type observerWrite struct{ book *statusBook }

func (w observerWrite) Enabled(zapcore.Level) bool        { return true }
func (w observerWrite) With([]zapcore.Field) zapcore.Core { return w }
func (w observerWrite) Check(_ zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce
}
func (w observerWrite) Sync() error { return nil }

func (w observerWrite) Write(e zapcore.Entry, fields []zapcore.Field) error {
	attempt, in := -1, time.Duration(-1)
	for _, f := range fields {
		switch f.Key {
		case "attempt":
			attempt = int(f.Integer)
		case "retrying_in":
			if f.Type == zapcore.DurationType {
				in = time.Duration(f.Integer)
			}
		}
	}
	if attempt < 0 || in < 0 {
		return errors.New("acme: will-retry entry without attempt or retrying_in")
	}
	w.book.retryScheduled(e.Time, attempt, in)
	return nil
}

// ocspObserver reads certmagic's "stapling OCSP" failures (error and
// identifiers fields) into the status; it writes nothing.
type ocspObserver struct{ book *statusBook }

func (w ocspObserver) Enabled(zapcore.Level) bool        { return true }
func (w ocspObserver) With([]zapcore.Field) zapcore.Core { return w }
func (w ocspObserver) Check(_ zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce
}
func (w ocspObserver) Sync() error { return nil }

func (w ocspObserver) Write(_ zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	var cause error
	for _, f := range fields {
		switch {
		case f.Key == "identifiers":
			f.AddTo(enc)
		case f.Type == zapcore.ErrorType:
			cause, _ = f.Interface.(error)
		}
	}
	ids, _ := enc.Fields["identifiers"].([]any)
	if cause == nil || len(ids) == 0 {
		return nil
	}
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		if n, ok := id.(string); ok {
			names = append(names, n)
		}
	}
	w.book.ocspRejected(names, cause)
	return nil
}

// Interface guards.
var (
	_ zapcore.Core = (*retryObserver)(nil)
	_ zapcore.Core = observerWrite{}
	_ zapcore.Core = ocspObserver{}
)
