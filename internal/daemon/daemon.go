package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/admin"
	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
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
	// Listen, when set, gives the daemon the socket of every public and
	// admin address it binds (at start and for addresses a reload adds):
	// systemd socket activation and an upgrading process hand theirs over
	// through it. Nil binds new sockets (public ones with IP_FREEBIND).
	Listen func(network, address string) (net.Listener, error)
	// Clock is every component's time source; nil is clock.System.
	Clock clock.Clock
	// ListenNamed, when set, is used instead of Listen for listen: entries
	// and gets the entry's name: too (socket activation by name).
	ListenNamed func(network, address, name string) (net.Listener, error)
	// Handover, set in a process started by a binary upgrade, makes Run
	// serve at once but start VRRP only with the states the old process
	// hands over (upgrade.go).
	Handover VRRPHandover
	// ACMERenewCheck is how often ACME certificates are checked for
	// renewal and OCSP staples for refresh; 0 is certmagic's 10m and 1h
	// (tests with short-lived ones shorten it).
	ACMERenewCheck time.Duration
}

// Daemon is one running mosparo-lb.
type Daemon struct {
	opts    Options
	loggers *Loggers
	log     *zap.Logger
	started time.Time
	host    string
	checker *health.Checker // one for the daemon's life: node state survives reloads
	metrics *admin.Metrics  // nil without an admin listener
	admin   *admin.Server
	history *admin.History // the status page's charts; nil without admin
	events  *admin.Events  // the status page's event list
	changed chan struct{}  // discovery changed the node set: rebuild
	cur     atomic.Pointer[generation]
	// faults, set by tests, makes the named build step fail.
	faults atomic.Pointer[func(step string) error]

	mu     sync.Mutex // serialises reloads, rebuilds and the parts below
	srv    *balancer.Server
	reload ReloadStatus
	sup    *supervisor    // set by Run
	parts  map[any]func() // running parts of the generations, by object
	closed bool           // Run is stopping: no more commits
	// vrrpHeld: VRRP waits for an upgrade's handover (adoptVRRP).
	vrrpHeld bool
}

