package configs

import "math"

// RateLimits are per-client token buckets on the public API, each route
// class limited alone, each LB alone (N active LBs allow N times the rate).
// A class without a block is not limited; that is the default, because the
// LB cannot know whether the addresses it sees are the clients' (behind a
// cloud load balancer without PROXY protocol, or a CDN missing from
// trusted_proxies, every visitor shares a few addresses).
type RateLimits struct {
	// Frontend limits /api/v1/frontend/* (the widget's request-submit-token,
	// store-form-data and check-form-data). Default: off.
	Frontend *RateLimit `yaml:"frontend"`
	// API limits the verification, statistic and rule-package API (route
	// class api), called by the websites' backends. Default: off.
	API *RateLimit `yaml:"api"`
	// FrontendAnswer is how a limited frontend request is answered: "429"
	// (429 Too Many Requests with Retry-After and mosparo's JSON error
	// shape; mosparo's widget shows its generic "An error occurred" for any
	// status but 200) or "delay" (200 with mosparo's own delay answer,
	// {"security":true,"type":"delay","forSeconds":N}: the widget shows its
	// countdown and asks again by itself when it ends). Default "429".
	FrontendAnswer string `yaml:"frontend_answer"`
	// Exempt are CIDRs (or addresses) never limited: the website backends
	// that call the verification API, monitoring. Default: none.
	Exempt []string `yaml:"exempt"`
	// IPv6Prefix is the prefix length that names one IPv6 client (a host
	// usually holds a whole /64), 16..128. Default 64. IPv4 addresses, and
	// IPv4-mapped IPv6 ones, are one client each.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// MaxEntries is how many clients each limited class holds at once,
	// 1024..100000000, about 24 bytes each, allocated when the class is
	// turned on. Default 100000.
	MaxEntries int `yaml:"max_entries"`
}

// RateLimit is one token bucket per client.
type RateLimit struct {
	// Rate is requests per second per client in the long run, fractions
	// allowed (0.5 = one every 2 s), 0.001..1000000. Required.
	Rate float64 `yaml:"rate"`
	// Burst is how many requests a client that has been quiet may make at
	// once, 1..1000000. Default: ten seconds' worth of rate, at least 10 (at
	// most 1000000).
	Burst int `yaml:"burst"`
}

// FrontendAnswers are the valid rate_limits.frontend_answer values.
var FrontendAnswers = []string{"429", "delay"}

func (r *RateLimits) defaults() {
	if r.FrontendAnswer == "" {
		r.FrontendAnswer = "429"
	}
	setInt(&r.IPv6Prefix, 64)
	setInt(&r.MaxEntries, 100_000)
	for _, l := range []*RateLimit{r.Frontend, r.API} {
		if l != nil && l.Rate > 0 && l.Rate <= 1e6 {
			setInt(&l.Burst, min(max(10, int(math.Ceil(10*l.Rate))), 1_000_000))
		}
	}
}

func (r *RateLimits) validate(v *validator, path string) {
	for _, c := range []struct {
		key string
		l   *RateLimit
	}{{"frontend", r.Frontend}, {"api", r.API}} {
		if c.l == nil {
			continue
		}
		p := path + "." + c.key
		if c.l.Rate == 0 {
			v.Errorf(p+".rate", "is required: requests per second per client, like 2 or 0.5")
		} else if !(c.l.Rate >= 0.001 && c.l.Rate <= 1e6) {
			v.Errorf(p+".rate", "must be 0.001..1000000 requests per second, got %v", c.l.Rate)
		}
		if c.l.Burst < 1 || c.l.Burst > 1e6 {
			v.Errorf(p+".burst", "must be 1..1000000, got %d", c.l.Burst)
		}
	}
	oneOf(v, path+".frontend_answer", r.FrontendAnswer, FrontendAnswers)
	validCIDRs(v, path+".exempt", r.Exempt)
	if n := r.IPv6Prefix; n < 16 || n > 128 {
		v.Errorf(path+".ipv6_prefix", "must be a prefix length 16..128 (64 is one host), got %d", n)
	}
	if n := r.MaxEntries; n < 1024 || n > 100_000_000 {
		v.Errorf(path+".max_entries", "must be 1024..100000000, got %d", n)
	}
}
