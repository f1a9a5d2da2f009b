package balancer

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// NodeSpec is one node the runtime balances over (static or discovered).
type NodeSpec struct {
	Name    string
	Address string
	Weight  int
	Admin   bool
}

// HealthSource gives the health view of a node by address; nil means no
// health checking (every node is up).
type HealthSource interface {
	NodeHealth(address string) NodeHealth
}

// EdgeCache answers some /resources requests at the edge (package cssproxy).
// Serve returns true when it wrote the whole answer; Observe is shown the
// node's answer to a request Serve left to a node (its coherence check,
// FACTS 11.5). Neither may keep ctx.
type EdgeCache interface {
	Serve(ctx *fasthttp.RequestCtx, scheme, host, prefix []byte) bool
	Observe(ctx *fasthttp.RequestCtx)
}

// StaleEdgeCache is an EdgeCache that can also answer from entries it
// would otherwise not use (too old, or due for a coherence check) when no
// node can take a /resources request (package cssproxy).
type StaleEdgeCache interface {
	ServeStale(ctx *fasthttp.RequestCtx, scheme, host, prefix []byte) bool
}

// Metrics records per-request metrics. Node is called once per node when a
// runtime is built ("" for requests no node answered); the recorder it
// returns is called on every request and must not allocate.
type Metrics interface {
	Node(name string) RequestRecorder
}

// RequestRecorder records one finished request.
type RequestRecorder interface {
	Observe(class Class, status int, d time.Duration, retries int)
}

// Deps are what a runtime is built with besides the configuration.
type Deps struct {
	Logger    *zap.Logger // required
	AccessLog *zap.Logger // nil disables the access log
	Health    HealthSource
	CSS       EdgeCache
	Metrics   Metrics // nil records nothing
	// Dial opens connections to nodes; nil uses TCP with timeouts.connect.
	Dial func(addr string, timeout time.Duration) (net.Conn, error)
	// Listen gives the server the socket of a listen: address it does not
	// hold yet (network "tcp"); nil binds one with ListenFreebind. A socket
	// handed over by systemd or by the process being upgraded comes in
	// here; TLS and the server's own wrapping stay the server's.
	Listen func(network, address string) (net.Listener, error)
	// ACME serves listen[].tls.acme certificates and answers challenges
	// (acme.go); nil: no listener has tls.acme.
	ACME ACME
	// Clock tells the Server the time of what it decides at human scale:
	// listener health (Healthy) and its accept retries, when a replaced
	// runtime's idle connections close, the refusal log's pace and the
	// HTTP/2 rapid-reset window. nil is clock.System. NewServer takes it
	// from the runtime it is given; a later Swap does not change it.
	// Requests keep time.Now: their times become socket deadlines that the
	// kernel and the watchdog measure in real time (timeouts.go), and so
	// do the rate limits, which compare them with their epoch.
	Clock clock.Clock
}

// Runtime is everything a request needs, built from one configuration and
// one node set. It is immutable; a reload builds a new one and swaps it in.
type Runtime struct {
	cfg         *configs.Config
	nodes       []*upstream
	pools       [NumClasses]*pool
	fwd         forwarder
	allowHealth []netip.Prefix
	allowCron   []netip.Prefix
	retries     int
	hashClients bool          // the policy is client_ip_hash: requests need the client key
	count5xx    bool          // health.passive.count_5xx
	timeout     time.Duration // timeouts.request
	clientRead  time.Duration
	idle        time.Duration
	wd          *watchdog           // the adopting Server's; nil before NewServer or Swap
	certs       [][]tls.Certificate // per listener index; nil for plain HTTP
	acme        []map[string]bool   // per listener index: its tls.acme domains (acme.go)
	// defaultHosts is, per listener index, the Host given to HTTP/1.0
	// requests without one; nil when the listener has none.
	defaultHosts [][]byte
	deps         Deps
	noNode       RequestRecorder // requests answered by the LB itself
	limits       bodyLimits
	// versionRouting: nodes have fingerprints (health.version.every is not
	// 0), and update routes follow updateNode's (update.go).
	versionRouting bool
	updateNode     string
	proxy          []*proxyPolicy // per listener index; nil: no PROXY header (proxyproto.go)
	proxyTimeout   time.Duration  // the shortest proxy_protocol.timeout; 0 for none
	comp           *compressor    // nil: compression off
	rate           rateLimits     // per-client limiters by class (rate_limits)
}

