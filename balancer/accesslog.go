package balancer

import (
	"net/netip"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// accessLog writes the one line per request DESIGN.md asks for: route
// class, node, status, duration, retries and client IP.
// The fields live in the pooled reqState and the client address is
// formatted into its scratch buffer, so a line costs no allocation; zap
// encodes synchronously, before the state goes back to the pool.
func (rt *Runtime) accessLog(ctx *fasthttp.RequestCtx, st *reqState, o outcome, peer netip.Addr, took time.Duration) {
	ce := rt.deps.AccessLog.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	node := "-"
	if o.node != nil {
		node = o.node.name
	}
	st.addr = peer.AppendTo(st.addr[:0])
	f := &st.fields
	f[0] = zap.String("route", o.class.String())
	f[1] = zap.String("node", node)
	f[2] = zap.Int("status", o.status)
	f[3] = zap.Duration("duration", took)
	f[4] = zap.Int("retries", o.retries)
	f[5] = zap.String("client", unsafeString(st.addr))
	f[6] = zap.String("method", unsafeString(ctx.Method()))
	f[7] = zap.String("path", unsafeString(ctx.Path()))
	f[8] = zap.String("proto", protoName(o.h2))
	ce.Write(f[:]...)
	*f = [len(f)]zap.Field{} // drop references into the request
}

// unsafeString views b as a string without copying. Only for the
// synchronous log write above: the bytes do not change while zap encodes
// them, and the fields are cleared before the buffers are reused.
// (zap.ByteString would box the slice: one allocation per field.)
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