// ReloadStatus is the reloads part of /status: how many, and whether the
// last one applied everything or changed nothing.
type ReloadStatus struct {
	Count    int       `json:"count"`
	Failures int       `json:"failures"`
	Last     time.Time `json:"last,omitzero"`
	// LastResult is "applied" (every section took effect) or "rejected"
	// (nothing changed); empty before the first reload.
	LastResult string `json:"last_result,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Generation counts committed configurations, 1 at start-up; it moves
	// on reloads and node set changes.
	Generation int `json:"generation"`
}

// New loads the configuration and builds every component, binding the
// listeners, so configuration and address errors surface before Run.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	opts.Clock = clock.OrSystem(opts.Clock)
	d := &Daemon{opts: opts, started: opts.Clock.Now(), changed: make(chan struct{}, 1), parts: map[any]func(){}}
	d.host, _ = os.Hostname()
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
	d.events = admin.NewEvents(0, opts.Clock)
	if d.checker, err = health.New(cfg.Health, health.Options{Logger: d.log, Clock: opts.Clock, OnChange: d.events.NodeChanged}); err != nil {
		return nil, err
	}
	if cfg.Admin.Listen != "off" {
		// Without the admin listener nobody can read them (it is not
		// started by a reload), so requests are not counted at all.
		d.metrics = admin.NewMetrics(func() admin.Gauges { s := d.Snapshot(); return s.gauges() })
		d.history = admin.NewHistory(d.metrics, admin.HistoryOptions{Clock: opts.Clock})
	}
	g, err := d.build(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	if cfg.Admin.Listen != "off" {
		d.admin = admin.New(cfg.Admin, admin.Deps{Logger: d.log.Named("admin"), Status: func() any { return d.Snapshot() },
			SetNodeState: d.setNodeState, Metrics: d.metrics, Listen: opts.Listen})
		if err := d.admin.Listen(); err != nil {
			g.binding.Abort()
			return nil, err
		}
	}
	d.commit(g)
	d.reload.Generation = 1
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

// Addrs are the bound public listener addresses.
func (d *Daemon) Addrs() []string { return d.srv.Addrs() }

// AdminAddr is the bound admin address, or "" when disabled.
func (d *Daemon) AdminAddr() string {
	if d.admin == nil {
		return ""
	}
	return d.admin.Addr()
}

// Run serves until ctx is cancelled or a part stops unasked, then stops
// every part: VRRP first (a priority-0 advert hands the VIP over), then
// the public listeners (in-flight requests finish within shutdown.grace),
// then the rest. It returns the failure that stopped it, if any.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.loggers.Sync()
	d.mu.Lock()
	if d.sup != nil || d.closed {
		d.mu.Unlock()
		return errors.New("daemon: Run called twice")
	}
	sup := newSupervisor(context.WithoutCancel(ctx), d.log)
	d.sup = sup
	stopServe := sup.start("data plane", d.srv.Serve)
	var stopAdmin func()
	if d.admin != nil {
		stopAdmin = sup.start("admin", d.admin.Run)
	}
	var stopHistory func()
	if d.history != nil {
		stopHistory = sup.start("history", d.history.Run)
	}
	stopHealth := sup.start("health", d.checker.Run)
	g := d.cur.Load()
	d.startParts(g, false)
	stopHandover := func() {}
	if d.opts.Handover != nil {
		d.vrrpHeld = true
		stopHandover = sup.start("vrrp handover", d.adoptVRRP)
	}
	d.startParts(g, true)
	stopRebuild := sup.start("rebuild", d.rebuildLoop)
	stopWatchdog := sup.start("watchdog", func(ctx context.Context) error {
		// A data plane that cannot accept skips beats, so systemd restarts it.
		if err := runWatchdog(ctx, d.srv.Healthy); err != nil {
			return err
		}
		<-ctx.Done() // without a watchdog it returns at once: not a failure
		return nil
	})
	d.mu.Unlock()
	d.log.Info("mosparo-lb running", zap.Strings("listen", d.srv.Addrs()), zap.String("admin", d.AdminAddr()), zap.String("version", d.opts.Version))
	d.notify(notifyReady())

	select {
	case <-ctx.Done():
	case <-sup.ctx.Done():
		d.log.Error("stopping after a component failure")
	}
	d.notify(notifyStopping())
	stopRebuild()
	stopHandover()
	d.mu.Lock()
	d.closed = true
	g = d.cur.Load()
	// Hand the VIP over first (priority 0), then let in-flight requests
	// finish: new connections reach the peer as soon as it takes over.
	if g.vips != nil {
		d.stopPart(g.vips)
	}
	d.mu.Unlock()
	d.log.Info("stopping")
	stopServe()
	d.mu.Lock()
	for key, stop := range d.parts {
		stop()
		delete(d.parts, key)
	}
	d.mu.Unlock()
	stopHealth()
	stopWatchdog()
	if stopAdmin != nil {
		stopAdmin()
	}
	if stopHistory != nil {
		stopHistory()
	}
	return sup.wait()
}

// rebuildLoop rebuilds the data plane whenever discovery reports a changed
// node set: a generation of the same configuration with the new nodes.
func (d *Daemon) rebuildLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.changed:
			if err := d.apply(ctx, nil); err != nil {
				d.log.Error("node set update not applied", zap.Error(err))
			}
		}
	}
}

// apply builds a generation of cfg (nil: the current configuration) and
// commits it, or changes nothing.
func (d *Daemon) apply(ctx context.Context, cfg *configs.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("daemon: stopping")
	}
	prev := d.cur.Load()
	if cfg == nil {
		cfg = prev.cfg
	}
	g, err := d.build(ctx, cfg, prev)
	if err != nil {
		return err
	}
	d.commit(g)
	d.reload.Generation++
	return nil
}

// Reload re-reads the configuration and applies all of it, listen: and
// vrrp: included, or nothing: a file that does not load or a part that
// cannot be built leaves everything as it was. Either way the result is
// logged and shown in /status. Requests in flight finish on the runtime
// they started on.
func (d *Daemon) Reload(ctx context.Context) error {
	d.notify(notifyReloading())
	defer func() { d.notify(notifyReady()) }()
	cfg, err := d.load()
	if err == nil {
		err = d.fault("config")
	}
	if err == nil {
		err = d.apply(ctx, cfg)
	}
	d.events.Reloaded(err)
	d.mu.Lock()
	d.reload.Count++
	d.reload.Last = d.opts.Clock.Now()
	if err != nil {
		d.reload.Failures++
		d.reload.LastResult, d.reload.LastError = "rejected", err.Error()
	} else {
		d.reload.LastResult, d.reload.LastError = "applied", ""
	}
	d.mu.Unlock()
	d.logResult(err)
	return err
}

// canServe is what VRRP tracks as the pool: a node that can serve and a
// data plane that accepts. Either failing lowers the priority or faults
// as track_pool says, so the peer takes the VIP.
func (d *Daemon) canServe() bool {
	return d.checker.PoolHealthy() && d.srv.Healthy()
}

// cssReachable is the VRRP view of the current generation's shared cache
// (track_css_cache); true without one.
func (d *Daemon) cssReachable() bool {
	g := d.cur.Load()
	return g == nil || g.css == nil || g.css.Reachable()
}

// isMaster reports whether the current generation's VRRP instance is master.
func (d *Daemon) isMaster(instance string) bool {
	g := d.cur.Load()
	return g != nil && g.vips != nil && g.vips.IsMaster(instance)
}

// notify logs a failed systemd notification; it never stops the LB.
func (d *Daemon) notify(err error) {
	if err != nil {
		d.log.Warn("systemd notification", zap.Error(err))
	}
}
