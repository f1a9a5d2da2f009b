package vip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// An upgrade hands the instances to another process (docs/operations.md,
// "Restarts and upgrades"): the old process sends HandoverStates to the new
// one, which Adopts them before Run and resumes each master as master (an
// advert at once, VIPs kept). Both advertise for a moment (from the same
// address: each drops the other's adverts as its own); once the new
// process's instances have Started, the old one Releases them, so its Run
// ends without a priority-0 advert and without removing the VIPs, and the
// new one Commits. Until then the new process, if stopped, gives up nothing
// either: the old one still holds the VIPs.

// HandoverState is one instance as a process being upgraded hands it over:
// its identity (interface, VRID, address family) and its state.
type HandoverState struct {
	Name      string `json:"name"` // for the log; the identity is the rest
	Interface string `json:"interface"`
	VRID      int    `json:"vrid"`
	IPv6      bool   `json:"ipv6"`
	State     State  `json:"state"`
	// Holding: its VIPs are on their devices, added by it.
	Holding bool `json:"holding"`
}

// maxHandoverStates bounds a decoded list: one per VRID and family per
// interface is all a host can run; a handful in practice.
const maxHandoverStates = 4096

// ErrHandover: a handed-over state list that does not decode.
var ErrHandover = errors.New("vip: malformed handover states")

// EncodeHandover encodes states for the other process.
func EncodeHandover(states []HandoverState) ([]byte, error) {
	if states == nil {
		states = []HandoverState{}
	}
	return json.Marshal(states)
}

// DecodeHandover decodes what EncodeHandover made, refusing unknown
// states, out-of-range VRIDs, a missing interface and more than
// maxHandoverStates entries. Unknown fields are ignored: a newer binary
// may hand over more.
func DecodeHandover(b []byte) ([]HandoverState, error) {
	var states []HandoverState
	if err := json.Unmarshal(b, &states); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandover, err)
	}
	if len(states) > maxHandoverStates {
		return nil, fmt.Errorf("%w: %d entries", ErrHandover, len(states))
	}
	for _, s := range states {
		if s.VRID < 1 || s.VRID > 255 || s.Interface == "" {
			return nil, fmt.Errorf("%w: instance %q: interface %q, VRID %d", ErrHandover, clipName(s.Name), clipName(s.Interface), s.VRID)
		}
	}
	return states, nil
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// HandoverStates is the current state of every instance, in configuration
// order.
func (m *Manager) HandoverStates() []HandoverState {
	out := make([]HandoverState, 0, len(m.instances))
	for _, in := range m.instances {
		out = append(out, in.handoverState())
	}
	return out
}

func (in *instance) handoverState() HandoverState {
	return HandoverState{Name: in.cfg.Name, Interface: in.cfg.Interface, VRID: in.cfg.VirtualRouterID, IPv6: in.is6,
		State: in.Status().State, Holding: in.holding.Load()}
}

func (in *instance) is(s HandoverState) bool {
	return s.Interface == in.cfg.Interface && s.VRID == in.cfg.VirtualRouterID && s.IPv6 == in.is6
}

// AdoptStates prepares m, not run yet, to continue the instances another
// process hands over, matched by identity, and returns the states it took
// (the others' instances start as usual). A master that holds its VIPs
// resumes as master; any other starts as a new backup. Until Commit, an
// adopted instance removes no VIP (not even stale ones at start) and stops
// without a priority-0 advert. Call it once, before Run.
func (m *Manager) AdoptStates(states []HandoverState) []HandoverState {
	var took []HandoverState
	for _, in := range m.instances {
		for _, s := range states {
			if in.is(s) {
				in.adopted = &s
				in.silent.Store(true)
				took = append(took, s)
				break
			}
		}
	}
	return took
}

// Commit ends the adoption: the other process has let go, so adopted
// instances stop as usual from now on (priority 0, VIPs removed).
func (m *Manager) Commit() {
	for _, in := range m.instances {
		in.silent.Store(false)
	}
}

// Release makes the instances a successor adopted (states it answered,
// matched by identity) stop without a priority-0 advert and without
// removing their VIPs when Run ends: the successor advertises for them.
func (m *Manager) Release(adopted []HandoverState) {
	for _, in := range m.instances {
		for _, s := range adopted {
			if in.is(s) {
				in.handover.Store(true)
			}
		}
	}
}

// Started waits until every instance that adopted a master runs (its
// socket open and its first advert sent), or ctx ends. The others are not
// waited for: a backup has nothing to take over, and an instance still
// waiting for its interface would hold the upgrade up for nothing.
func (m *Manager) Started(ctx context.Context) error {
	for _, in := range m.instances {
		if in.adopted == nil || in.adopted.State != Master {
			continue
		}
		select {
		case <-in.started:
		case <-ctx.Done():
			return fmt.Errorf("vip: instance %s has not started: %w", in.cfg.Name, ctx.Err())
		}
	}
	return nil
}

// States returns the current state of the instances that adopted one of
// states (by identity), for the answer to the old process.
func (m *Manager) States(of []HandoverState) []HandoverState {
	var out []HandoverState
	for _, in := range m.instances {
		for _, s := range of {
			if in.is(s) {
				out = append(out, in.handoverState())
				break
			}
		}
	}
	return out
}

// Reclaim undoes Release: the successor is gone, so the instances stop as
// usual again.
func (m *Manager) Reclaim() {
	for _, in := range m.instances {
		in.handover.Store(false)
	}
}
