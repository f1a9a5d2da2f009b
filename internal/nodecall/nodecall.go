// Package nodecall sends the load balancer's own requests to one mosparo
// node: a GET over a fresh connection straight to the node's address,
// bounded by a context, with no forwarded headers, so mosparo judges the
// LB's own address against its allow lists (FACTS 1.2, 4, 6.1). Health
// probes and web-cron calls use it; client traffic never does.
package nodecall

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrConnect wraps the errors of requests that never reached the node (no
// connection could be opened).
var ErrConnect = errors.New("connect")

// Request is one GET to a node.
type Request struct {
	Address string // host:port
	Host    string // Host header; "" is Address
	Target  string // request URI: path and query
	Accept  string // Accept header; "" sends none
	// MaxBody bounds the answer read; a misrouted request may hit a large page.
	MaxBody int
	// ConnectTimeout bounds opening the connection within ctx; 0: ctx alone.
	ConnectTimeout time.Duration
	// Dial opens the connection; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// IfNoneMatch and IfModifiedSince make the request conditional (the
	// validators of an earlier Answer); "" sends neither header.
	IfNoneMatch, IfModifiedSince string
}

// Answer is a node's answer to Do, with the headers a later conditional
// request or an error message needs.
type Answer struct {
	Status             int
	Body               []byte
	ETag, LastModified string
	Location           string // of a redirect
}

// Get sends r with "User-Agent: mosparo-lb" and "Connection: close". A fresh
// connection cannot be a stale keep-alive one the node closed meanwhile
// (PEERS 5.4), and it tests what the balancer does next: connect.
func Get(ctx context.Context, r Request) (status int, body []byte, err error) {
	a, err := Do(ctx, r)
	return a.Status, a.Body, err
}

// Do is Get returning the answer's validators and Location too.
func Do(ctx context.Context, r Request) (Answer, error) {
	dial := r.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	dctx := ctx
	if r.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, r.ConnectTimeout)
		defer cancel()
	}
	conn, err := dial(dctx, "tcp", r.Address)
	if err != nil {
		return Answer{}, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	defer conn.Close()
	// A deadline does not follow a cancel; closing the connection does.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return Answer{}, fmt.Errorf("set deadline: %w", err)
		}
	}

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.SetRequestURI(r.Target)
	host := r.Host
	if host == "" {
		host = r.Address
	}
	req.Header.SetHost(host)
	req.Header.SetUserAgent("mosparo-lb")
	if r.Accept != "" {
		req.Header.Set(fasthttp.HeaderAccept, r.Accept)
	}
	if r.IfNoneMatch != "" {
		req.Header.Set(fasthttp.HeaderIfNoneMatch, r.IfNoneMatch)
	}
	if r.IfModifiedSince != "" {
		req.Header.Set(fasthttp.HeaderIfModifiedSince, r.IfModifiedSince)
	}
	req.SetConnectionClose()

	w := bufio.NewWriterSize(conn, 1024)
	if err := req.Write(w); err != nil {
		return Answer{}, preferCtx(ctx, fmt.Errorf("write request: %w", err))
	}
	if err := w.Flush(); err != nil {
		return Answer{}, preferCtx(ctx, fmt.Errorf("write request: %w", err))
	}
	if err := resp.ReadLimitBody(bufio.NewReaderSize(conn, 4096), r.MaxBody); err != nil {
		return Answer{}, preferCtx(ctx, fmt.Errorf("read answer: %w", err))
	}
	return Answer{
		Status:       resp.StatusCode(),
		Body:         append([]byte(nil), resp.Body()...),
		ETag:         string(resp.Header.Peek(fasthttp.HeaderETag)),
		LastModified: string(resp.Header.Peek(fasthttp.HeaderLastModified)),
		Location:     string(resp.Header.Peek(fasthttp.HeaderLocation)),
	}, nil
}

// preferCtx reports a timeout or cancel as such: once ctx closed the
// connection, the I/O error alone ("use of closed network connection")
// would hide why. The connection's deadline may fire a moment before the
// context's own timer, so a passed deadline counts as the context's too.
func preferCtx(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
