package health

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// ProbeClient sends one health probe. Implementations must return once ctx
// is done (the Checker gives every probe a context bounded by
// health.timeout) and must not add forwarded headers: mosparo checks the
// client address against MOSPARO_HEALTH_ALLOW_LIST (FACTS 1.2).
type ProbeClient interface {
	// Get sends GET path to address (host:port) with the given Host header
	// and returns the status and body of the answer.
	Get(ctx context.Context, address, host, path string) (status int, body []byte, err error)
}

// maxProbeBody bounds a health answer; mosparo's is under 200 bytes, but a
// misrouted probe may hit a large HTML page.
const maxProbeBody = 64 << 10

// HTTPClient is the default ProbeClient: one fresh connection per probe,
// written and read with fasthttp's request and response types.
//
// A fresh connection tests what the balancer will do next (connect), and it
// cannot be a stale keep-alive connection the node closed in the meantime,
// which would fail a probe of a healthy node (PEERS 5.4).
type HTTPClient struct {
	// Dial opens the connection; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Get implements ProbeClient. The request carries Host, "User-Agent:
// mosparo-lb", "Accept: application/json" (so a 404 comes back as JSON,
// FACTS 1.1) and "Connection: close", nothing else.
func (c HTTPClient) Get(ctx context.Context, address, host, path string) (int, []byte, error) {
	dial := c.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", address)
	if err != nil {
		return 0, nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	// Closing the connection is what interrupts a blocked read or write
	// when ctx ends; the deadline alone would not follow a cancel.
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
	req.Header.SetRequestURI(path)
	if host == "" {
		host = address
	}
	req.Header.SetHost(host)
	req.Header.SetUserAgent("mosparo-lb")
	req.Header.Set(fasthttp.HeaderAccept, "application/json")
	req.SetConnectionClose()

	bw := bufio.NewWriterSize(conn, 1024)
	if err := req.Write(bw); err != nil {
		return 0, nil, ctxErr(ctx, fmt.Errorf("write request: %w", err))
	}
	if err := bw.Flush(); err != nil {
		return 0, nil, ctxErr(ctx, fmt.Errorf("write request: %w", err))
	}
	br := bufio.NewReaderSize(conn, 4096)
	if err := resp.ReadLimitBody(br, maxProbeBody); err != nil {
		return 0, nil, ctxErr(ctx, fmt.Errorf("read answer: %w", err))
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// ctxErr prefers the context's error: after a timeout closes the
// connection, "use of closed network connection" would hide the cause.
// The connection's deadline may fire a moment before the context's own
// timer, so a passed deadline counts as the context's too.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// Interface guards.
var _ ProbeClient = HTTPClient{}
