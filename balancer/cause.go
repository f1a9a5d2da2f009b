package balancer

import (
	"errors"

	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/valyala/fasthttp"
)

// cause is why one attempt to forward a request failed. causeOf decides it
// once from the exchange's error; the cause alone then says what the client
// gets, whether passive health blames the node and whether another node may
// be tried (DESIGN.md step 6). Nothing a client causes is ever the node's.
type cause uint8

const (
	// causeClient: the request cannot be sent as it is (a body or header
	// fasthttp refuses to frame). 400; the node is not blamed; no retry:
	// every node would refuse it alike.
	causeClient cause = iota + 1
	// causeQueue: every connection to the node stayed busy for
	// timeouts.queue. The node is busy, not broken: 503 with Retry-After,
	// not blamed, not sent elsewhere (that would only move the overload).
	causeQueue
	// causeConnect: no connection could be opened; the request never left.
	// 502, blamed, any method may go to another node.
	causeConnect
	// causeTimeout: the node took the request and did not answer within
	// timeouts.request. 504, blamed, never retried: the time is spent.
	causeTimeout
	// causeBadAnswer: the node took the request and its answer is not one:
	// reset or closed early, unparsable, an unrequested 101, too large.
	// 502, blamed; retried only when the method is idempotent, since the
	// node may have acted on it (PEERS 3, nginx since 1.9.13).
	causeBadAnswer
)

var causeNames = [...]string{causeClient: "client", causeQueue: "queue", causeConnect: "connect", causeTimeout: "timeout", causeBadAnswer: "bad_answer"}

func (c cause) String() string {
	if int(c) < len(causeNames) && causeNames[c] != "" {
		return causeNames[c]
	}
	return "unknown"
}

// causeOf is the one place a forward error gets its cause.
func causeOf(err error) cause {
	var re *requestError
	var de *dialError
	switch {
	case errors.As(err, &re):
		return causeClient
	case errors.Is(err, errQueueFull):
		return causeQueue
	case errors.As(err, &de):
		return causeConnect
	case isTimeout(err):
		return causeTimeout
	default:
		return causeBadAnswer
	}
}

// outcome is what passive health learns; 0 tells it nothing.
func (c cause) outcome() health.Outcome {
	switch c {
	case causeConnect:
		return health.ConnectFailure
	case causeTimeout:
		return health.Timeout
	case causeBadAnswer:
		return health.BadAnswer
	}
	return 0
}

// status is the answer the client gets when no other node is tried.
func (c cause) status() int {
	switch c {
	case causeClient:
		return fasthttp.StatusBadRequest
	case causeQueue:
		return fasthttp.StatusServiceUnavailable
	case causeTimeout:
		return fasthttp.StatusGatewayTimeout
	}
	return fasthttp.StatusBadGateway
}

// retry reports whether another node may be tried.
func (c cause) retry(idempotent bool) bool {
	switch c {
	case causeConnect:
		return true
	case causeBadAnswer:
		return idempotent
	}
	return false
}
