package daemon

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sync"

	"github.com/mosparo-lb/mosparo-lb/admin"
	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/cssproxy"
	"github.com/mosparo-lb/mosparo-lb/discovery"
	"github.com/mosparo-lb/mosparo-lb/health"
	"go.uber.org/zap"
)

// components are the long-running parts around the data plane. Each runs
// under its own child context so a reload can replace one without touching
// the others.
type components struct {
	log *zap.Logger

	mu       sync.Mutex
	ctx      context.Context // set by start; nil before
	wg       *sync.WaitGroup
	disc     *discovery.Source
	stopDisc context.CancelFunc
	hcfg     configs.Health
	checker  *health.Checker
	stopHC   context.CancelFunc
	changed  chan struct{}

	csscfg  configs.CSSCache
	css     *cssproxy.Proxy // nil when css_cache.backend is empty
	stopCSS context.CancelFunc
}

func newComponents(cfg *configs.Config, log *zap.Logger) (*components, error) {
	c := &components{log: log, hcfg: cfg.Health, changed: make(chan struct{}, 1)}
	var err error
	if c.disc, err = c.newDiscovery(cfg, nil); err != nil {
		return nil, err
	}
	c.checker = c.newChecker(cfg.Health)
	c.syncTargets()
	if c.css, err = c.newCSS(cfg.CSSCache); err != nil {
		return nil, err
	}
	c.csscfg = cfg.CSSCache
	return c, nil
}

func (c *components) newDiscovery(cfg *configs.Config, prev *discovery.Source) (*discovery.Source, error) {
	host, _ := os.Hostname()
	return discovery.New(cfg.Discovery, cfg.Nodes, discovery.Options{
		Logger: c.log.Named("discovery"), AdminListen: cfg.Admin.Listen, Hostname: host, Previous: prev,
	})
}

// watchDiscovery forwards the source's updates to the rebuild loop.
func (c *components) watchDiscovery(src *discovery.Source) func(context.Context) error {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- src.Run(ctx) }()
		for {
			select {
			case err := <-errc:
				return err
			case <-src.Updates():
				select {
				case c.changed <- struct{}{}:
				default:
				}
			}
		}
	}
}

func (c *components) newCSS(cc configs.CSSCache) (*cssproxy.Proxy, error) {
	if cc.Backend == "" {
		return nil, nil
	}
	return cssproxy.New(cc, cssproxy.Options{Logger: c.log.Named("cssproxy")})
}

func (c *components) newChecker(h configs.Health) *health.Checker {
	return health.New(h, health.Options{Logger: c.log})
}

// start launches every component under ctx; wg tracks them.
func (c *components) start(ctx context.Context, wg *sync.WaitGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx, c.wg = ctx, wg
	c.stopHC = c.spawn("health", c.checker.Run)
	c.stopDisc = c.spawn("discovery", c.watchDiscovery(c.disc))
	if c.css != nil {
		c.stopCSS = c.spawn("cssproxy", c.css.Run)
	}
}

// spawn runs f in its own child context; the returned func stops it.
func (c *components) spawn(name string, f func(context.Context) error) context.CancelFunc {
	ctx, cancel := context.WithCancel(c.ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := f(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("component stopped", zap.String("component", name), zap.Error(err))
		}
	}()
	return cancel
}

// reconfigure applies a new configuration to the components. The health
// checker is replaced only when the health: section changed, and then the
// operators' drain and maintenance states carry over.
func (c *components) reconfigure(cfg *configs.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !reflect.DeepEqual(c.csscfg, cfg.CSSCache) {
		css, err := c.newCSS(cfg.CSSCache)
		if err != nil {
			return err
		}
		if c.stopCSS != nil {
			c.stopCSS()
			c.stopCSS = nil
		}
		c.css, c.csscfg = css, cfg.CSSCache
		if css != nil && c.ctx != nil {
			c.stopCSS = c.spawn("cssproxy", css.Run)
		}
	}
	disc, err := c.newDiscovery(cfg, c.disc)
	if err != nil {
		return err
	}
	if c.stopDisc != nil {
		c.stopDisc()
	}
	c.disc = disc
	if c.ctx != nil {
		c.stopDisc = c.spawn("discovery", c.watchDiscovery(disc))
	}
	if !reflect.DeepEqual(c.hcfg, cfg.Health) {
		old := c.checker
		c.checker = c.newChecker(cfg.Health)
		c.hcfg = cfg.Health
		c.syncTargetsLocked()
		for _, ns := range old.Snapshot() {
			if ns.Operator != 0 {
				_ = c.checker.SetOperatorState(ns.Name, ns.Operator)
			}
		}
		if c.ctx != nil {
			c.stopHC()
			c.stopHC = c.spawn("health", c.checker.Run)
		}
	}
	return nil
}

