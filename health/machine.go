package health

import (
	"errors"
	"fmt"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// params is the health configuration in the units the machine uses.
type params struct {
	path          string
	interval      time.Duration
	fast          time.Duration
	down          time.Duration
	timeout       time.Duration
	jitter        time.Duration
	rise, fall    int
	slowStart     time.Duration
	trustBypassed bool
	// passive
	failures    int // 0 = passive detection off
	baseEject   time.Duration
	maxEject    time.Duration
	maxEjectPct int
	// version fingerprints (version.go)
	fpEvery   int // checks between fingerprints; 0 = off
	fpTimeout time.Duration
}

// ErrNoDefaults: a health section or a target that did not go through
// configs (and discovery, for targets). configs applies the defaults
// (issue 13: once, there); what skipped it is refused, not patched up here.
var ErrNoDefaults = errors.New("defaults not applied (configs.Load, or configs.Health.WithDefaults for a hand-built section)")

// Check reports whether cfg and ts are what configs and discovery
// guarantee, so that New, Reconfigure and SetTargets accept them: the
// daemon checks a new generation with it before committing it.
func Check(cfg configs.Health, ts []Target) error {
	if _, err := newParams(cfg); err != nil {
		return err
	}
	return checkTargets(ts)
}

// checkTargets refuses a weight outside 1..configs.MaxNodeWeight: 0 is not
// "the default" here, configs and discovery set the weight of every node.
func checkTargets(ts []Target) error {
	for _, t := range ts {
		if t.Weight < 1 || t.Weight > configs.MaxNodeWeight {
			return fmt.Errorf("health: node %s: weight %d is not 1..%d: %w", t.Name, t.Weight, configs.MaxNodeWeight, ErrNoDefaults)
		}
	}
	return nil
}

func newParams(cfg configs.Health) (params, error) {
	if cfg.Path == "" || cfg.Interval <= 0 || cfg.FastInterval <= 0 || cfg.DownInterval <= 0 || cfg.Timeout <= 0 ||
		cfg.Rise < 1 || cfg.Fall < 1 || cfg.Jitter == nil || cfg.SlowStart == nil ||
		cfg.Passive.ConsecutiveFailures == nil || cfg.Passive.BaseEjection <= 0 || cfg.Passive.MaxEjection <= 0 ||
		cfg.Passive.MaxEjectedPercent == nil || cfg.Version.Every == nil || cfg.Version.Timeout <= 0 {
		return params{}, fmt.Errorf("health: health section: %w", ErrNoDefaults)
	}
	p := params{
		path:          cfg.Path,
		interval:      cfg.Interval.D(),
		fast:          cfg.FastInterval.D(),
		down:          cfg.DownInterval.D(),
		timeout:       cfg.Timeout.D(),
		jitter:        cfg.Jitter.D(),
		rise:          cfg.Rise,
		fall:          cfg.Fall,
		slowStart:     max(cfg.SlowStart.D(), 0),
		trustBypassed: cfg.TrustBypassed,
		failures:      max(*cfg.Passive.ConsecutiveFailures, 0),
		baseEject:     cfg.Passive.BaseEjection.D(),
		maxEject:      max(cfg.Passive.MaxEjection.D(), cfg.Passive.BaseEjection.D()),
		maxEjectPct:   min(max(*cfg.Passive.MaxEjectedPercent, 0), 100),
		fpEvery:       max(*cfg.Version.Every, 0),
		fpTimeout:     max(cfg.Version.Timeout.D(), time.Millisecond),
	}
	// A hand-built, unvalidated config must not make the runner spin.
	for _, d := range []*time.Duration{&p.interval, &p.fast, &p.down, &p.timeout} {
		if *d < time.Millisecond {
			*d = time.Millisecond
		}
	}
	return p, nil
}

// machine is one node's health state machine. It is plain data and pure:
// every method takes the events and the time as arguments and does no I/O,
// so tests drive it with explicit times (STYLE 4). The Checker owns one per
// node, guards it with its mutex and publishes the effective state to the
// node's atomics after each event.
type machine struct {
	// health is the settled verdict of the active checks: Up, Down,
	// Draining or Setup.
	health State
	// verified is false until the first check verdict; that verdict is
	// believed at once, in both directions (doc.go, "Initial state").
	verified bool
	// okRun and failRun count consecutive alive (Up, Draining, Setup) and
	// bad check verdicts; one of them is always zero.
	okRun, failRun int
	// operator is Maintenance or Draining when an operator set it, zero
	// otherwise. It is keyed by address and survives SetTargets.
	operator State

	// Passive ejection: ejectedUntil is zero when not ejected.
	ejectedAt, ejectedUntil time.Time
	// streak multiplies base_ejection; it decays while the node stays in.
	streak int
	// ejections counts every ejection since the node was added (reported).
	ejections int
	// lastEjectEnd is when the previous ejection ended (decay reference).
	lastEjectEnd time.Time
	// tripped: passive detection saw a failure streak it was not allowed
	// to act on; check at the fast interval until the next verdict.
	tripped bool

	// rampFrom is when the current slow-start ramp began; zero: no ramp.
	rampFrom time.Time

	// Reporting.
	reason    string
	lastCheck time.Time
	latency   time.Duration
	nextProbe time.Time
}

// newMachine returns the machine of a node added to the checker. start is
// the state it shows until its first check: Up or Down (doc.go).
func newMachine(start State, now time.Time) machine {
	return machine{health: start, reason: "not checked yet", nextProbe: now}
}

// ejected reports whether a passive ejection is in force.
func (m *machine) ejected() bool { return !m.ejectedUntil.IsZero() }

// effective is the state the balancer sees. An operator's maintenance wins;
// a passive ejection shows as Down; an operator's drain shows as Draining
// unless the node is down anyway (a dead node must not get admin traffic).
func (m *machine) effective() State {
	if m.operator == Maintenance {
		return Maintenance
	}
	s := m.health
	if m.ejected() {
		s = Down
	}
	if m.operator == Draining && s != Down {
		return Draining
	}
	return s
}

// probed applies one active check: v is the verdict (Up, Down, Draining or
// Setup) of a check that started at started and ended at now.
func (m *machine) probed(p *params, v State, reason string, started, now time.Time) {
	m.reason = reason
	m.lastCheck = now
	m.latency = now.Sub(started)
	m.tripped = false
	first := !m.verified
	m.verified = true
	if v == Down {
		m.okRun = 0
		m.failRun++
		if first || m.failRun >= p.fall {
			m.health = Down
		}
		if m.health == Down && m.ejected() {
			// The active verdict supersedes the passive one.
			m.endEjection(now)
		}
		return
	}
	m.failRun = 0
	m.okRun++
	switch {
	case m.health != Down:
		// Up, Draining and Setup are mosparo's own statements, not noisy
		// reachability signals: moving between them takes one answer.
		m.health = v
	case first || m.okRun >= p.rise:
		m.health = v
	}
	// Like Envoy's successful_active_health_check_uneject_host: a full
	// check (database included) begun after the ejection proves the node
	// answers again.
	if v == Up && m.ejected() && !started.Before(m.ejectedAt) {
		m.endEjection(now)
	}
}

// delay is the time from the start of one check to the next, before
// jitter: fast while the node is changing state (HAProxy's fastinter),
// down_interval while it is settled down, interval otherwise.
func (m *machine) delay(p *params) time.Duration {
	switch {
	case m.operator == Maintenance:
		return p.interval
	case !m.verified, m.ejected(), m.tripped:
		return p.fast
	case m.health == Down:
		if m.okRun > 0 {
			return p.fast
		}
		return p.down
	case m.failRun > 0:
		return p.fast
	}
	return p.interval
}

// eject starts a passive ejection at now. The n-th ejection in a row lasts
// n * base_ejection, capped at max_ejection (Envoy's outlier detection);
// the multiplier drops by one for every max_ejection the node spent without
// an ejection, so an old incident does not punish a node forever.
func (m *machine) eject(p *params, now time.Time) {
	if !m.lastEjectEnd.IsZero() && p.maxEject > 0 {
		forgiven := now.Sub(m.lastEjectEnd) / p.maxEject
		m.streak = max(m.streak-int(min(forgiven, 1<<20)), 0)
	}
	m.streak++
	m.ejections++
	m.ejectedAt = now
	m.ejectedUntil = now.Add(ejectionLength(p, m.streak))
	m.tripped = false
}

// expire ends an ejection whose time is up and reports whether it did.
func (m *machine) expire(now time.Time) bool {
	if m.ejected() && !now.Before(m.ejectedUntil) {
		m.endEjection(now)
		return true
	}
	return false
}

func (m *machine) endEjection(now time.Time) {
	m.ejectedAt, m.ejectedUntil = time.Time{}, time.Time{}
	m.lastEjectEnd = now
}

// settle records the consequences of a change of the effective state from
// old: a node that becomes Up after being anything else ramps its weight
// (HAProxy's slowstart), one that leaves Up drops its ramp. It reports
// whether the effective state changed.
func (m *machine) settle(p *params, old State, now time.Time) bool {
	s := m.effective()
	if s == old {
		return false
	}
	m.rampFrom = time.Time{}
	if s == Up && p.slowStart > 0 {
		m.rampFrom = now
	}
	return true
}
