package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/mosparo-lb/mosparo-lb/acme"
	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/cron"
	"github.com/mosparo-lb/mosparo-lb/cssproxy"
	"github.com/mosparo-lb/mosparo-lb/discovery"
	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/vip"
	"go.uber.org/zap"
)

// generation is everything one configuration runs with (STYLE 7): build
// makes it without changing anything that serves or runs, commit makes it
// current. A part whose configuration section did not change is the
// previous generation's own object and keeps running; the health checker
// is the daemon's, so node state, ejections and drains carry over.
type generation struct {
	cfg     *configs.Config
	disc    *discovery.Source
	targets []health.Target
	css     *cssproxy.Proxy  // nil without css_cache.backend
	vips    *vip.Manager     // nil without vrrp.instances
	cron    *cron.Runner     // nil when cron is off
	lock    *cron.ConsulLock // nil unless a Consul lock elects the cron
	acme    *acme.Manager    // nil without listen[].tls.acme (acme.go)
	rt      *balancer.Runtime
	binding *balancer.Binding // nil once committed
	// pending are the runtime's health views of nodes the checker only
	// learns at commit; commit resolves them before the runtime serves.
	pending []*pendingHealth
}

// buildStep is one part of build, named in errors and by the fault hook.
type buildStep struct {
	name string
	do   func() error
}

