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
	"github.com/mosparo-lb/mosparo-lb/cron"
	"github.com/mosparo-lb/mosparo-lb/cssproxy"
	"github.com/mosparo-lb/mosparo-lb/discovery"
	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/vip"
	"go.uber.org/zap"
)

// components are the long-running parts around the data plane. Each runs
// under its own child context so a reload can replace one without touching
// the others.
type components struct {
	log     *zap.Logger
	changed chan struct{} // node set changed: rebuild the runtime

	mu   sync.Mutex
	ctx  context.Context // set by start; nil before
	wg   *sync.WaitGroup
	cfg  *configs.Config // the configuration the components run with
	host string

	disc     *discovery.Source
	stopDisc func()
	checker  *health.Checker
	stopHC   func()
	css      *cssproxy.Proxy // nil when css_cache.backend is empty
	stopCSS  func()
	vips     *vip.Manager // nil without vrrp.instances
	stopVIP  func()
	cron     *cron.Runner // nil when cron is disabled
	lock     *cron.ConsulLock
	stopCron func()
}

func newComponents(cfg *configs.Config, log *zap.Logger) (*components, error) {
	c := &components{log: log, changed: make(chan struct{}, 1), cfg: cfg}
	c.host, _ = os.Hostname()
	var err error
	if c.disc, err = c.newDiscovery(cfg, nil); err != nil {
		return nil, err
	}
	c.checker = c.newChecker(cfg.Health)
	c.syncTargetsLocked()
	if c.css, err = c.newCSS(cfg.CSSCache); err != nil {
		return nil, err
	}
	if len(cfg.VRRP.Instances) > 0 {
		c.vips, err = vip.New(cfg.VRRP, vip.Options{Logger: log.Named("vip"), PoolHealthy: c.checker.PoolHealthy,
			CSSCacheReachable: c.cssReachable})
		if err != nil {
			return nil, err
		}
	}
	if err := c.newCron(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *components) newDiscovery(cfg *configs.Config, prev *discovery.Source) (*discovery.Source, error) {
	return discovery.New(cfg.Discovery, cfg.Nodes, discovery.Options{
		Logger: c.log, AdminListen: cfg.Admin.Listen, Hostname: c.host, Previous: prev,
	})
}

func (c *components) newChecker(h configs.Health) *health.Checker {
	return health.New(h, health.Options{Logger: c.log})
}

func (c *components) newCSS(cc configs.CSSCache) (*cssproxy.Proxy, error) {
	if cc.Backend == "" {
		return nil, nil
	}
	return cssproxy.New(cc, cssproxy.Options{Logger: c.log.Named("cssproxy")})
}

// newCron builds the web-cron runner and what decides whether this LB runs
// it: the VRRP master of an instance, a Consul lock, or nothing (standalone).
func (c *components) newCron(cfg *configs.Config) error {
	c.cron, c.lock = nil, nil
	if !cfg.Cron.Enabled {
		return nil
	}
	mode, instance := cfg.CronMode()
	var leader cron.Leader
	switch mode {
	case configs.CronModeVRRP:
		vips := c.vips
		leader = cron.LeaderFunc(func() bool { return vips != nil && vips.IsMaster(instance) })
	case configs.CronModeConsul:
		cc := cfg.Discovery.Consul
		lock, err := cron.NewConsulLock(cron.ConsulLockOptions{Address: cc.Address, Scheme: cc.Scheme, Token: cc.Token,
			Datacenter: cc.Datacenter, Key: cfg.Cron.ConsulLock, Holder: c.host, Logger: c.log.Named("cron")})
		if err != nil {
			return err
		}
		c.lock, leader = lock, lock
	}
	r, err := cron.New(cfg.Cron, cron.Options{Logger: c.log.Named("cron"), Leader: leader,
		LeaderName: mode + " " + instance, Nodes: cron.NodesFunc(c.cronCandidates)})
	if err != nil {
		return err
	}
	c.cron = r
	return nil
}

// cronCandidates are the nodes as the cron sees them: health's state plus
// each node's host: setting.
func (c *components) cronCandidates() []cron.Candidate {
	c.mu.Lock()
	snap := c.checker.Snapshot()
	hosts := map[string]string{}
	for _, n := range c.disc.Nodes() {
		hosts[n.Address] = n.Host
	}
	c.mu.Unlock()
	out := make([]cron.Candidate, 0, len(snap))
	for _, s := range snap {
		out = append(out, cron.Candidate{Name: s.Name, Address: s.Address, Host: hosts[s.Address], Admin: s.Admin, Up: s.State == health.Up})
	}
	return out
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
	if c.vips != nil {
		c.stopVIP = c.spawn("vip", c.vips.Run)
	}
	c.startCron()
}

func (c *components) startCron() {
	if c.lock != nil {
		stopLock := c.spawn("cron lock", c.lock.Run)
		stopRunner := c.spawn("cron", c.cron.Run)
		c.stopCron = func() { stopRunner(); stopLock() }
	} else if c.cron != nil {
		c.stopCron = c.spawn("cron", c.cron.Run)
	}
}

// spawn runs f in its own child context; the returned func stops it and
// waits until it has returned.
func (c *components) spawn(name string, f func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		if err := f(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("component stopped", zap.String("component", name), zap.Error(err))
		}
	}()
	return func() { cancel(); <-done }
}

// watchDiscovery runs the source and forwards its updates to the rebuild loop.
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

