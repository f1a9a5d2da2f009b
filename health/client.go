package health

import (
	"context"
	"net"

	"github.com/mosparo-lb/mosparo-lb/internal/nodecall"
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
	return nodecall.Get(ctx, nodecall.Request{Address: address, Host: host, Target: path,
		Accept: "application/json", MaxBody: maxProbeBody, Dial: c.Dial})
}

// GetAsset implements AssetClient: a conditional GET over a fresh
// connection like Get's, no Accept header, redirects returned as they are.
func (c HTTPClient) GetAsset(ctx context.Context, r AssetRequest) (nodecall.Answer, error) {
	return nodecall.Do(ctx, nodecall.Request{Address: r.Address, Host: r.Host, Target: r.Path,
		MaxBody: r.MaxBody, Dial: c.Dial, IfNoneMatch: r.IfNoneMatch, IfModifiedSince: r.IfModifiedSince})
}

// Interface guards.
var (
	_ ProbeClient = HTTPClient{}
	_ AssetClient = HTTPClient{}
)