// build constructs g for cfg next to prev (nil at start-up). It binds new
// listen: addresses but serves nothing and starts nothing; on error what it
// bound is released and prev is untouched.
func (d *Daemon) build(ctx context.Context, cfg *configs.Config, prev *generation) (*generation, error) {
	g := &generation{cfg: cfg}
	start := prev == nil
	if start {
		prev = &generation{cfg: &configs.Config{}}
	}
	steps := []buildStep{
		{"admin and log", func() error {
			if start {
				return nil
			}
			return restartOnly(g.cfg, prev.cfg)
		}},
		{"discovery", func() error { return d.buildDiscovery(g, prev) }},
		{"health", func() error { g.targets = targetsOf(g.disc.Nodes()); return health.Check(g.cfg.Health, g.targets) }},
		{"css_cache", func() error { return d.buildCSS(g, prev) }},
		{"vrrp", func() error { return d.buildVRRP(g, prev) }},
		{"cron lock", func() error { return d.buildCronLock(g, prev) }},
		{"cron", func() error { return d.buildCron(g, prev) }},
		{"acme", func() error { return d.buildACME(g, prev) }},
		{"runtime", func() error { return d.buildRuntime(g) }},
		{"listen", func() error { return d.bind(ctx, g) }},
	}
	for _, s := range steps {
		err := d.fault(s.name)
		if err == nil {
			err = s.do()
		}
		if err != nil {
			if g.binding != nil {
				g.binding.Abort()
			}
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return g, nil
}

// ErrRestartOnly: the reload changes a section read only at start-up.
var ErrRestartOnly = errors.New("read only at start-up; restart or upgrade (mosparo-lb upgrade) to change it")

// restartOnly rejects a reload that changes admin: or log:, which live for
// the process (the admin listener, the loggers): applying the rest would
// report "every section applied" for a file that is not what runs (issue
// 13: a reload applies all of it or nothing, and says which). prev's zero
// configuration is the start, where everything is read.
func restartOnly(cfg, prev *configs.Config) error {
	if prev.Listen == nil {
		return nil
	}
	var changed []string
	if !reflect.DeepEqual(cfg.Admin, prev.Admin) {
		changed = append(changed, "admin")
	}
	if !reflect.DeepEqual(cfg.Log, prev.Log) {
		changed = append(changed, "log")
	}
	if len(changed) > 0 {
		return fmt.Errorf("%s: %w", strings.Join(changed, " and "), ErrRestartOnly)
	}
	return nil
}

// fault is the test hook that makes a build step fail.
func (d *Daemon) fault(step string) error {
	if f := d.faults.Load(); f != nil {
		return (*f)(step)
	}
	return nil
}

func (d *Daemon) buildDiscovery(g, prev *generation) error {
	c, p := g.cfg, prev.cfg
	if prev.disc != nil && reflect.DeepEqual(c.Discovery, p.Discovery) && reflect.DeepEqual(c.Nodes, p.Nodes) && c.Admin.Listen == p.Admin.Listen {
		g.disc = prev.disc
		return nil
	}
	var err error
	g.disc, err = discovery.New(c.Discovery, c.Nodes, discovery.Options{
		Logger: d.log, Clock: d.opts.Clock, AdminListen: c.Admin.Listen, Hostname: d.host, Previous: prev.disc,
	})
	return err
}

func (d *Daemon) buildCSS(g, prev *generation) error {
	cc := g.cfg.CSSCache
	if prev.css != nil && reflect.DeepEqual(cc, prev.cfg.CSSCache) {
		g.css = prev.css
		return nil
	}
	if cc.Backend == "" {
		return nil
	}
	var err error
	g.css, err = cssproxy.New(cc, cssproxy.Options{Logger: d.log.Named("cssproxy"), Clock: d.opts.Clock})
	return err
}

func (d *Daemon) buildVRRP(g, prev *generation) error {
	v := g.cfg.VRRP
	if prev.vips != nil && reflect.DeepEqual(v, prev.cfg.VRRP) {
		g.vips = prev.vips
		return nil
	}
	if len(v.Instances) == 0 {
		return nil
	}
	var err error
	g.vips, err = vip.New(v, vip.Options{Logger: d.log.Named("vip"), Clock: d.opts.Clock, PoolHealthy: d.canServe, OnTransition: d.events.VRRPChanged,
		CSSCacheReachable: d.cssReachable})
	return err
}

// buildCronLock builds the Consul lock that elects this LB to run the web
// cron when neither VRRP nor standalone decides. A lock is kept while its
// key and agent are, so a reload does not give up leadership; building one
// only checks its options (it talks to Consul once it runs).
func (d *Daemon) buildCronLock(g, prev *generation) error {
	c, p := g.cfg, prev.cfg
	if mode, _ := c.CronMode(); !c.Cron.Enabled || mode != configs.CronModeConsul {
		return nil
	}
	if prev.lock != nil && c.Cron.ConsulLock == p.Cron.ConsulLock && reflect.DeepEqual(c.Discovery.Consul, p.Discovery.Consul) {
		g.lock = prev.lock
		return nil
	}
	cc := c.Discovery.Consul
	var err error
	g.lock, err = cron.NewConsulLock(cron.ConsulLockOptions{Address: cc.Address, Scheme: cc.Scheme, Token: cc.Token,
		Datacenter: cc.Datacenter, Key: c.Cron.ConsulLock, Holder: d.host, Logger: d.log.Named("cron")})
	return err
}

// buildCron builds the web-cron runner, led by the VRRP master of an
// instance (of the current generation, whichever that is when it asks),
// g's Consul lock, or nothing (standalone). The runner is kept while its
// section, its mode and its leader are.
func (d *Daemon) buildCron(g, prev *generation) error {
	c, p := g.cfg, prev.cfg
	mode, instance := c.CronMode()
	pmode, pinstance := p.CronMode()
	if prev.cron != nil && g.lock == prev.lock && mode == pmode && instance == pinstance && reflect.DeepEqual(c.Cron, p.Cron) {
		g.cron = prev.cron
		return nil
	}
	if !c.Cron.Enabled {
		return nil
	}
	var leader cron.Leader
	switch mode {
	case configs.CronModeVRRP:
		leader = cron.LeaderFunc(func() bool { return d.isMaster(instance) })
	case configs.CronModeConsul:
		leader = g.lock
	}
	r, err := cron.New(c.Cron, cron.Options{Logger: d.log.Named("cron"), Clock: d.opts.Clock, Leader: leader,
		LeaderName: string(mode) + " " + instance, Nodes: cron.NodesFunc(d.cronCandidates)})
	if err != nil {
		return err
	}
	g.cron = r
	return nil
}

// buildRuntime makes the data plane of g: its configuration, node set and
// CSS cache.
func (d *Daemon) buildRuntime(g *generation) error {
	deps := balancer.Deps{
		Logger:    d.log.Named("balancer"),
		AccessLog: d.loggers.Access,
		Health:    genHealth{d.checker, g},
		Listen:    d.listenFor(g.cfg),
		Clock:     d.opts.Clock,
	}
	if g.css != nil {
		deps.CSS = g.css
	}
	if d.metrics != nil {
		deps.Metrics = d.metrics
	}
	if g.acme != nil {
		deps.ACME = g.acme
	}
	specs := make([]balancer.NodeSpec, 0, len(g.targets))
	for _, t := range g.targets {
		specs = append(specs, balancer.NodeSpec{Name: t.Name, Address: t.Address, Weight: t.Weight, Admin: t.Admin})
	}
	var err error
	g.rt, err = balancer.NewRuntime(g.cfg, specs, deps)
	return err
}

// bind binds the listen: addresses the server does not hold yet; the
// first generation also makes the server.
func (d *Daemon) bind(ctx context.Context, g *generation) error {
	if d.srv == nil {
		d.srv = balancer.NewServer(g.rt)
	}
	var err error
	g.binding, err = d.srv.Bind(ctx, g.rt)
	return err
}

// commit makes g current; it cannot fail. Order: the checker learns the
// node set (so the runtime's health views resolve), parts new in g start,
// the data plane switches (new listeners serve before removed ones close),
// parts g dropped stop, and a replaced VRRP manager takes over the
// instances whose identity is unchanged without dropping their VIPs.
func (d *Daemon) commit(g *generation) {
	prev := d.cur.Load()
	// build's health step ran health.Check on both, so neither refuses.
	if prev != nil && !reflect.DeepEqual(prev.cfg.Health, g.cfg.Health) {
		if err := d.checker.Reconfigure(g.cfg.Health); err != nil {
			d.log.Error("health configuration refused after build accepted it", zap.Error(err))
		}
	}
	if err := d.checker.SetTargets(g.targets); err != nil {
		d.log.Error("node set refused after build accepted it", zap.Error(err))
	}
	for _, p := range g.pending {
		p.resolve(d.checker)
	}
	g.pending = nil
	d.cur.Store(g)
	d.startParts(g, false)
	d.srv.Swap(g.rt, g.binding)
	g.binding = nil
	if prev != nil && prev.vips != nil && g.vips != nil && prev.vips != g.vips && d.parts[prev.vips] != nil {
		g.vips.Adopt(prev.vips)
	}
	d.stopParts(g)
	d.startParts(g, true)
}

// part is one long-running piece of a generation, keyed by its object so a
// kept piece keeps running.
type part struct {
	name string
	key  any
	run  func(context.Context) error
}

func (d *Daemon) partsOf(g *generation) []part {
	ps := []part{{"discovery", g.disc, d.watchDiscovery(g.disc)}}
	if g.css != nil {
		ps = append(ps, part{"cssproxy", g.css, g.css.Run})
	}
	if g.lock != nil {
		ps = append(ps, part{"cron lock", g.lock, g.lock.Run})
	}
	if g.cron != nil {
		ps = append(ps, part{"cron", g.cron, g.cron.Run})
	}
	if g.acme != nil {
		ps = append(ps, part{"acme", g.acme, g.acme.Run})
	}
	if g.vips != nil {
		ps = append(ps, part{"vip", g.vips, g.vips.Run})
	}
	return ps
}

// startParts starts g's parts that do not run yet (VRRP only when vrrp is
// set: it starts last); nothing before Run.
func (d *Daemon) startParts(g *generation, vrrp bool) {
	if d.sup == nil || vrrp && d.vrrpHeld {
		return
	}
	for _, p := range d.partsOf(g) {
		if _, isVIP := p.key.(*vip.Manager); isVIP != vrrp || d.parts[p.key] != nil {
			continue
		}
		d.parts[p.key] = d.sup.start(p.name, p.run)
	}
}

// stopParts stops every running part g does not have.
func (d *Daemon) stopParts(g *generation) {
	keep := map[any]bool{}
	for _, p := range d.partsOf(g) {
		keep[p.key] = true
	}
	for key, stop := range d.parts {
		if !keep[key] {
			stop()
			delete(d.parts, key)
		}
	}
}

// stopPart stops the running part of key, if any.
func (d *Daemon) stopPart(key any) {
	if stop := d.parts[key]; stop != nil {
		stop()
		delete(d.parts, key)
	}
}

// watchDiscovery runs src and forwards its updates to the rebuild loop.
func (d *Daemon) watchDiscovery(src *discovery.Source) func(context.Context) error {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- src.Run(ctx) }()
		for {
			select {
			case err := <-errc:
				return err
			case <-src.Updates():
				select {
				case d.changed <- struct{}{}:
				default:
				}
			}
		}
	}
}

