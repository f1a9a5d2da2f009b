package health

import (
	"fmt"
	"time"
)

// NodeStatus is one node's health for /status: a copy, safe to keep.
type NodeStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Admin   bool   `json:"admin"`
	// State is what the balancer sees (State()).
	State State `json:"state"`
	// Health is the verdict of the active checks alone.
	Health State `json:"health"`
	// Operator is Maintenance or Draining when an operator set one.
	Operator State `json:"operator,omitzero"`
	// Reason explains the last check's verdict (mosparo's answer, an
	// error, or a configuration hint such as the 404 one), or the ejection.
	Reason string `json:"reason"`
	// LastCheck is when the last check ended; zero before the first.
	LastCheck time.Time `json:"last_check,omitzero"`
	// CheckLatency is how long the last check took.
	CheckLatency time.Duration `json:"check_latency_ns"`
	// NextCheck is when the next check is due.
	NextCheck time.Time `json:"next_check,omitzero"`
	// ConsecutiveOK and ConsecutiveFail count the latest run of alive or
	// bad check verdicts.
	ConsecutiveOK   int `json:"consecutive_ok"`
	ConsecutiveFail int `json:"consecutive_fail"`
	// PassiveFailures counts proxied requests failed in a row right now.
	PassiveFailures int `json:"passive_failures"`
	// Ejections counts passive ejections since the node was added.
	Ejections int `json:"ejections"`
	// EjectedUntil is when the current ejection ends; zero when none.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Weight is the configured weight, EffectiveWeight the one balanced
	// with now (lower during slow start).
	Weight          int `json:"weight"`
	EffectiveWeight int `json:"effective_weight"`
	// SlowStart is the slow-start ramp's progress, 0..1 (1: no ramp).
	SlowStart float64 `json:"slow_start_progress"`
	// Version is the node's code-version fingerprint (version.go), ""
	// while unknown; VersionChecked is when it was last taken, and
	// VersionError why that failed.
	Version        Fingerprint `json:"version"`
	VersionChecked time.Time   `json:"version_checked,omitzero"`
	VersionError   string      `json:"version_error,omitempty"`
}

// Snapshot returns every node's status in SetTargets order.
func (c *Checker) Snapshot() []NodeStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	p := c.params()
	out := make([]NodeStatus, 0, len(c.nodes))
	for _, n := range c.nodes {
		m := &n.m
		s := NodeStatus{
			Name:            n.target.Name,
			Address:         n.address,
			Admin:           n.target.Admin,
			State:           m.effective(),
			Health:          m.health,
			Operator:        m.operator,
			Reason:          m.reason,
			LastCheck:       m.lastCheck,
			CheckLatency:    m.latency,
			NextCheck:       m.nextProbe,
			ConsecutiveOK:   m.okRun,
			ConsecutiveFail: m.failRun,
			PassiveFailures: int(n.fails.Load()),
			Ejections:       m.ejections,
			EjectedUntil:    m.ejectedUntil,
			Weight:          int(n.weight.Load()),
			EffectiveWeight: n.Weight(now.UnixNano()),
			SlowStart:       rampProgress(n.rampFrom.Load(), now.UnixNano(), int64(p.slowStart)),
		}
		s.Version = n.Version()
		if v := n.version; v != nil {
			s.VersionChecked, s.VersionError = v.at, v.err
		}
		if m.ejected() {
			s.Reason = fmt.Sprintf("ejected by passive detection until %s (%d failed requests in a row); last check: %s",
				m.ejectedUntil.Format(time.RFC3339), p.failures, m.reason)
		}
		out = append(out, s)
	}
	return out
}
