package mosparoemu

import (
	"github.com/valyala/fasthttp"
)

// dbFailedMessage is the exception message a node reports in the DBFailed state: what Doctrine
// throws when MySQL refuses the connection.
const dbFailedMessage = "An exception occurred in the driver: SQLSTATE[HY000] [2002] Connection refused"

// Health bodies, byte-exact per FACTS 1.1 (key order service, healthy, databaseStatus, error,
// statusCode; JsonResponse with JSON_HEX_* flags).
var (
	healthConnected = []byte(`{"service":"mosparo","healthy":true,"databaseStatus":"connected","error":null,"statusCode":200}`)
	healthDBFailed  = []byte(`{"service":"mosparo","healthy":false,"databaseStatus":"connection-failed","error":` +
		string(appendSymfonyJSONString(nil, dbFailedMessage)) + `,"statusCode":500}`)
	healthNotConfigured = []byte(`{"service":"mosparo","healthy":true,"databaseStatus":"test-skipped__not-configured","error":null,"statusCode":200}`)
	healthUpdatePending = []byte(`{"service":"mosparo","healthy":true,"databaseStatus":"test-skipped__update-not-finished","error":null,"statusCode":200}`)
	healthBypassed      = []byte(`{"service":"mosparo","healthy":null,"databaseStatus":"bypassed","error":"","statusCode":200}`)
)

// serveHealth answers GET|HEAD /api/v1/health/check (FACTS 1.1). The route condition (client IP
// on MOSPARO_HEALTH_ALLOW_LIST, resolved through trusted proxies, FACTS 1.2 and 4) is evaluated
// before the method, so a disallowed client gets 404 for every method and an allowed one 405
// for anything but GET and HEAD.
func (n *Node) serveHealth(ctx *fasthttp.RequestCtx, h Health) {
	var buf [64]byte
	ip := n.trusted.resolveClientIP(ctx, buf[:])
	if !n.allow.allows(&ip) {
		n.serveNotFound(ctx)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.SetCanonical(hdrAllow, valueGET)
		if wantsJSON(ctx) {
			serveJSON(ctx, fasthttp.StatusMethodNotAllowed, jsonMethodNotAllowed)
			return
		}
		serveHTML(ctx, fasthttp.StatusMethodNotAllowed, pageMethodNotAllowed)
		return
	}
	switch h {
	case DBFailed:
		serveJSON(ctx, fasthttp.StatusInternalServerError, healthDBFailed)
	case NotConfigured:
		serveJSON(ctx, fasthttp.StatusOK, healthNotConfigured)
	case UpdateNotFinished:
		serveJSON(ctx, fasthttp.StatusOK, healthUpdatePending)
	case Bypassed:
		serveJSON(ctx, fasthttp.StatusOK, healthBypassed)
	default:
		serveJSON(ctx, fasthttp.StatusOK, healthConnected)
	}
}

// appendSymfonyJSONString encodes s like Symfony's JsonResponse: json_encode with
// JSON_HEX_TAG|JSON_HEX_APOS|JSON_HEX_AMP|JSON_HEX_QUOT (FACTS 1.1), so quotes become \u0022.
func appendSymfonyJSONString(dst []byte, s string) []byte {
	start := len(dst)
	dst, ok := appendPHPString(dst, s)
	if !ok {
		return append(dst[:start], `null`...)
	}
	enc := dst[start+1 : len(dst)-1]
	out := append([]byte(nil), dst[:start+1]...)
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch {
		case c == '\\' && i+1 < len(enc) && enc[i+1] == '"':
			out = append(out, `\u0022`...)
			i++
		case c == '\\' && i+1 < len(enc):
			out = append(out, c, enc[i+1])
			i++
		case c == '<':
			out = append(out, `\u003C`...)
		case c == '>':
			out = append(out, `\u003E`...)
		case c == '&':
			out = append(out, `\u0026`...)
		case c == '\'':
			out = append(out, `\u0027`...)
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
