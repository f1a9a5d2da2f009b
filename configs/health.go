package configs

import (
	"strings"
	"time"
)

// Health configures active checks against mosparo's health API, passive
// outlier detection from live traffic and slow start (FACTS 1).
//
// Fields that may meaningfully be zero (jitter, slow_start,
// passive.consecutive_failures) are pointers: nil means "not written",
// which takes the default, while an explicit 0 turns the feature off.
type Health struct {
	// Path is the request path of the probe. Default /api/v1/health/check
	// (FACTS 1.1). Change it only when mosparo lives under a sub-path.
	Path string `yaml:"path"`
	// Interval is the time between two checks of a node whose state is
	// settled (up, draining, setup, maintenance). Default 2s; at least 100ms.
	Interval Duration `yaml:"interval"`
	// FastInterval is the time between checks while a node is changing
	// state (up but failing, down but recovering, ejected by passive
	// detection, or never checked). Default 500ms, or interval when that is
	// shorter; 10ms..interval.
	FastInterval Duration `yaml:"fast_interval"`
	// DownInterval is the time between checks of a node that is settled
	// down. Default 2s (the interval default); at least 10ms.
	DownInterval Duration `yaml:"down_interval"`
	// Timeout bounds one check: connect, request and answer. Default 1s, or
	// half of interval when that is shorter; must be shorter than interval.
	Timeout Duration `yaml:"timeout"`
	// Rise is how many consecutive good checks bring a down node back.
	// Default 2; 1..100.
	Rise int `yaml:"rise"`
	// Fall is how many consecutive bad checks take a node down. Default 2;
	// 1..100.
	Fall int `yaml:"fall"`
	// Jitter is the most each delay between checks is shortened at random,
	// so the checks of several LBs and nodes do not line up. It never
	// exceeds half the delay, so detection is never slower than without it.
	// Default interval/10; 0 turns it off; at most interval.
	Jitter *Duration `yaml:"jitter"`
	// SlowStart is how long a node that comes back up takes to ramp its
	// weight linearly from ~0 to its configured weight, so a cold PHP node
	// is not flooded. Not applied to nodes that are up when the LB starts.
	// Default 30s; 0 turns it off; at most 1h.
	SlowStart *Duration `yaml:"slow_start"`
	// TrustBypassed treats the answer of a node with
	// MOSPARO_BYPASS_HEALTH_CHECK=1 ("databaseStatus":"bypassed", which
	// tests nothing, FACTS 1.4) as healthy. Default false: such a node is
	// down, with a reason saying why.
	TrustBypassed bool `yaml:"trust_bypassed"`
	// Passive configures outlier detection from proxied requests.
	Passive Passive `yaml:"passive"`
	// Version configures the code-version fingerprint of each node.
	Version VersionCheck `yaml:"version"`
}

// VersionCheck configures the fingerprint of each node's code version: a
// hash of the built assets /build/entrypoints.json names (FACTS 11.3),
// fetched after a health check, with conditional requests.
type VersionCheck struct {
	// Every is how many health checks of a node pass between two
	// fingerprints; a change of the node's health state (an update makes
	// the updated node report draining) fingerprints at once. Default 30;
	// 0 turns fingerprints off (then the update routes go to any node);
	// at most 100000.
	Every *int `yaml:"every"`
	// Timeout bounds one fingerprint (entrypoints.json and every file it
	// names). Default 10s; 100ms..5m.
	Timeout Duration `yaml:"timeout"`
}

// Passive ejects a node after consecutive failed requests, for a time that
// grows with each ejection; a good active check ends an ejection early.
type Passive struct {
	// ConsecutiveFailures is how many requests in a row that failed in
	// transport (never reached the node, timed out, broken or unparsable
	// answer) eject it. Default 5; 0 turns passive detection off; at most
	// 10000.
	ConsecutiveFailures *int `yaml:"consecutive_failures"`
	// Count5xx makes a 5xx answer count as a failure too. Default false: a
	// client that finds a request mosparo answers with 500 could otherwise
	// eject healthy nodes one after another; the active checks still take
	// down a node whose mosparo is broken.
	Count5xx bool `yaml:"count_5xx"`
	// BaseEjection is the first ejection's length; the n-th ejection in a
	// row lasts n times as long. Default 30s.
	BaseEjection Duration `yaml:"base_ejection"`
	// MaxEjection caps one ejection. Default 5m, or base_ejection when
	// that is longer; at least base_ejection.
	MaxEjection Duration `yaml:"max_ejection"`
	// MaxEjectedPercent caps the share of the pool ejected at once; one
	// node may always be ejected, but never the last node that is up.
	// Default 50; 0..100.
	MaxEjectedPercent *int `yaml:"max_ejected_percent"`
}

