package balancer

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/ratelimit"
	"github.com/valyala/fasthttp"
)

// rateLimits are a runtime's per-client limiters (rate_limits in the
// configuration).
type rateLimits struct {
	byClass [NumClasses]*ratelimit.Limiter // nil: the class is not limited
	// delay answers a limited frontend request with mosparo's own delay
	// answer instead of 429 (rate_limits.frontend_answer).
	delay bool
}

// newRateLimits builds the limiters cfg turns on; epoch is their clock's zero.
func newRateLimits(cfg configs.RateLimits, epoch time.Time) (rateLimits, error) {
	r := rateLimits{delay: cfg.FrontendAnswer == "delay"}
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
		if r.byClass[c.class], err = ratelimit.New(rc, epoch); err != nil {
			return r, err
		}
	}
	return r, nil
}

// adopt takes over old's limiter for every class whose limit is unchanged,
// so neither a reload nor a node-set change hands every client a fresh
// burst (or resets the counters).
func (r *rateLimits) adopt(old *rateLimits) {
	for c, l := range r.byClass {
		if o := old.byClass[c]; l != nil && o != nil && l.Config().Equal(o.Config()) {
			r.byClass[c] = o
		}
	}
}

var (
	bodyRateLimited = errorBody("Too many requests from your address; please try again in a moment.")
	strRetryAfter   = []byte("Retry-After")
	delayPrefix     = []byte(`{"security":true,"type":"delay","forSeconds":`)
)

// rateLimited answers the request itself when the client has no token
// left for class: 429, or mosparo's delay answer (see rateLimits.delay).
// Such a request never reaches a node, so no node's health or counters
// see it.
func (rt *Runtime) rateLimited(ctx *fasthttp.RequestCtx, st *reqState, o *outcome, peer netip.Addr, now time.Time) bool {
	class := o.class
	ok, wait := rt.rate.byClass[class].Allow(rt.fwd.clientAddr(&ctx.Request.Header, peer), now)
	if ok {
		return false
	}
	// Whole seconds, rounded up: a client that waits this long finds a token.
	secs := int64((wait + time.Second - 1) / time.Second)
	if class == Frontend && rt.rate.delay {
		// The shape of mosparo's own delay answer (FrontendApiController::
		// prepareSecurityResponse, 1.5.4): the widget counts forSeconds down
		// and asks for a new submit token one second after.
		writeError(ctx, class, fasthttp.StatusOK, nil)
		st.buf = append(strconv.AppendInt(append(st.buf[:0], delayPrefix...), secs, 10), '}')
		ctx.Response.SetBody(st.buf)
		o.status = fasthttp.StatusOK
		return true
	}
	writeError(ctx, class, fasthttp.StatusTooManyRequests, bodyRateLimited)
	st.buf = strconv.AppendInt(st.buf[:0], secs, 10)
	ctx.Response.Header.SetCanonical(strRetryAfter, st.buf)
	o.status = fasthttp.StatusTooManyRequests
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
	for c, l := range s.rt.Load().rate.byClass {
		if l != nil {
			cfg := l.Config()
			out = append(out, RateLimitStat{Route: Class(c).String(), Rate: cfg.Rate, Burst: cfg.Burst, Stats: l.Stats()})
		}
	}
	return out
}