func (c *components) nodeSpecs() []balancer.NodeSpec {
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes := c.disc.Nodes()
	out := make([]balancer.NodeSpec, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, balancer.NodeSpec{Name: n.Name, Address: n.Address, Weight: n.Weight, Admin: n.Admin})
	}
	return out
}

func (c *components) nodesChanged() <-chan struct{} { return c.changed }

// syncTargets tells the health checker the current node set.
func (c *components) syncTargets() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncTargetsLocked()
}

func (c *components) syncTargetsLocked() {
	nodes := c.disc.Nodes()
	ts := make([]health.Target, 0, len(nodes))
	for _, n := range nodes {
		ts = append(ts, health.Target{Name: n.Name, Address: n.Address, Host: n.Host, Weight: n.Weight, Admin: n.Admin})
	}
	c.checker.SetTargets(ts)
}

func (c *components) healthSource() balancer.HealthSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	return healthSource{c.checker}
}

func (c *components) edgeCache() balancer.EdgeCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.css == nil {
		return nil
	}
	return c.css
}

func (c *components) poolHealthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checker.PoolHealthy()
}

func (c *components) addStatus(st map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.css != nil {
		st["css_cache"] = c.css.Stats()
	}
	st["discovery"] = c.disc.Status()
}

// setNodeState applies an operator action from the admin API or CLI.
func (c *components) setNodeState(name, action string) error {
	s := map[string]health.State{"drain": health.Draining, "maintenance": health.Maintenance, "ready": health.Up}[action]
	if s == 0 {
		return fmt.Errorf("unknown action %q", action)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checker.SetOperatorState(name, s)
}

// nodeView is one node in /status: health's view and the data plane's counters.
type nodeView struct {
	health.NodeStatus
	InFlight int64  `json:"in_flight"`
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
}

func (c *components) nodeStatus(stats []balancer.NodeStat) any {
	c.mu.Lock()
	snap := c.checker.Snapshot()
	c.mu.Unlock()
	byAddr := map[string]balancer.NodeStat{}
	for _, s := range stats {
		byAddr[s.Address] = s
	}
	out := make([]nodeView, 0, len(snap))
	for _, ns := range snap {
		s := byAddr[ns.Address]
		out = append(out, nodeView{NodeStatus: ns, InFlight: s.InFlight, Requests: s.Requests, Failures: s.Failures})
	}
	return out
}

// healthSource adapts the checker to the balancer's view, mapping an
// unknown address to a nil interface rather than a typed nil pointer.
type healthSource struct{ c *health.Checker }

func (h healthSource) NodeHealth(addr string) balancer.NodeHealth {
	if n := h.c.Node(addr); n != nil {
		return n
	}
	return nil
}

// gauges collects the scrape-time metrics of every component.
func (c *components) gauges(stats []balancer.NodeStat) admin.Gauges {
	c.mu.Lock()
	snap := c.checker.Snapshot()
	healthy := c.checker.PoolHealthy()
	css := c.css
	c.mu.Unlock()
	inflight := map[string]int64{}
	for _, s := range stats {
		inflight[s.Address] = s.InFlight
	}
	g := admin.Gauges{PoolHealthy: healthy}
	for _, ns := range snap {
		g.Nodes = append(g.Nodes, admin.NodeGauge{Name: ns.Name, State: ns.State.String(), InFlight: inflight[ns.Address],
			Ejections: ns.Ejections, Weight: ns.EffectiveWeight})
	}
	if css != nil {
		st := css.Stats()
		g.CSS = &admin.CSSGauge{Hits: st.Hits - st.Redirects - st.NotModified, Redirects: st.Redirects, NotModified: st.NotModified, Misses: st.Misses,
			Errors: st.Errors, Entries: int64(st.Entries), Bytes: int64(st.Bytes)}
	}
	return g
}
