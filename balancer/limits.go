package balancer

import (
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/valyala/fasthttp"
)

// bodyLimits are the request body limits per route class (limits.body_bytes,
// capped at limits.max_body_bytes), and the smallest of them: a declared
// body up to that size needs no classification before it is read.
type bodyLimits struct {
	byClass [NumClasses]int
	min     int
}

func newBodyLimits(l configs.Limits) bodyLimits {
	b := bodyLimits{min: l.MaxBodyBytes}
	for c := Class(0); c < NumClasses; c++ {
		n, ok := l.BodyBytes[c.String()]
		if !ok || n > l.MaxBodyBytes {
			n = l.MaxBodyBytes
		}
		b.byClass[c] = n
		b.min = min(b.min, n)
	}
	return b
}

// headerReceived gives a request its class's body limit before fasthttp
// reads the body, so an oversized frontend body is refused with 413 without
// being read into memory (serverError answers it). Bodies within every
// class's limit are not classified here.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	lim := &s.rt.Load().limits
	if cl := h.ContentLength(); cl >= 0 && cl <= lim.min {
		// Explicit: the server's own limit is the one of the first runtime.
		return fasthttp.RequestConfig{MaxRequestBodySize: lim.min}
	}
	u := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(u)
	if err := u.Parse(nil, h.RequestURI()); err != nil {
		return fasthttp.RequestConfig{MaxRequestBodySize: lim.min}
	}
	canon, _ := Canonical(u.Path())
	return fasthttp.RequestConfig{MaxRequestBodySize: lim.byClass[classify(canon)]}
}
