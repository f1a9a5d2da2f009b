package cron

import (
	"fmt"
	"time"
)

// Event is one input of Machine.Step.
type Event uint8

// Events. The zero Event is invalid.
const (
	// EventLeader: this LB is the one that runs the cron (VRRP master, lock
	// holder or standalone). Repeating it changes nothing.
	EventLeader Event = iota + 1
	// EventFollower: another LB runs it, or nobody is sure that we do.
	EventFollower
	// EventTick: the runner's timer fired (at or after Next).
	EventTick
	// EventDone: the call asked for by the last Decision.Call ended, with
	// any answer or error: the next one is an interval from now.
	EventDone
	// EventNoNode: the call asked for reached no node (none was up, or
	// none accepted a connection), so nothing can be running; the machine
	// retries soon instead of waiting an interval.
	EventNoNode
)

var eventNames = [...]string{EventLeader: "leader", EventFollower: "follower", EventTick: "tick", EventDone: "done", EventNoNode: "no_node"}

func (e Event) String() string {
	if e >= EventLeader && int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", uint8(e))
}

// Decision is the output of Machine.Step.
type Decision struct {
	// Call asks the runner to make one web-cron call now and to report its
	// end with EventDone (or EventNoNode).
	Call bool
	// Next is when the next call is due; zero while no call is scheduled
	// (a follower, or a call is out). The runner wakes up then with
	// EventTick; waking earlier is harmless.
	Next time.Time
}

// Machine is the web-cron schedule of one LB, pure: no clock, timer or
// network; time comes in with every Step. It guarantees that calls made by
// this LB start at least Interval after the previous call ended, that no
// call starts earlier than Interval after this LB became the leader, and
// that at most one call is out at a time. Not safe for concurrent use.
type Machine struct {
	interval time.Duration
	retry    time.Duration

	leader bool
	busy   bool      // a call is out: Call was decided, Done not yet seen
	next   time.Time // due time of the next call while leader and idle
}

// NewMachine returns a follower machine. interval is the pause between the
// end of a call and the next one; retry is the pause after EventNoNode
// (at most interval; 0 means interval).
func NewMachine(interval, retry time.Duration) *Machine {
	if interval <= 0 {
		panic("cron: non-positive interval")
	}
	if retry <= 0 || retry > interval {
		retry = interval
	}
	return &Machine{interval: interval, retry: retry}
}

// Step feeds one event at now and says what to do.
func (m *Machine) Step(now time.Time, ev Event) Decision {
	switch ev {
	case EventLeader:
		if !m.leader {
			// The previous leader may have called a moment ago and we
			// cannot know (its state is not shared), so a new leader waits
			// a full interval: no double call inside one interval.
			m.leader = true
			m.next = now.Add(m.interval)
		}
	case EventFollower:
		m.leader = false
		m.next = time.Time{}
	case EventTick:
		if m.leader && !m.busy && !now.Before(m.next) {
			m.busy = true
			m.next = time.Time{}
			return Decision{Call: true}
		}
	case EventDone, EventNoNode:
		if !m.busy {
			panic("cron: " + ev.String() + " without a call")
		}
		m.busy = false
		if m.leader {
			if ev == EventDone {
				m.next = now.Add(m.interval)
			} else {
				m.next = now.Add(m.retry)
			}
		}
	default:
		panic(fmt.Sprintf("cron: unknown event %d", ev))
	}
	return Decision{Next: m.Next()}
}

// Next is when the next call is due; zero when none is scheduled.
func (m *Machine) Next() time.Time {
	if !m.leader || m.busy {
		return time.Time{}
	}
	return m.next
}

// Leader reports whether the machine last heard EventLeader.
func (m *Machine) Leader() bool { return m.leader }

// Busy reports whether a call is out.
func (m *Machine) Busy() bool { return m.busy }
