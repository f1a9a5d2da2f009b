package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/mosparo-lb/mosparo-lb/admin"
	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"go.uber.org/zap"
)

// Options say where the configuration comes from.
type Options struct {
	// Path is the configuration file, re-read on every reload.
	Path string
	// Source, when Path is empty, is the configuration itself (the demo);
	// Name labels it in errors.
	Source []byte
	Name   string
	// LookupEnv resolves ${NAME}; nil uses os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Loggers, when nil, are built from the configuration's log: section.
	Loggers *Loggers
	Version string
}

// Daemon is one running mosparo-lb.
type Daemon struct {
	opts    Options
	loggers *Loggers
	log     *zap.Logger
	started time.Time

	mu      sync.Mutex // serializes reloads and rebuilds
	cfg     *configs.Config
	srv     *balancer.Server
	admin   *admin.Server
	comps   *components
	reload  reloadStatus
	metrics *admin.Metrics
}

type reloadStatus struct {
	Count     int       `json:"count"`
	Failures  int       `json:"failures"`
	Last      time.Time `json:"last,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// New loads the configuration and builds every component, binding the
// listeners, so configuration and address errors surface before Run.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	d := &Daemon{opts: opts, started: time.Now()}
	cfg, err := d.load()
	if err != nil {
		return nil, err
	}
	d.loggers = opts.Loggers
	if d.loggers == nil {
		if d.loggers, err = NewLoggers(cfg.Log); err != nil {
			return nil, err
		}
	}
	d.log = d.loggers.Main
	d.cfg = cfg
	d.comps, err = newComponents(cfg, d.log)
	if err != nil {
		return nil, err
	}
	if cfg.Admin.Listen != "off" {
		// Without the admin listener nobody can read them (it is not
		// started by a reload), so requests are not counted at all.
		d.metrics = admin.NewMetrics(d.gauges)
	}
	rt, err := d.buildRuntime(cfg)
	if err != nil {
		return nil, err
	}
	d.srv = balancer.NewServer(rt)
	if err := d.srv.Listen(ctx); err != nil {
		return nil, err
	}
	if cfg.Admin.Listen != "off" {
		d.admin = admin.New(cfg.Admin, admin.Deps{Logger: d.log.Named("admin"), Status: d.Status, SetNodeState: d.comps.setNodeState, Metrics: d.metrics})
		if err := d.admin.Listen(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *Daemon) load() (*configs.Config, error) {
	if d.opts.Path != "" {
		b, err := configs.ReadFile(d.opts.Path)
		if err != nil {
			return nil, err
		}
		return configs.Parse(d.opts.Path, b, d.opts.LookupEnv)
	}
	return configs.Parse(d.opts.Name, d.opts.Source, d.opts.LookupEnv)
}

// buildRuntime makes a data-plane runtime from cfg and the current node set.
func (d *Daemon) buildRuntime(cfg *configs.Config) (*balancer.Runtime, error) {
	deps := balancer.Deps{
		Logger:    d.log.Named("balancer"),
		AccessLog: d.loggers.Access,
		Health:    d.comps.healthSource(),
		CSS:       d.comps.edgeCache(),
	}
	if d.metrics != nil {
		deps.Metrics = d.metrics
	}
	return balancer.NewRuntime(cfg, d.comps.nodeSpecs(), deps)
}

// Addrs are the bound public listener addresses.
func (d *Daemon) Addrs() []string { return d.srv.Addrs() }

// AdminAddr is the bound admin address, or "" when disabled.
func (d *Daemon) AdminAddr() string {
	if d.admin == nil {
		return ""
	}
	return d.admin.Addr()
}

// Run serves until ctx is cancelled, then stops every component: the public
// listeners first (in-flight requests finish within shutdown.grace), then
// the rest.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.loggers.Sync()
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(cctx); err != nil && cctx.Err() == nil {
				d.log.Error("component stopped", zap.String("component", name), zap.Error(err))
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	if d.admin != nil {
		run("admin", d.admin.Run)
	}
	d.comps.start(cctx, &wg)
	run("rebuild", d.rebuildLoop)
	d.log.Info("mosparo-lb running", zap.Strings("listen", d.srv.Addrs()), zap.String("admin", d.AdminAddr()), zap.String("version", d.opts.Version))

	sctx, scancel := context.WithCancel(context.WithoutCancel(ctx))
	defer scancel()
	serveErr := make(chan error, 1)
	go func() { serveErr <- d.srv.Serve(sctx) }()
	d.notify(notifyReady())
	run("watchdog", func(ctx context.Context) error { return runWatchdog(ctx) })
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		scancel()
	case err = <-errc:
		// A component failing hard takes the process down with a clear error
		// rather than serving half a product.
		d.log.Error("stopping after component failure", zap.Error(err))
	}
	d.notify(notifyStopping())
	// Hand the VIP over first (priority 0), then let in-flight requests
	// finish: new connections reach the peer as soon as it takes over.
	d.comps.releaseVIPs()
	if sctx.Err() == nil {
		// Serve has not been told to stop yet.
		scancel()
		<-serveErr
	}
	d.log.Info("stopping")
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// rebuildLoop rebuilds the data plane whenever discovery reports a changed
// node set.
func (d *Daemon) rebuildLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.comps.nodesChanged():
			d.mu.Lock()
			err := d.rebuild(d.cfg)
			d.mu.Unlock()
			if err != nil {
				d.log.Error("node set update not applied", zap.Error(err))
			}
		}
	}
}

func (d *Daemon) rebuild(cfg *configs.Config) error {
	d.comps.syncTargets()
	rt, err := d.buildRuntime(cfg)
	if err != nil {
		return err
	}
	if err := d.srv.Swap(rt); err != nil {
		d.log.Warn("reload", zap.Error(err))
	}
	return nil
}

// Reload re-reads the configuration. A file that does not load or validate
// changes nothing: the old configuration keeps serving and the error is
// returned and logged. Requests in flight finish on the runtime they started on.
func (d *Daemon) Reload(ctx context.Context) error {
	d.notify(notifyReloading())
	defer func() { d.notify(notifyReady()) }()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reload.Count++
	d.reload.Last = time.Now()
	cfg, err := d.load()
	if err == nil {
		var warnings []string
		warnings, err = d.comps.reconfigure(cfg)
		for _, w := range warnings {
			d.log.Warn("reload", zap.String("warning", w))
		}
	}
	if err == nil {
		if err = d.rebuild(cfg); err == nil {
			d.cfg = cfg
		}
	}
	if err != nil {
		d.reload.Failures++
		d.reload.LastError = err.Error()
		d.log.Error("reload rejected; the previous configuration keeps running", zap.Error(err))
		return err
	}
	d.reload.LastError = ""
	d.log.Info("configuration reloaded")
	return nil
}

// Status is the document GET /status serves.
func (d *Daemon) Status() any {
	d.mu.Lock()
	rl := d.reload
	d.mu.Unlock()
	st := map[string]any{
		"version":   d.opts.Version,
		"started":   d.started.UTC(),
		"listen":    d.srv.Addrs(),
		"nodes":     d.comps.nodeStatus(d.srv.NodeStats()),
		"reloads":   rl,
		"pool_ok":   d.comps.poolHealthy(),
		"timestamp": time.Now().UTC(),
	}
	if rl := d.srv.RateLimitStats(); rl != nil {
		st["rate_limits"] = rl
	}
	d.comps.addStatus(st)
	return st
}

// notify logs a failed systemd notification; it never stops the LB.
func (d *Daemon) notify(err error) {
	if err != nil {
		d.log.Warn("systemd notification", zap.Error(err))
	}
}

// gauges is what /metrics reads of the components at scrape time.
func (d *Daemon) gauges() admin.Gauges {
	d.mu.Lock()
	rl := d.reload
	d.mu.Unlock()
	g := d.comps.gauges(d.srv.NodeStats())
	g.Reloads, g.ReloadFailures = uint64(rl.Count), uint64(rl.Failures)
	cs := d.srv.ConnStats()
	g.ClientConns = &admin.ClientConnGauge{Open: int64(cs.Open), RefusedMaxConns: cs.RefusedTotal, RefusedIP: cs.RefusedPerIP}
	for _, r := range d.srv.RateLimitStats() {
		g.RateLimits = append(g.RateLimits, admin.RateLimitGauge{Route: r.Route, Limited: r.Limited, Evictions: r.Evictions, Entries: r.Entries, Capacity: r.Capacity})
	}
	return g
}
