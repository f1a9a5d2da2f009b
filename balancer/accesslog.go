package balancer

import (
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// accessLog writes the one line per request DESIGN.md asks for: route
// class, node, status, duration, retries and client IP.
func (rt *Runtime) accessLog(ctx *fasthttp.RequestCtx, o outcome, peer netip.Addr, start time.Time) {
	ce := rt.deps.AccessLog.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	node := "-"
	if o.node != nil {
		node = o.node.name
	}
	ce.Write(
		zap.String("route", o.class.String()),
		zap.String("node", node),
		zap.Int("status", o.status),
		zap.Duration("duration", time.Since(start)),
		zap.Int("retries", o.retries),
		zap.Stringer("client", peer),
		zap.ByteString("method", ctx.Method()),
		zap.ByteString("path", ctx.Path()),
	)
}