// releaseVIPs stops VRRP first on shutdown: a priority-0 advert lets the
// peer take over within Skew_Time while this LB still finishes its
// in-flight requests.
func (c *components) releaseVIPs() {
	c.mu.Lock()
	stop := c.stopVIP
	c.stopVIP = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// reconfigure applies a new configuration to the components. Each one is
// replaced only when its section changed. VRRP changes need a restart
// (replacing instances would drop the VIP); that is reported, not hidden.
func (c *components) reconfigure(cfg *configs.Config) (warnings []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.cfg
	var css *cssproxy.Proxy
	cssChanged := !reflect.DeepEqual(old.CSSCache, cfg.CSSCache)
	if cssChanged {
		if css, err = c.newCSS(cfg.CSSCache); err != nil {
			return nil, err
		}
	}
	disc, err := c.newDiscovery(cfg, c.disc)
	if err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(old.VRRP, cfg.VRRP) {
		warnings = append(warnings, "vrrp: changes take effect after a restart; the running instances are kept")
	}
	cronChanged := !reflect.DeepEqual(old.Cron, cfg.Cron) || !reflect.DeepEqual(old.Discovery, cfg.Discovery)
	// Everything that can fail has been built; now swap.
	c.swap(&c.stopDisc, "discovery", c.watchDiscovery(disc))
	c.disc = disc
	if cssChanged {
		c.css = css
		if css != nil {
			c.swap(&c.stopCSS, "cssproxy", css.Run)
		} else {
			c.swap(&c.stopCSS, "", nil)
		}
	}
	if !reflect.DeepEqual(old.Health, cfg.Health) {
		// Every node keeps its state, ejection and operator drain.
		c.checker.Reconfigure(cfg.Health)
	}
	if cronChanged {
		if c.stopCron != nil {
			c.stopCron()
			c.stopCron = nil
		}
		if err := c.newCron(cfg); err != nil {
			warnings = append(warnings, "cron: "+err.Error())
		} else if c.ctx != nil {
			c.startCron()
		}
	}
	c.cfg = cfg
	return warnings, nil
}

// swap stops what *stop runs and starts f in its place (nil f: nothing).
func (c *components) swap(stop *func(), name string, f func(context.Context) error) {
	if *stop != nil {
		(*stop)()
		*stop = nil
	}
	if f != nil && c.ctx != nil {
		*stop = c.spawn(name, f)
	}
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

// cssReachable is the VRRP view of the shared cache; a reload may replace
// the proxy, so it is looked up on every poll.
func (c *components) cssReachable() bool {
	c.mu.Lock()
	css := c.css
	c.mu.Unlock()
	return css == nil || css.Reachable()
}

func (c *components) addStatus(st map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.css != nil {
		st["css_cache"] = c.css.Stats()
	}
	st["discovery"] = c.disc.Status()
	st["versions"] = c.checker.Versions()
	if c.vips != nil {
		st["vrrp"] = c.vips.Status()
	}
	if c.cron != nil {
		st["cron"] = c.cron.Status()
	}
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
	Queued   int64  `json:"queued"`
	// QueueTimeouts counts requests answered 503 after timeouts.queue.
	QueueTimeouts uint64 `json:"queue_timeouts"`
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
		out = append(out, nodeView{NodeStatus: ns, InFlight: s.InFlight, Requests: s.Requests, Failures: s.Failures,
			Queued: s.Queued, QueueTimeouts: s.QueueTimeouts})
	}
	return out
}

// gauges collects the scrape-time metrics of every component.
func (c *components) gauges(stats []balancer.NodeStat) admin.Gauges {
	c.mu.Lock()
	snap := c.checker.Snapshot()
	healthy := c.checker.PoolHealthy()
	css, vips, cr := c.css, c.vips, c.cron
	c.mu.Unlock()
	byAddr := map[string]balancer.NodeStat{}
	for _, s := range stats {
		byAddr[s.Address] = s
	}
	g := admin.Gauges{PoolHealthy: healthy, VersionsMixed: c.checker.Versions().Mixed}
	for _, ns := range snap {
		s := byAddr[ns.Address]
		g.Nodes = append(g.Nodes, admin.NodeGauge{Name: ns.Name, State: ns.State.String(), InFlight: s.InFlight,
			Ejections: ns.Ejections, Weight: ns.EffectiveWeight, Queued: s.Queued, QueueTimeouts: s.QueueTimeouts,
			Version: ns.Version.String()})
	}
	if css != nil {
		st := css.Stats()
		g.CSS = &admin.CSSGauge{Hits: st.Hits - st.Redirects - st.NotModified, Redirects: st.Redirects, NotModified: st.NotModified,
			Misses: st.Misses, Errors: st.Errors, Entries: int64(st.Entries), Bytes: st.Bytes,
			Reachable: st.Reachable, CoherenceChecks: st.CoherenceChecks, Disagreements: st.Disagreements,
			Disagreeing: int64(st.Disagreeing)}
	}
	if vips != nil {
		for _, in := range vips.Status() {
			g.VRRP = append(g.VRRP, admin.VRRPGauge{Instance: in.Name, State: in.State, Priority: in.EffectivePriority, Transitions: uint64(in.Transitions),
				OtherVersionAdverts: in.OtherVersionAdverts, AuthFailures: in.AuthFailures})
		}
	}
	if cr != nil {
		runs := map[string]uint64{}
		for outcome, n := range cr.Status().Outcomes {
			runs[outcome] = uint64(n)
		}
		g.Cron = &admin.CronGauge{Runs: runs}
	}
	return g
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
