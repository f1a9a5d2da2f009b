package balancer

import (
	"errors"
	"net"

	"github.com/valyala/fasthttp"
)

// errorBody is the JSON shape mosparo itself answers errors with and its
// frontend JS handles: {"error":true,"errorMessage":"..."} (FACTS 2.1).
func errorBody(msg string) []byte {
	return []byte(`{"error":true,"errorMessage":"` + msg + `"}`)
}

var (
	bodyNoNode        = errorBody("No mosparo node is available to answer this request.")
	bodyBadGateway    = errorBody("The mosparo node did not answer properly.")
	bodyTimeout       = errorBody("The mosparo node did not answer in time.")
	bodyForbidden     = errorBody("This endpoint is not available from your address.")
	bodyNoRoute       = errorBody("No mosparo route has this path.")
	bodyUpdatePending = errorBody("The mosparo update is not finalized yet: an administrator must open /administration/update/finalize.")
	bodyTooLarge      = errorBody("The request body is too large.")
	bodyHeaders       = errorBody("The request headers are too large.")
	bodyBadRequest    = errorBody("The request could not be read.")
	bodyReqTimeout    = errorBody("The request was not received in time.")
	bodyNoHost        = errorBody("The request names no host.")
	bodyBusy          = errorBody("The mosparo node is busy; try again shortly.")
)

// writeError replaces whatever a failed attempt left in the response with a
// small JSON error. Frontend calls are cross-origin XHRs without
// credentials; echoing Origin lets the widget read the message.
func writeError(ctx *fasthttp.RequestCtx, class Class, code int, body []byte) {
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(code)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if class == Frontend {
		if o := ctx.Request.Header.Peek("Origin"); len(o) > 0 {
			ctx.Response.Header.SetBytesV("Access-Control-Allow-Origin", o)
		}
	}
	ctx.Response.SetBodyRaw(body)
}

// dialError marks a failure to open a connection: the request never left
// this process, so any method may be retried on another node.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serverError maps errors fasthttp meets while reading a client's request to
// the answer the client gets (413 and 431 as the issue asks).
func serverError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		writeError(ctx, Admin, fasthttp.StatusRequestHeaderFieldsTooLarge, bodyHeaders)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, Admin, fasthttp.StatusRequestEntityTooLarge, bodyTooLarge)
	case isTimeout(err):
		writeError(ctx, Admin, fasthttp.StatusRequestTimeout, bodyReqTimeout)
	default:
		writeError(ctx, Admin, fasthttp.StatusBadRequest, bodyBadRequest)
	}
	ctx.SetConnectionClose()
}
