package vip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
)

// Options are the Manager's dependencies.
type Options struct {
	// Logger receives state changes and errors; nil logs nothing.
	Logger *zap.Logger
	// PoolHealthy reports whether the balancer has a node that can serve;
	// polled every TrackInterval, it must be cheap and safe for concurrent
	// use. nil means always healthy. A false answer lowers the priority or
	// forces FAULT as each instance's track_pool says.
	PoolHealthy func() bool
	// CSSCacheReachable reports whether css_cache's shared cache answers;
	// polled like PoolHealthy, for each instance's track_css_cache. nil
	// means always reachable.
	CSSCacheReachable func() bool
	// Clock is used for the state machines' notion of now; nil is
	// clock.System. Timers run in real time unless it is a TimerClock.
	Clock clock.Clock
	// Host is what the instances act on; nil is this machine (raw sockets,
	// netlink). Tests pass a fake (host.go).
	Host Host
	// TrackInterval is how often PoolHealthy and tracked links are polled.
	// Default 100ms.
	TrackInterval time.Duration
	// OnTransition, when set, is told every state change of every
	// instance (the status page's event list), from the instance's
	// goroutine: it must be quick and must not block.
	OnTransition func(Transition)
}

// Transition is one state change of an instance, as OnTransition sees it.
type Transition struct {
	Instance string
	From, To State
	Priority uint8
	At       time.Time
}

// Manager runs every configured VRRP instance of this process.
type Manager struct {
	instances []*instance
	byName    map[string]*instance
	log       *zap.Logger
}

// New builds the instances of cfg (already validated by configs). Nothing
// is opened or changed on the host until Run.
func New(cfg configs.VRRP, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	opts.Clock = clock.OrSystem(opts.Clock)
	if opts.Host == nil {
		opts.Host = realHost{}
	}
	if opts.TrackInterval <= 0 {
		opts.TrackInterval = 100 * time.Millisecond
	}
	m := &Manager{byName: map[string]*instance{}, log: opts.Logger}
	for _, c := range cfg.Instances {
		if _, dup := m.byName[c.Name]; dup {
			return nil, fmt.Errorf("vip: instance name %q used twice", c.Name)
		}
		in, err := newInstance(c, opts)
		if err != nil {
			return nil, err
		}
		m.instances = append(m.instances, in)
		m.byName[c.Name] = in
	}
	return m, nil
}

// Run runs every instance until ctx ends; then each master sends a
// priority-0 advert and removes its VIPs, and Run returns once all
// instances and their goroutines have stopped.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(m.instances))
	for i, in := range m.instances {
		wg.Go(func() { errs[i] = in.run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Status returns a snapshot of every instance, in configuration order.
func (m *Manager) Status() []InstanceStatus {
	out := make([]InstanceStatus, 0, len(m.instances))
	for _, in := range m.instances {
		out = append(out, in.Status())
	}
	return out
}

// IsMaster reports whether the named instance is MASTER now; false for an
// unknown name.
func (m *Manager) IsMaster(instance string) bool {
	in := m.byName[instance]
	return in != nil && in.Status().State == Master
}
