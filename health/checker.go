package health

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"go.uber.org/zap"
)

// Errors callers branch on.
var (
	// ErrUnknownNode: no configured node has that name.
	ErrUnknownNode = errors.New("unknown node")
	// ErrOperatorState: an operator may only set Maintenance, Draining or
	// Up (ready).
	ErrOperatorState = errors.New("operator state must be maintenance, draining or up")
)

// Options are the Checker's dependencies. Zero fields take the defaults.
type Options struct {
	// Logger receives state changes and ejections; nil logs nothing.
	Logger *zap.Logger
	// Clock tells the time of checks, windows and changes; nil is
	// clock.System. Probe timers run in real time.
	Clock clock.Clock
	// Client sends probes; nil is HTTPClient{} (fresh connection per probe;
	// every probe is bounded by health.timeout).
	Client ProbeClient
	// Rand returns a uniform integer in [0, n) for n > 0; it spreads checks
	// (health.jitter). nil is math/rand/v2.Int64N.
	Rand func(n int64) int64
	// OnChange, when set, is told every change of a node's effective
	// state (checks, ejections, operator actions), for the status page's
	// event list. It runs with the Checker locked: it must be quick and
	// must not call the Checker.
	OnChange func(Change)
}

// Change is one change of a node's effective state, as OnChange sees it.
type Change struct {
	Node, Address string
	From, To      State
	// Reason is the last check's explanation; Ejected and Operator say
	// whether a passive ejection or an operator's state is in force.
	Reason   string
	Ejected  bool
	Operator State
	At       time.Time
}

// Checker owns the health of every configured node: it runs the active
// probes, takes passive feedback through Node.Observe and the operator's
// states through SetOperatorState. Create it with New; it is safe for
// concurrent use.
type Checker struct {
	cfg    atomic.Pointer[params] // replaced whole by Reconfigure
	log    *zap.Logger
	now    func() time.Time
	client ProbeClient
	rnd    func(int64) int64
	change func(Change) // Options.OnChange; nil when unset

	mu     sync.Mutex
	nodes  []*Node          // in SetTargets order
	byAddr map[string]*Node // the same nodes by address
	// versionsLogged and versionsMixed: what setVersion logged last.
	versionsLogged string
	versionsMixed  bool

	wake    chan struct{} // tells Run the schedule changed
	changed chan struct{} // Changed()
	healthy atomic.Bool   // PoolHealthy()
	running atomic.Bool
}

// New returns a Checker for cfg with no nodes; call SetTargets, then Run.
// cfg must have been loaded through configs (ErrNoDefaults otherwise).
func New(cfg configs.Health, opts Options) (*Checker, error) {
	p, err := newParams(cfg)
	if err != nil {
		return nil, err
	}
	c := &Checker{
		log:     opts.Logger,
		now:     clock.OrSystem(opts.Clock).Now,
		client:  opts.Client,
		rnd:     opts.Rand,
		change:  opts.OnChange,
		byAddr:  map[string]*Node{},
		wake:    make(chan struct{}, 1),
		changed: make(chan struct{}, 1),
	}
	c.cfg.Store(&p)
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.Named("health")
	if c.client == nil {
		c.client = HTTPClient{}
	}
	if c.rnd == nil {
		c.rnd = rand.Int64N
	}
	return c, nil
}

// params returns the configuration in force; callers read it once per
// event so one event never mixes two configurations.
func (c *Checker) params() *params { return c.cfg.Load() }

