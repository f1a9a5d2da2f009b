package health

import (
	"sync/atomic"
	"time"
)

// Target is one node as configuration or discovery describes it.
type Target struct {
	// Name identifies the node in logs, /status and SetOperatorState.
	Name string
	// Address is host:port; the node's identity across SetTargets calls.
	Address string
	// Host is the Host header of probes; "" sends Address.
	Host string
	// Weight is the configured weight, 1..configs.MaxNodeWeight (configs
	// and discovery set it; SetTargets refuses anything else).
	Weight int
	// Admin marks the node preferred for admin traffic (reported only).
	Admin bool
}

// Node is the health of one node as the data plane reads it. A *Node stays
// the same while its address stays configured; after SetTargets drops the
// address it keeps its last state and ignores Observe.
//
// State, Weight and Observe are called for every proxied request: they are
// atomics only and allocate nothing (allocs_test.go).
type Node struct {
	c       *Checker
	address string

	state    atomic.Uint32 // effective State
	operator atomic.Uint32 // operator State or 0
	weight   atomic.Int64  // configured weight
	rampFrom atomic.Int64  // unix nanos a slow-start ramp began; 0: none
	fails    atomic.Int64  // consecutive failed requests (passive)
	fp       atomic.Pointer[Fingerprint]

	// Guarded by c.mu.
	target   Target
	m        machine
	inFlight bool
	removed  bool
	version  *versionRecord // last fingerprint; nil before the first
	fpChecks int            // checks since it was taken
	verdict  State          // the last check's verdict, 0 before the first
	// fpInFlight: a fingerprint is being taken (it outlives its check).
	fpInFlight bool
}

// Version returns the node's code-version fingerprint, zero while unknown
// (never taken, or the last attempt failed). It allocates nothing.
func (n *Node) Version() Fingerprint {
	if f := n.fp.Load(); f != nil {
		return *f
	}
	return Fingerprint{}
}

// State returns the node's effective state; a passive ejection shows as
// Down.
func (n *Node) State() State { return State(n.state.Load()) }

// Operator returns the state an operator set (Maintenance or Draining), or
// Up when none is set. It lets the balancer tell an operator's drain ("no
// new requests") from mosparo's own update-not-finished Draining.
func (n *Node) Operator() State {
	if s := State(n.operator.Load()); s != 0 {
		return s
	}
	return Up
}

// Weight returns the weight to balance with at now (unix nanoseconds):
// during a slow-start ramp it grows linearly from 1 to the configured
// weight; otherwise, and in any state but Up, it is the configured weight.
func (n *Node) Weight(now int64) int {
	w := n.weight.Load()
	if State(n.state.Load()) != Up {
		return int(w)
	}
	return int(rampWeight(w, n.rampFrom.Load(), now, int64(n.c.params().slowStart)))
}

// Observe feeds the outcome of one proxied request to passive detection:
// after health.passive.consecutive_failures failures in a row the node is
// ejected (passive.go). now is unix nanoseconds.
func (n *Node) Observe(o Outcome, now int64) {
	switch o {
	case Success:
		// Load first: an unconditional store would bounce the cache line
		// between cores on every request.
		if n.fails.Load() != 0 {
			n.fails.Store(0)
		}
	case ConnectFailure, ServerError, Timeout, BadAnswer:
		th := n.c.params().failures
		if th == 0 {
			return
		}
		// Exactly one caller sees the threshold; the rare trip path locks.
		if n.fails.Add(1) == int64(th) {
			n.c.trip(n, time.Unix(0, now))
		}
	}
}

// publish copies the machine to the atomics the hot path reads. The ramp
// start is stored before the state, so a reader that
// sees Up never pairs it with a stale ramp.
func (n *Node) publish() {
	var from int64
	if !n.m.rampFrom.IsZero() {
		from = n.m.rampFrom.UnixNano()
	}
	n.rampFrom.Store(from)
	n.operator.Store(uint32(n.m.operator))
	n.state.Store(uint32(n.m.effective()))
}
