package cron

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrConnect wraps errors of calls that never reached the node (no
// connection), which alone may be tried on another node at once.
var ErrConnect = errors.New("connect")

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
	dial := c.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := dial(dctx, "tcp", address)
	cancel()
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	defer conn.Close()
	// A deadline does not follow a cancel; closing the connection does.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return 0, nil, fmt.Errorf("set deadline: %w", err)
		}
	}

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.SetRequestURI(target)
	req.Header.SetHost(host)
	req.Header.SetUserAgent("mosparo-lb")
	req.SetConnectionClose()

	w := bufio.NewWriter(conn)
	if err := req.Write(w); err != nil {
		return 0, nil, preferCtx(ctx, fmt.Errorf("send: %w", err))
	}
	if err := w.Flush(); err != nil {
		return 0, nil, preferCtx(ctx, fmt.Errorf("send: %w", err))
	}
	if err := resp.ReadLimitBody(bufio.NewReader(conn), maxAnswer); err != nil {
		return 0, nil, preferCtx(ctx, fmt.Errorf("read answer: %w", err))
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// preferCtx reports a timeout or cancel as such: once ctx closed the
// connection, the I/O error alone ("use of closed network connection")
// would hide why.
func preferCtx(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
		// The connection's deadline (the same instant) fired before the
		// context's timer did.
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// Interface guards.
var _ Caller = HTTPCaller{}
