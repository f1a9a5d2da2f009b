package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"go.uber.org/zap"
)

// Options are a Source's dependencies; every field may be zero.
type Options struct {
	// Logger receives the Run loop's logs; nil discards them.
	Logger *zap.Logger
	// HTTPClient talks to the Consul agent. Nil: a private client with a
	// 5s connect timeout whose idle connections are closed when Run returns.
	// Its Timeout, if any, must exceed discovery.consul.wait plus 1/16.
	HTTPClient *http.Client
	// Clock is the time source of backoff waits and status times; nil is
	// clock.System.
	Clock clock.Clock
	// AdminListen is admin.listen; it builds the default check URL of
	// discovery.consul.register.
	AdminListen string
	// Hostname builds the default registration ID; "" asks os.Hostname.
	Hostname string
	// Previous is the Source this one replaces on a reload. When both
	// watch the same service the same way, the new Source starts with the
	// Consul instances the old one last saw (merged with the new static
	// nodes) instead of the static nodes alone, so a reload does not drop
	// Consul nodes until the first answer. Previous may still be running.
	Previous *Source
}

// Status is discovery's part of /status. It is a snapshot; JSON-ready.
type Status struct {
	// Consul reports whether discovery.consul is configured.
	Consul  bool   `json:"consul"`
	Service string `json:"service,omitempty"`
	// Healthy: the last Consul query was answered (always true without
	// Consul). While false, the nodes are the last answered set.
	Healthy bool `json:"healthy"`
	// LastIndex is the X-Consul-Index of the last answer.
	LastIndex uint64 `json:"last_index,omitempty"`
	// LastSuccess is when Consul last answered; zero before the first answer.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the last failed query's error and LastErrorAt its time;
	// both stay after recovery, for the operator's benefit.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failures counts failed queries in a row (0 when healthy).
	Failures    int `json:"failures,omitempty"`
	StaticNodes int `json:"static_nodes"`
	ConsulNodes int `json:"consul_nodes"`
	// Skipped lists Consul instances of the last answer that are not
	// nodes, each with the reason.
	Skipped []string `json:"skipped,omitempty"`
	// Registration is the LB's own registration; nil when not configured.
	Registration *RegistrationStatus `json:"registration,omitempty"`
}

// Source is the merged node set of one configuration. Create it with New,
// start Run once; Nodes, Updates and Status are safe for concurrent use.
// On a reload build a new Source and cancel the old one's Run.
type Source struct {
	log      *zap.Logger
	clock    clock.Clock
	static   []Node
	cfg      *configs.Consul // nil: static only
	query    *healthQuery
	http     *http.Client // closes its idle connections when Run ends, if ownHTTP
	ownHTTP  bool
	reg      *registrar // nil: no self-registration
	updates  chan struct{}
	running  atomic.Bool
	snapshot atomic.Pointer[[]Node]

	mu       sync.Mutex
	status   Status
	insts    []instance // the last answered Consul instances
	answered bool       // insts holds an answer (own or inherited)
}

// New builds a Source from the discovery section and the static nodes.
// It does no I/O: until Run gets Consul's first answer, Nodes is the
// static set.
func New(cfg configs.Discovery, static []configs.Node, opts Options) (*Source, error) {
	st, err := staticNodes(static)
	if err != nil {
		return nil, err
	}
	s := &Source{
		log:     opts.Logger,
		clock:   clock.OrSystem(opts.Clock),
		static:  st,
		updates: make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.log = s.log.Named("discovery")
	nodes := slices.Clone(s.static)
	s.snapshot.Store(&nodes)
	s.status = Status{Healthy: true, StaticNodes: len(s.static)}
	if cfg.Consul == nil {
		return s, nil
	}
	c := *cfg.Consul
	s.cfg = &c
	if c.Service == "" {
		return nil, errors.New("discovery: consul.service is empty")
	}
	if c.Wait <= 0 || c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		return nil, fmt.Errorf("discovery: consul wait %s, backoff %s..%s: defaults not applied", c.Wait.D(), c.BackoffMin.D(), c.BackoffMax.D())
	}
	hc := opts.HTTPClient
	if hc == nil {
		s.ownHTTP = true
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 0, // a blocking query holds the headers back by design
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	cl, err := newConsulClient(c, hc)
	if err != nil {
		return nil, err
	}
	s.http = hc
	s.query = &healthQuery{api: cl.Health(), service: c.Service, tags: c.Tags}
	s.status = Status{Consul: true, Service: c.Service, StaticNodes: len(s.static)}
	if p := opts.Previous; p != nil {
		s.inherit(p)
	}
	if c.Register != nil {
		r, err := newRegistrar(*c.Register, cl.Agent(), opts, s.clock, s.log, c.BackoffMin.D(), c.BackoffMax.D())
		if err != nil {
			return nil, err
		}
		s.reg = r
	}
	return s, nil
}

// inherit seeds the set from the previous Source's last answer if it
// watched the same thing.
func (s *Source) inherit(p *Source) {
	if p.cfg == nil || !sameWatch(p.cfg, s.cfg) {
		return
	}
	p.mu.Lock()
	insts, ok := slices.Clone(p.insts), p.answered
	p.mu.Unlock()
	if !ok {
		return
	}
	merged, skipped := mergeNodes(s.static, insts, s.cfg.AdminTag)
	s.snapshot.Store(&merged)
	s.insts, s.answered = insts, true
	s.status.ConsulNodes = len(merged) - len(s.static)
	s.status.Skipped = skipped
}

// sameWatch reports whether two configurations ask Consul the same question.
func sameWatch(a, b *configs.Consul) bool {
	return a.Address == b.Address && a.Scheme == b.Scheme && a.Service == b.Service &&
		slices.Equal(a.Tags, b.Tags) && a.Datacenter == b.Datacenter && a.Token == b.Token
}

// Nodes returns the current merged set: static nodes in file order, then
// Consul's sorted by name. During a Consul outage it is the last answered
// set. The slice is the caller's.
func (s *Source) Nodes() []Node { return slices.Clone(*s.snapshot.Load()) }

// Updates is signalled whenever Nodes changes. Signals coalesce (capacity
// one): after a receive, read Nodes for the latest set.
func (s *Source) Updates() <-chan struct{} { return s.updates }

// Status returns a snapshot for /status.
func (s *Source) Status() Status {
	s.mu.Lock()
	st := s.status
	st.Skipped = slices.Clone(st.Skipped)
	s.mu.Unlock()
	if s.reg != nil {
		r := s.reg.status()
		st.Registration = &r
	}
	return st
}

// Run follows Consul until ctx is cancelled, then deregisters the LB (if it
// registered it) and returns nil. Without Consul it just waits for ctx.
// Run may be called once per Source.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("discovery: Run was already called on this Source")
	}
	if s.query == nil {
		<-ctx.Done()
		return nil
	}
	if s.ownHTTP {
		defer s.http.CloseIdleConnections()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.reg != nil {
		wg.Go(func() { s.reg.run(ctx) })
	}
	s.watch(ctx)
	return nil
}

