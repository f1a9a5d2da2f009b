package cssproxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"go.uber.org/zap"
)

// probeFailures is how many probes in a row must fail before the cache
// counts as down, so that one slow answer does not move a VIP.
const probeFailures = 2

// minProbeTimeout keeps a probe from failing on scheduling noise when
// css_cache.timeout is a few milliseconds.
const minProbeTimeout = 250 * time.Millisecond

// Reachability of the shared cache, as the probe last saw it.
const (
	reachUnknown int32 = iota // not probed yet
	reachUp
	reachDown
)

// probe asks the shared cache every interval whether it answers. mosparo's
// health API checks only the database (FACTS 11.9), so when Redis or
// memcached is down the nodes still report healthy while every route that
// needs the cache fails; the balancer is the one place that knows, and it
// shows it in /status, /metrics and as a VRRP tracking input.
type probe struct {
	interval, timeout time.Duration

	state     atomic.Int32
	failures  int // consecutive, owned by the loop
	mu        sync.Mutex
	downSince time.Time
	lastErr   string
}

func newProbe(interval, lookupTimeout time.Duration) *probe {
	return &probe{interval: interval, timeout: max(4*lookupTimeout, minProbeTimeout)}
}

// run probes every interval until ctx ends. The first probe waits one
// interval so the backend's first connection is not reported as an outage.
func (pr *probe) run(ctx context.Context, ping func(context.Context) error, clk clock.Clock, log *zap.Logger, backend string) {
	t := time.NewTicker(pr.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, pr.timeout)
		err := ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		pr.record(err, clk.Now(), log, backend)
	}
}

// record applies one probe result and logs changes of state.
func (pr *probe) record(err error, now time.Time, log *zap.Logger, backend string) {
	if err == nil {
		pr.failures = 0
		if prev := pr.state.Swap(reachUp); prev == reachDown {
			log.Info("css cache reachable again", zap.String("backend", backend), zap.String("state", "up"))
		}
		return
	}
	pr.mu.Lock()
	pr.lastErr = err.Error()
	pr.mu.Unlock()
	pr.failures++
	if pr.failures < probeFailures && pr.state.Load() != reachUnknown {
		return
	}
	if prev := pr.state.Swap(reachDown); prev != reachDown {
		pr.mu.Lock()
		pr.downSince = now
		pr.mu.Unlock()
		log.Warn("css cache unreachable", zap.String("backend", backend), zap.String("state", "down"), zap.Error(err))
	}
}

// reachable is nil before the first probe.
func (pr *probe) reachable() *bool {
	var b bool
	switch pr.state.Load() {
	case reachUp:
		b = true
	case reachDown:
	default:
		return nil
	}
	return &b
}

// down returns when the current outage began and the last probe error;
// zero and "" while the cache answers.
func (pr *probe) down() (since time.Time, lastErr string) {
	if pr.state.Load() != reachDown {
		return time.Time{}, ""
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.downSince, pr.lastErr
}
