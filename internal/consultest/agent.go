package consultest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configure a fake agent. The zero value is a dev-like agent named
// "fake-agent" at 127.0.0.1 in dc1 without ACLs, on a random loopback port.
type Options struct {
	// Clock drives TTLs, HTTP check runs and blocking waits. Default SystemClock.
	Clock Clock
	// Addr is the listen address. Default "127.0.0.1:0".
	Addr string
	// NodeName and NodeAddress describe the agent's own catalog node.
	// Defaults "fake-agent" and "127.0.0.1".
	NodeName    string
	NodeAddress string
	// Datacenter is the agent's datacenter; a query for any other gets
	// 500 "No path to datacenter". Default "dc1".
	Datacenter string
	// Token, when set, turns ACLs on with default deny: reads without a
	// token see nothing (X-Consul-Results-Filtered-By-ACLs: true), a wrong
	// token gets 403 "ACL not found", writes need this token.
	Token string
	// StartIndex is the raft index of a fresh agent (and after Reset). Default 10.
	StartIndex uint64
}

// Request is one HTTP request the agent received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	// Token is what X-Consul-Token (or ?token=) carried.
	Token string
}

// Agent is a running fake Consul agent. Create it with New, end it with
// Close; Stop and Start take its listener down and up on the same address.
type Agent struct {
	opts  Options
	clock Clock

	mu       sync.Mutex
	index    uint64            // the raft index of the last write
	svcIndex map[string]uint64 // per service name: index of its last change
	nodes    map[string]*node
	services map[svcKey]*service
	checks   map[checkKey]*check
	kv       kvState       // kv.go, session.go
	changed  chan struct{} // closed and replaced on every write
	resetGen uint64        // bumped by Reset, which abandons blocked queries
	blocked  int           // queries waiting right now
	activity chan struct{} // closed and replaced on each request, write and blocked change
	requests []Request
	closed   bool

	addr    string
	srv     *http.Server
	down    chan struct{} // closed by Stop; blocked handlers return
	serving sync.WaitGroup
	inReq   sync.WaitGroup

	runs        sync.WaitGroup // HTTP check probes in flight
	runCtx      context.Context
	cancelRuns  context.CancelFunc
	checkClient *http.Client
}

// New starts a fake agent listening on opts.Addr.
func New(opts Options) (*Agent, error) {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.NodeName == "" {
		opts.NodeName = "fake-agent"
	}
	if opts.NodeAddress == "" {
		opts.NodeAddress = "127.0.0.1"
	}
	if opts.Datacenter == "" {
		opts.Datacenter = "dc1"
	}
	if opts.StartIndex == 0 {
		opts.StartIndex = 10
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		opts:       opts,
		clock:      opts.Clock,
		addr:       opts.Addr,
		runCtx:     ctx,
		cancelRuns: cancel,
		// Keep-alives off: probes leave no idle connections behind.
		checkClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	a.wipe()
	if err := a.Start(); err != nil {
		cancel()
		return nil, err
	}
	return a, nil
}

// wipe sets the catalog to a fresh agent's: its own node with a passing
// serfHealth and nothing else.
func (a *Agent) wipe() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.checks {
		a.dropCheck(c)
	}
	a.resetGen++
	a.index = a.opts.StartIndex - 1
	a.svcIndex = map[string]uint64{}
	a.nodes = map[string]*node{}
	a.services = map[svcKey]*service{}
	a.checks = map[checkKey]*check{}
	a.wipeKV()
	if a.changed != nil {
		close(a.changed)
	}
	a.changed = make(chan struct{})
	if a.activity == nil {
		a.activity = make(chan struct{})
	}
	a.addNode(a.opts.NodeName, a.opts.NodeAddress)
}

// Addr is the agent's host:port; it stays the same across Stop and Start.
func (a *Agent) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// URL is "http://" + Addr().
func (a *Agent) URL() string { return "http://" + a.Addr() }

// Start brings the listener (back) up on the agent's address.
func (a *Agent) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("consultest: agent is closed")
	}
	if a.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("consultest: listen: %w", err)
	}
	a.addr = ln.Addr().String()
	a.down = make(chan struct{})
	a.srv = &http.Server{Handler: a.routes(a.down), ReadHeaderTimeout: 10 * time.Second}
	srv := a.srv
	a.serving.Add(1)
	go func() {
		defer a.serving.Done()
		_ = srv.Serve(ln) // returns http.ErrServerClosed on Stop
	}()
	return nil
}

// Stop closes the listener and every open connection, as if the agent
// process died: in-flight blocking queries fail, new ones are refused. The
// catalog is kept for Start.
func (a *Agent) Stop() {
	a.mu.Lock()
	srv, down := a.srv, a.down
	a.srv = nil
	a.mu.Unlock()
	if srv == nil {
		return
	}
	close(down)
	_ = srv.Close()
	a.serving.Wait()
	a.inReq.Wait()
}

// Reset wipes the catalog back to a fresh agent's and sends the index back
// to StartIndex, as a restarted dev agent or a restored snapshot does.
// Blocked queries are abandoned and return at once with the lower index.
func (a *Agent) Reset() {
	a.wipe()
}