// watch is the blocking-query loop. consul/FACTS.md: the index of the last
// answer is the next query's index; a return is not proof of a change; if
// the index goes backwards, start over from 0; never block on index 0 after
// the first call; rate-limit a tight loop.
func (s *Source) watch(ctx context.Context) {
	wait := s.cfg.Wait.D()
	var index uint64
	var failures int
	var last time.Time
	for {
		// The rate limit: queries start at least backoff_min apart, so an
		// agent that answers at once every time cannot spin us.
		if !last.IsZero() {
			if d := s.cfg.BackoffMin.D() - s.clock.Now().Sub(last); d > 0 && !s.sleep(ctx, d) {
				return
			}
		}
		last = s.clock.Now()
		qctx, cancel := context.WithTimeout(ctx, wait+wait/16+10*time.Second)
		ans, err := s.query.ask(qctx, index, wait)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			s.failed(err, failures)
			// After an outage ask without blocking, so a returning agent
			// refreshes the set (and Status) at once.
			index = 0
			if !s.sleep(ctx, backoff(failures, s.cfg.BackoffMin.D(), s.cfg.BackoffMax.D())) {
				return
			}
			continue
		}
		if failures > 0 {
			s.log.Info("consul answers again", zap.Int("failures", failures))
		}
		failures = 0
		switch {
		case ans.index < index:
			s.log.Info("consul index went backwards; starting over", zap.Uint64("from", index), zap.Uint64("to", ans.index))
			index = 0
		default:
			index = ans.index
		}
		s.apply(ans)
	}
}

// failed records a failed query; the set stays as it was.
func (s *Source) failed(err error, failures int) {
	s.mu.Lock()
	s.status.Healthy = false
	s.status.LastError = err.Error()
	s.status.LastErrorAt = s.clock.Now()
	s.status.Failures = failures
	s.mu.Unlock()
	log := s.log.Warn
	if failures > 1 {
		log = s.log.Debug // the first failure of an outage is the news
	}
	log("consul query failed; keeping the last node set", zap.Error(err), zap.Int("failures", failures))
}

// apply merges an answer into the set and publishes a change.
func (s *Source) apply(ans answer) {
	merged, dup := mergeNodes(s.static, ans.insts, s.cfg.AdminTag)
	skipped := append(ans.skipped, dup...)
	s.mu.Lock()
	newSkips := !slices.Equal(skipped, s.status.Skipped)
	s.status.Healthy = true
	s.status.Failures = 0
	s.status.LastIndex = ans.index
	s.status.LastSuccess = s.clock.Now()
	s.status.ConsulNodes = len(merged) - len(s.static)
	s.status.Skipped = skipped
	s.insts, s.answered = ans.insts, true
	old := *s.snapshot.Load()
	changed := !slices.Equal(old, merged)
	if changed {
		s.snapshot.Store(&merged)
	}
	s.mu.Unlock()
	if newSkips && len(skipped) > 0 {
		s.log.Warn("consul instances ignored", zap.Strings("skipped", skipped))
	}
	if changed {
		s.log.Info("node set changed", zap.Int("consul_nodes", len(merged)-len(s.static)), zap.Uint64("index", ans.index))
		select {
		case s.updates <- struct{}{}:
		default:
		}
	}
}

// sleep waits d or until ctx ends, reporting whether to go on.
func (s *Source) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-s.clock.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff is the delay after the n-th failure in a row: min doubling up
// to max, drawn from its upper half so that LBs restarted together spread out.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if half := d / 2; half > 0 {
		d = half + rand.N(half+1)
	}
	return max(d, lo)
}

// defaultID is the registration ID when none is configured: name-hostname.
func defaultID(name, hostname string) string {
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	if hostname == "" {
		return name
	}
	return name + "-" + cleanName(strings.ToLower(hostname))
}
