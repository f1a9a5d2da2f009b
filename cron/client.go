package cron

import (
	"context"
	"net"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/nodecall"
)

// ErrConnect wraps errors of calls that never reached the node (no
// connection), which alone may be tried on another node at once.
var ErrConnect = nodecall.ErrConnect

// Caller sends one web-cron request. target is the request URI, path and
// query, and carries the secret key: implementations must not put it into
// errors or logs. They must return once ctx is done, and wrap ErrConnect
// when no connection could be opened.
type Caller interface {
	Call(ctx context.Context, address, host, target string) (status int, body []byte, err error)
}

// maxAnswer bounds the answer read; mosparo's are a few bytes of plain text
// and the access-denied page a few KiB.
const maxAnswer = 64 << 10

// connectTimeout bounds opening the connection within cron.timeout, so a
// node that drops SYNs leaves time to try the next one.
const connectTimeout = 5 * time.Second

// HTTPCaller is the default Caller: one fresh connection per call, straight
// to the node's address (never through the public listener, which refuses
// /cron-jobs/execute), with no X-Forwarded-For, so mosparo checks the web
// cron allow list against the LB's own address (FACTS 4, 6.1).
type HTTPCaller struct {
	// Dial opens the connection; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Call implements Caller with a GET carrying Host, "User-Agent: mosparo-lb"
// and "Connection: close".
func (c HTTPCaller) Call(ctx context.Context, address, host, target string) (int, []byte, error) {
	return nodecall.Get(ctx, nodecall.Request{Address: address, Host: host, Target: target,
		MaxBody: maxAnswer, ConnectTimeout: connectTimeout, Dial: c.Dial})
}

// Interface guards.
var _ Caller = HTTPCaller{}