// DefaultHealthPath is mosparo's health API route (FACTS 1.1).
const DefaultHealthPath = "/api/v1/health/check"

// WithDefaults returns a copy of h with every unset field given its
// default, for callers that build a Health by hand (tests, demo) instead
// of loading a file. Load already applies the defaults.
func (h Health) WithDefaults() Health {
	h.defaults()
	return h
}

func (h *Health) defaults() {
	if h.Path == "" {
		h.Path = DefaultHealthPath
	}
	setDuration(&h.Interval, "2s")
	// Defaults bounded by interval follow it, so "interval: 300ms" alone
	// is valid (issue 11, item 13).
	setDurationAtMost(&h.FastInterval, "500ms", h.Interval)
	setDuration(&h.DownInterval, "2s")
	setDurationAtMost(&h.Timeout, "1s", h.Interval/2)
	setInt(&h.Rise, 2)
	setInt(&h.Fall, 2)
	if h.Jitter == nil {
		j := h.Interval / 10
		h.Jitter = &j
	}
	if h.SlowStart == nil {
		s := Duration(30 * time.Second)
		h.SlowStart = &s
	}
	p := &h.Passive
	if p.ConsecutiveFailures == nil {
		n := 5
		p.ConsecutiveFailures = &n
	}
	setDuration(&p.BaseEjection, "30s")
	setDurationAtLeast(&p.MaxEjection, "5m", p.BaseEjection)
	if p.MaxEjectedPercent == nil {
		n := 50
		p.MaxEjectedPercent = &n
	}
	if h.Version.Every == nil {
		n := 30
		h.Version.Every = &n
	}
	setDuration(&h.Version.Timeout, "10s")
}

func (h *Health) validate(v *validator, path string) {
	if !strings.HasPrefix(h.Path, "/") || strings.ContainsFunc(h.Path, func(r rune) bool { return r <= ' ' || r == 0x7f }) || len(h.Path) > 1024 {
		v.Errorf(path+".path", "must be an absolute request path without spaces, like %s; got %q", DefaultHealthPath, h.Path)
	}
	if h.Interval.D() < 100*time.Millisecond {
		v.Errorf(path+".interval", "must be at least 100ms, got %s", h.Interval.D())
	}
	if f := h.FastInterval.D(); f < 10*time.Millisecond || f > h.Interval.D() {
		v.Errorf(path+".fast_interval", "must be 10ms..health.interval (%s), got %s", h.Interval.D(), f)
	}
	if h.DownInterval.D() < 10*time.Millisecond {
		v.Errorf(path+".down_interval", "must be at least 10ms, got %s", h.DownInterval.D())
	}
	if h.Timeout.D() <= 0 || h.Timeout.D() >= h.Interval.D() {
		v.Errorf(path+".timeout", "must be positive and shorter than health.interval (%s), got %s", h.Interval.D(), h.Timeout.D())
	}
	if h.Rise < 1 || h.Rise > 100 {
		v.Errorf(path+".rise", "must be 1..100, got %d", h.Rise)
	}
	if h.Fall < 1 || h.Fall > 100 {
		v.Errorf(path+".fall", "must be 1..100, got %d", h.Fall)
	}
	if h.Jitter != nil && h.Jitter.D() > h.Interval.D() {
		v.Errorf(path+".jitter", "must be 0..health.interval (%s), got %s", h.Interval.D(), h.Jitter.D())
	}
	if h.SlowStart != nil && h.SlowStart.D() > time.Hour {
		v.Errorf(path+".slow_start", "must be 0 (off) up to 1h, got %s", h.SlowStart.D())
	}
	p := h.Passive
	pp := path + ".passive"
	if n := p.ConsecutiveFailures; n != nil && (*n < 0 || *n > 10000) {
		v.Errorf(pp+".consecutive_failures", "must be 0 (off) up to 10000, got %d", *n)
	}
	if p.BaseEjection.D() <= 0 {
		v.Errorf(pp+".base_ejection", "must be positive, like 30s")
	}
	if p.MaxEjection.D() < p.BaseEjection.D() {
		v.Errorf(pp+".max_ejection", "must be at least health.passive.base_ejection (%s), got %s", p.BaseEjection.D(), p.MaxEjection.D())
	}
	if n := p.MaxEjectedPercent; n != nil && (*n < 0 || *n > 100) {
		v.Errorf(pp+".max_ejected_percent", "must be 0..100, got %d", *n)
	}
	if n := h.Version.Every; n != nil && (*n < 0 || *n > 100000) {
		v.Errorf(path+".version.every", "must be 0 (off) up to 100000 checks, got %d", *n)
	}
	if d := h.Version.Timeout.D(); d < 100*time.Millisecond || d > 5*time.Minute {
		v.Errorf(path+".version.timeout", "must be 100ms..5m, got %s", d)
	}
}