// Close stops the agent for good and waits for its goroutines.
func (a *Agent) Close() {
	a.Stop()
	a.mu.Lock()
	a.closed = true
	for _, c := range a.checks {
		if c.stopTimer != nil {
			c.stopTimer()
			c.stopTimer = nil
		}
	}
	a.wipeKV()
	a.mu.Unlock()
	a.cancelRuns()
	a.runs.Wait()
	a.checkClient.CloseIdleConnections()
}

// Register registers a service on the agent's own node, as PUT
// /v1/agent/service/register does.
func (a *Agent) Register(reg Registration) error {
	return a.RegisterOn(a.opts.NodeName, a.opts.NodeAddress, reg)
}

// RegisterOn registers a service on another catalog node (created with a
// passing serfHealth if new), standing in for a second agent in the cluster.
func (a *Agent) RegisterOn(nodeName, nodeAddress string, reg Registration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addNode(nodeName, nodeAddress)
	return a.register(nodeName, reg)
}

// Deregister removes a service of the agent's own node.
func (a *Agent) Deregister(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.deregister(a.opts.NodeName, id)
}

// UpdateTTL sets a TTL check of the agent's own node, as
// /v1/agent/check/update does.
func (a *Agent) UpdateTTL(checkID, status, output string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.updateTTL(a.opts.NodeName, checkID, status, output)
}

// SetNodeHealth sets a node's serfHealth (critical: the node failed), which
// applies to every service on it.
func (a *Agent) SetNodeHealth(nodeName, status string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.checks[checkKey{nodeName, "serfHealth"}]
	if !ok {
		return fmt.Errorf("consultest: unknown node %q", nodeName)
	}
	out := "Agent alive and reachable"
	if status != Passing {
		out = "Agent not live or unreachable"
	}
	a.setStatus(c, status, out)
	return nil
}

// Maintenance turns a service's maintenance mode on or off (id "" for the
// node), as PUT /v1/agent/service/maintenance/<ID> does.
func (a *Agent) Maintenance(id string, enable bool, reason string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maintenance(a.opts.NodeName, id, enable, reason)
}

// Service returns a service of the agent's own node as registered (ID and
// Weights filled in).
func (a *Agent) Service(id string) (Registration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.services[svcKey{a.opts.NodeName, id}]
	if !ok {
		return Registration{}, false
	}
	return s.reg, true
}

// CheckStatus returns a check of the agent's own node.
func (a *Agent) CheckStatus(checkID string) (status, output string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.checks[checkKey{a.opts.NodeName, checkID}]
	if !ok {
		return "", "", false
	}
	return c.status, c.output, true
}

// Index is the current raft index.
func (a *Agent) Index() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.index
}

// ServiceIndex is the X-Consul-Index a query for the named service returns now.
func (a *Agent) ServiceIndex(name string) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.serviceIndex(name)
}

// serviceIndex: a service never written since the start (or Reset) reports
// the start index, so it is never 0 (FACTS.md: never block on index 0).
// Caller holds a.mu.
func (a *Agent) serviceIndex(name string) uint64 {
	if i, ok := a.svcIndex[name]; ok {
		return i
	}
	return a.opts.StartIndex
}

// Requests returns a copy of the request log.
func (a *Agent) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Request(nil), a.requests...)
}

// CountRequests counts logged requests whose path starts with prefix.
func (a *Agent) CountRequests(prefix string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.countLocked(prefix)
}

// countLocked: caller holds a.mu.
func (a *Agent) countLocked(prefix string) int {
	n := 0
	for _, r := range a.requests {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// Blocked is how many queries are waiting for a change right now.
func (a *Agent) Blocked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.blocked
}

// AwaitBlocked returns once at least n queries are blocked, so a test can
// change state knowing the client is already waiting.
func (a *Agent) AwaitBlocked(ctx context.Context, n int) error {
	return a.await(ctx, func() bool { return a.blocked >= n }, func() string {
		return fmt.Sprintf("%d blocked queries, want %d", a.blocked, n)
	})
}

// AwaitRequests returns once at least n requests with a path starting with
// prefix have arrived.
func (a *Agent) AwaitRequests(ctx context.Context, prefix string, n int) error {
	return a.await(ctx, func() bool { return a.countLocked(prefix) >= n }, func() string {
		return fmt.Sprintf("%d requests to %s, want %d", a.countLocked(prefix), prefix, n)
	})
}

// Activity returns a channel closed at the next request, write or
// blocked-count change; take it before checking a condition, then wait on it.
func (a *Agent) Activity() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.activity
}

// await waits for cond (run under a.mu) without polling: every request and
// every blocked-count change wakes it.
func (a *Agent) await(ctx context.Context, cond func() bool, describe func() string) error {
	for {
		a.mu.Lock()
		ok, ch := cond(), a.activity
		var msg string
		if !ok {
			msg = describe()
		}
		a.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("consultest: %s: %w", msg, ctx.Err())
		}
	}
}

// touch wakes await. Caller holds a.mu.
func (a *Agent) touch() {
	close(a.activity)
	a.activity = make(chan struct{})
}

// setBlocked adjusts the blocked count and wakes await. Caller holds a.mu.
func (a *Agent) setBlocked(delta int) {
	a.blocked += delta
	a.touch()
}