// Reconfigure applies a new health: section on reload without losing any
// node's state, counters, ejection, ramp or operator state. Schedules move
// to the new intervals at the latest one new delay from now; passive
// failure counts start again from zero. A section that did not go through
// configs is refused (ErrNoDefaults) and the one in force kept.
func (c *Checker) Reconfigure(cfg configs.Health) error {
	p, err := newParams(cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.Store(&p)
	now := c.now()
	for _, n := range c.nodes {
		n.fails.Store(0)
		if next := now.Add(jittered(n.m.delay(&p), p.jitter, c.rnd)); next.Before(n.m.nextProbe) {
			n.m.nextProbe = next
		}
	}
	c.log.Info("health configuration replaced")
	c.poke()
	return nil
}

// SetTargets replaces the node set (on start, reload and discovery
// updates). A node whose address was already known keeps everything: its
// state, counters, ejection, slow-start ramp and operator state, so a
// drain survives a reload; name, Host, weight and admin flag are updated.
// A new node starts Up if no kept node is Up (the LB is starting, or
// nothing serves anyway), Down otherwise; either way it is probed at once
// and its first answer decides (doc.go). A repeated address is ignored. A
// set with a weight outside 1..configs.MaxNodeWeight is refused
// (ErrNoDefaults) and the set in force kept.
func (c *Checker) SetTargets(ts []Target) error {
	if err := checkTargets(ts); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	start := Up
	for _, t := range ts {
		if n := c.byAddr[t.Address]; n != nil && n.m.effective() == Up {
			start = Down
			break
		}
	}
	nodes := make([]*Node, 0, len(ts))
	byAddr := make(map[string]*Node, len(ts))
	for _, t := range ts {
		if byAddr[t.Address] != nil {
			c.log.Warn("node address repeated; ignored", zap.String("node", t.Name), zap.String("address", t.Address))
			continue
		}
		n := c.byAddr[t.Address]
		if n == nil {
			n = &Node{c: c, address: t.Address, m: newMachine(start, now)}
			n.publish()
			c.log.Info("node added", zap.String("node", t.Name), zap.String("address", t.Address), zap.Stringer("state", start))
		}
		n.target = t
		n.weight.Store(int64(t.Weight))
		nodes = append(nodes, n)
		byAddr[t.Address] = n
	}
	for _, n := range c.nodes {
		if byAddr[n.address] != n {
			n.removed = true
			c.log.Info("node removed", zap.String("node", n.target.Name), zap.String("address", n.address))
		}
	}
	c.nodes, c.byAddr = nodes, byAddr
	c.updatePool()
	c.signal()
	c.poke()
	return nil
}

// Node returns the node with that address, nil if none is configured.
func (c *Checker) Node(address string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byAddr[address]
}

// SetOperatorState sets what an operator wants of the node called name:
// Maintenance (no traffic), Draining (in-flight requests finish, no new
// ones; the balancer decides the details) or Up ("ready": back to what the
// checks say, with a slow-start ramp if that is Up). Checks go on in every
// operator state, so /status keeps showing the node's own health.
func (c *Checker) SetOperatorState(name string, s State) error {
	if s != Maintenance && s != Draining && s != Up {
		return fmt.Errorf("health: %s: %w", s, ErrOperatorState)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.target.Name != name {
			continue
		}
		old := n.m.effective()
		n.m.operator = s
		if s == Up {
			n.m.operator = 0
		}
		c.log.Info("operator state set", zap.String("node", name), zap.Stringer("state", s))
		c.publish(n, old, c.now())
		return nil
	}
	return fmt.Errorf("health: node %q: %w", name, ErrUnknownNode)
}

// PoolHealthy reports whether at least one node is Up: the hook VRRP
// priority tracking polls. It is one atomic load.
func (c *Checker) PoolHealthy() bool { return c.healthy.Load() }

// Changed is signalled after any change of a node's effective state or of
// the node set. Signals coalesce (capacity one, never blocking the
// checker), so a reader re-reads everything it cares about; meant for one
// reader.
func (c *Checker) Changed() <-chan struct{} { return c.changed }

// publish stores n's effective state after an event that started from
// old, logs and signals a change. Caller holds c.mu.
func (c *Checker) publish(n *Node, old State, now time.Time) {
	changed := n.m.settle(c.params(), old, now)
	n.publish()
	if !changed {
		return
	}
	c.log.Info("node state changed", zap.String("node", n.target.Name), zap.Stringer("from", old),
		zap.Stringer("to", n.m.effective()), zap.String("reason", n.m.reason))
	if c.change != nil {
		c.change(Change{Node: n.target.Name, Address: n.address, From: old, To: n.m.effective(), Reason: n.m.reason,
			Ejected: n.m.ejected(), Operator: n.m.operator, At: now})
	}
	c.updatePool()
	c.signal()
}

// updatePool recomputes PoolHealthy. Caller holds c.mu.
func (c *Checker) updatePool() {
	up := false
	for _, n := range c.nodes {
		if n.m.effective() == Up {
			up = true
			break
		}
	}
	if c.healthy.Swap(up) != up {
		c.log.Info("pool health changed", zap.Bool("healthy", up))
	}
}

func (c *Checker) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// poke wakes Run to recompute its schedule.
func (c *Checker) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
