package admin

import (
	"fmt"
	"sync"
	"time"

	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"github.com/mosparo-lb/mosparo-lb/vip"
)

// EventKind says what an Event is about.
type EventKind uint8

// Event kinds. The zero EventKind is invalid.
const (
	// EventNodeState: a node's effective state changed after its checks.
	EventNodeState EventKind = iota + 1
	// EventEjection: passive health ejected a node, or its ejection ended.
	EventEjection
	// EventOperator: a node's state changed by an operator's drain,
	// maintenance or ready.
	EventOperator
	// EventVRRP: a VRRP instance changed state.
	EventVRRP
	// EventReload: a configuration reload was applied.
	EventReload
	// EventReloadFailed: a reload was rejected; the old configuration runs.
	EventReloadFailed
)

var eventKindNames = [...]string{EventNodeState: "node_state", EventEjection: "ejection", EventOperator: "operator",
	EventVRRP: "vrrp", EventReload: "reload", EventReloadFailed: "reload_failed"}

func (k EventKind) String() string {
	if k >= EventNodeState && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// MarshalText writes the name, so EventKind is a JSON string.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is one entry of the status page's event list.
type Event struct {
	At   time.Time `json:"time"`
	Kind EventKind `json:"kind"`
	// Subject is the node or VRRP instance; empty for reloads.
	Subject string `json:"subject,omitempty"`
	// From and To are the states left and entered, where there are any.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Detail is the check's reason, the operator's action, the priority or
	// the reload's error.
	Detail string `json:"detail,omitempty"`
}

// Events is a bounded log of recent events, newest kept. Its methods are
// safe for concurrent use and on a nil *Events (then nothing is kept), so
// the hooks can be wired whether or not the admin listener runs.
type Events struct {
	now  func() time.Time
	mu   sync.Mutex
	ring []Event
	head int
	n    int
}

// NewEvents keeps the last size events (default 100); clk stamps events
// given without a time (nil is clock.System).
func NewEvents(size int, clk clock.Clock) *Events {
	if size <= 0 {
		size = 100
	}
	return &Events{now: clock.OrSystem(clk).Now, ring: make([]Event, size)}
}

// Add records ev.
func (e *Events) Add(ev Event) {
	if e == nil {
		return
	}
	if ev.At.IsZero() {
		ev.At = e.now()
	}
	ev.At = ev.At.UTC()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ring[e.head] = ev
	e.head = (e.head + 1) % len(e.ring)
	e.n = min(e.n+1, len(e.ring))
}

// List returns the kept events, newest first, for the "events" of /status.
func (e *Events) List() []Event {
	out := []Event{}
	if e == nil {
		return out
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := 1; i <= e.n; i++ {
		out = append(out, e.ring[(e.head-i+len(e.ring))%len(e.ring)])
	}
	return out
}

// NodeChanged records a node's state change; it fits health.Options.OnChange.
func (e *Events) NodeChanged(c health.Change) {
	ev := Event{At: c.At, Kind: EventNodeState, Subject: c.Node, From: c.From.String(), To: c.To.String(), Detail: c.Reason}
	switch {
	case c.Ejected && c.To == health.Down:
		ev.Kind, ev.Detail = EventEjection, "passive ejection: requests failed in a row"
	case c.Operator != 0 && c.To == c.Operator:
		ev.Kind, ev.Detail = EventOperator, "operator: "+c.Operator.String()
	}
	e.Add(ev)
}

// VRRPChanged records an instance's transition; it fits
// vip.Options.OnTransition.
func (e *Events) VRRPChanged(t vip.Transition) {
	e.Add(Event{At: t.At, Kind: EventVRRP, Subject: t.Instance, From: t.From.String(), To: t.To.String(),
		Detail: fmt.Sprintf("priority %d", t.Priority)})
}

// Reloaded records a reload: err nil when it was applied.
func (e *Events) Reloaded(err error) {
	if err != nil {
		e.Add(Event{Kind: EventReloadFailed, Detail: err.Error()})
		return
	}
	e.Add(Event{Kind: EventReload, Detail: "configuration applied"})
}