// NewRuntime builds a runtime; it reads TLS certificate files, so a reload
// picks up renewed certificates.
func NewRuntime(cfg *configs.Config, nodes []NodeSpec, deps Deps) (*Runtime, error) {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if len(nodes) > maxPoolNodes {
		return nil, fmt.Errorf("balancer: %d nodes; at most %d are supported", len(nodes), maxPoolNodes)
	}
	rt := &Runtime{
		cfg:         cfg,
		retries:     *cfg.Balancing.Retries,
		hashClients: cfg.Balancing.Policy == configs.PolicyClientIPHash,
		count5xx:    cfg.Health.Passive.Count5xx,
		timeout:     cfg.Timeouts.Request.D(),
		clientRead:  cfg.Timeouts.ClientRead.D(),
		idle:        cfg.Timeouts.Idle.D(),
		deps:        deps,
		limits:      newBodyLimits(cfg.Limits),
	}
	var err error
	if rt.comp, err = newCompressor(cfg.Compression); err != nil {
		return nil, err
	}
	if rt.fwd.trusted, err = prefixes(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("balancer: trusted_proxies: %w", err)
	}
	rt.fwd.strip = newNameSet(cfg.StripClientIPHeaders)
	if rt.proxy, rt.proxyTimeout, err = newProxyPolicies(cfg.Listen); err != nil {
		return nil, err
	}
	if cfg.Edge.ForwardedPrefix != "" {
		rt.fwd.prefix = []byte(cfg.Edge.ForwardedPrefix)
	}
	// The request's own time.Now is what the limits are given (Deps.Clock).
	if rt.rate, err = newRateLimits(cfg.RateLimits, time.Now()); err != nil {
		return nil, fmt.Errorf("balancer: rate_limits: %w", err)
	}
	if rt.allowHealth, err = prefixes(cfg.Edge.AllowHealthFrom); err != nil {
		return nil, fmt.Errorf("balancer: edge.allow_health_from: %w", err)
	}
	if rt.allowCron, err = prefixes(cfg.Edge.AllowCronFrom); err != nil {
		return nil, fmt.Errorf("balancer: edge.allow_cron_from: %w", err)
	}
	for _, n := range nodes {
		u := rt.newUpstream(n)
		rt.nodes = append(rt.nodes, u)
		rt.versionRouting = rt.versionRouting || u.ver != nil
	}
	if e := cfg.Health.Version.Every; e != nil && *e == 0 {
		rt.versionRouting = false
	}
	rt.updateNode = cfg.Balancing.UpdateNode
	if deps.Metrics != nil {
		rt.noNode = deps.Metrics.Node("")
		for _, u := range rt.nodes {
			u.rec = deps.Metrics.Node(u.name)
		}
	}
	for c := Class(0); c < NumClasses; c++ {
		rt.pools[c] = rt.newPool(c)
	}
	rt.acme = acmeDomains(cfg.Listen)
	for _, l := range cfg.Listen {
		var certs []tls.Certificate
		if l.TLS != nil {
			for _, cp := range l.TLS.Certificates {
				cert, err := tls.LoadX509KeyPair(cp.Cert, cp.Key)
				if err != nil {
					return nil, fmt.Errorf("balancer: listener %s: %w", l.Address, err)
				}
				certs = append(certs, cert)
			}
		}
		rt.certs = append(rt.certs, certs)
		host := l.DefaultHost
		if host == "" && len(certs) > 0 {
			host = certHost(&certs[0])
		}
		if host == "" {
			host = acmeDefaultHost(l)
		}
		var b []byte
		if host != "" {
			b = []byte(host)
		}
		rt.defaultHosts = append(rt.defaultHosts, b)
	}
	return rt, nil
}

// tick is the watchdog interval these timeouts need.
func (rt *Runtime) tick() time.Duration {
	return tickFor(rt.timeout, rt.clientRead, rt.idle, rt.proxyTimeout)
}

func (rt *Runtime) newUpstream(n NodeSpec) *upstream {
	u := &upstream{
		name:   n.Name,
		addr:   n.Address,
		admin:  n.Admin,
		weight: n.Weight,
		hash:   mix64(hashBytes([]byte(n.Name))),
	}
	u.maxConns = int64(rt.cfg.Limits.MaxConnsPerNode)
	if rt.deps.Health != nil {
		u.health = rt.deps.Health.NodeHealth(n.Address)
		u.ver, _ = u.health.(Versioned)
	}
	connect := rt.cfg.Timeouts.Connect.D()
	dial := rt.deps.Dial
	if dial == nil {
		dial = fasthttp.DialTimeout
	}
	u.hc = &fasthttp.HostClient{
		Addr: n.Address,
		Name: "",
		Dial: func(addr string) (net.Conn, error) {
			c, err := dial(addr, connect)
			if err != nil {
				return nil, &dialError{err: err}
			}
			nc := newNodeConn(c)
			if rt.wd != nil {
				rt.wd.watch(&nc.watchedConn)
			}
			return nc, nil
		},
		NoDefaultUserAgentHeader: true,
		MaxConns:                 rt.cfg.Limits.MaxConnsPerNode,
		// The wait queue: AcquireConn waits this long (or what is left of
		// the request) for a connection another request releases.
		MaxConnWaitTimeout:  rt.cfg.Timeouts.Queue.D(),
		MaxIdleConnDuration: rt.cfg.Timeouts.UpstreamIdle.D(),
		ReadBufferSize:      16 << 10,
		WriteBufferSize:     16 << 10,
		// Retries are ours: never a second attempt on the same node.
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	return u
}

func (rt *Runtime) newPool(c Class) *pool {
	p := &pool{class: c, sel: NewSelector(rt.cfg.Balancing.Policy)}
	names, restricted := rt.cfg.Balancing.Pools[c.String()]
	for _, u := range rt.nodes {
		if !restricted || contains(names, u.name) {
			p.nodes = append(p.nodes, u)
		}
	}
	return p
}

// CloseIdle closes idle upstream connections of a runtime that was replaced.
func (rt *Runtime) CloseIdle() {
	for _, u := range rt.nodes {
		u.hc.CloseIdleConnections()
	}
}

// certHost is the first name of cert usable as a Host: its first DNS name
// that is not a wildcard, else its first IP address; "" when it has none.
func certHost(cert *tls.Certificate) string {
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf == nil {
		return ""
	}
	for _, name := range leaf.DNSNames {
		if !strings.Contains(name, "*") {
			return name
		}
	}
	for _, ip := range leaf.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			if a = a.Unmap(); a.Is6() {
				return "[" + a.String() + "]"
			}
			return a.String()
		}
	}
	return ""
}

func prefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := configs.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func allowed(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
