package balancer

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/ratelimit"
	"github.com/valyala/fasthttp"
)

// rateLimits are a runtime's per-client limiters by route class; nil for a
// class that is not limited (rate_limits in the configuration).
type rateLimits [NumClasses]*ratelimit.Limiter

// newRateLimits builds the limiters cfg turns on; epoch is their clock's zero.
func newRateLimits(cfg configs.RateLimits, epoch time.Time) (rateLimits, error) {
	var r rateLimits
	exempt, err := prefixes(cfg.Exempt)
	if err != nil {
		return r, err
	}
	for _, c := range []struct {
		class Class
		l     *configs.RateLimit
	}{{Frontend, cfg.Frontend}, {API, cfg.API}} {
		if c.l == nil {
			continue
		}
		rc := ratelimit.Config{Rate: c.l.Rate, Burst: c.l.Burst, IPv6Prefix: cfg.IPv6Prefix, Exempt: exempt, MaxEntries: cfg.MaxEntries}
		if r[c.class], err = ratelimit.New(rc, epoch); err != nil {
			return r, err
		}
	}
	return r, nil
}

// adopt takes over old's limiter for every class whose limit is unchanged,
// so neither a reload nor a node-set change hands every client a fresh
// burst (or resets the counters).
func (r *rateLimits) adopt(old *rateLimits) {
	for c, l := range r {
		if l != nil && old[c] != nil && l.Config().Equal(old[c].Config()) {
			r[c] = old[c]
		}
	}
}

var (
	bodyRateLimited = errorBody("Too many requests from your address; please try again in a moment.")
	strRetryAfter   = []byte("Retry-After")
)

// rateLimited answers 429 when the client has no token left for class.
// Such a request never reaches a node, so no node's health or counters
// see it.
func (rt *Runtime) rateLimited(ctx *fasthttp.RequestCtx, st *reqState, class Class, peer netip.Addr, now time.Time) bool {
	ok, wait := rt.rate[class].Allow(rt.fwd.clientAddr(&ctx.Request.Header, peer), now)
	if ok {
		return false
	}
	writeError(ctx, class, fasthttp.StatusTooManyRequests, bodyRateLimited)
	// Whole seconds, rounded up: a client that waits this long finds a token.
	st.buf = strconv.AppendInt(st.buf[:0], int64((wait+time.Second-1)/time.Second), 10)
	ctx.Response.Header.SetCanonical(strRetryAfter, st.buf)
	return true
}

// RateLimitStat is one limited route class, for /status and /metrics.
type RateLimitStat struct {
	Route string  `json:"route"`
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
	ratelimit.Stats
}

// RateLimitStats returns the limited classes' counters; nil when none is
// limited.
func (s *Server) RateLimitStats() []RateLimitStat {
	var out []RateLimitStat
	for c, l := range s.rt.Load().rate {
		if l != nil {
			cfg := l.Config()
			out = append(out, RateLimitStat{Route: Class(c).String(), Rate: cfg.Rate, Burst: cfg.Burst, Stats: l.Stats()})
		}
	}
	return out
}