func targetsOf(nodes []discovery.Node) []health.Target {
	ts := make([]health.Target, 0, len(nodes))
	for _, n := range nodes {
		ts = append(ts, health.Target{Name: n.Name, Address: n.Address, Host: n.Host, Weight: n.Weight, Admin: n.Admin})
	}
	return ts
}

// genHealth is the balancer's view of the checker for one generation's
// runtime. A node the checker does not know yet (new in this generation)
// gets a pendingHealth that commit resolves: build must not add it to the
// checker, which would probe it and show it in /status.
type genHealth struct {
	c *health.Checker
	g *generation
}

func (h genHealth) NodeHealth(addr string) balancer.NodeHealth {
	if n := h.c.Node(addr); n != nil {
		return n
	}
	p := &pendingHealth{addr: addr}
	h.g.pending = append(h.g.pending, p)
	return p
}

// pendingHealth forwards to the checker's node once resolved; before that
// (never while serving: commit resolves first) the node is down.
type pendingHealth struct {
	addr string
	n    atomic.Pointer[health.Node]
}

func (p *pendingHealth) resolve(c *health.Checker) {
	if n := c.Node(p.addr); n != nil {
		p.n.Store(n)
	}
}

func (p *pendingHealth) State() health.State {
	if n := p.n.Load(); n != nil {
		return n.State()
	}
	return health.Down
}

func (p *pendingHealth) Operator() health.State {
	if n := p.n.Load(); n != nil {
		return n.Operator()
	}
	return health.Up
}

func (p *pendingHealth) Weight(now int64) int {
	if n := p.n.Load(); n != nil {
		return n.Weight(now)
	}
	return 0
}

func (p *pendingHealth) Observe(o health.Outcome, now int64) {
	if n := p.n.Load(); n != nil {
		n.Observe(o, now)
	}
}

// Version is the node's code-version fingerprint; unknown until resolved.
func (p *pendingHealth) Version() health.Fingerprint {
	if n := p.n.Load(); n != nil {
		return n.Version()
	}
	return health.Fingerprint{}
}

// logResult is the one line a reload leaves.
func (d *Daemon) logResult(err error) {
	if err != nil {
		d.log.Error("reload rejected; nothing changed, the previous configuration keeps running", zap.Error(err))
		return
	}
	d.log.Info("configuration reloaded; every section applied")
}

// Interface guards.
var (
	_ balancer.HealthSource = genHealth{}
	_ balancer.NodeHealth   = (*pendingHealth)(nil)
	_ balancer.Versioned    = (*pendingHealth)(nil)
)
