package vip

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a virtual router's state (RFC 5798 6.4 plus keepalived's FAULT).
type State uint8

// States. Initialize is also where a stopped instance ends.
const (
	Initialize State = iota
	Backup
	Master
	Fault
)

func (s State) String() string {
	switch s {
	case Initialize:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	}
	return "UNKNOWN"
}

// MarshalText writes the keepalived spelling (MASTER, BACKUP, ...), so
// State is a JSON string in /status.
func (s State) MarshalText() ([]byte, error) {
	if s > Fault {
		return nil, fmt.Errorf("vip: invalid state %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a name written by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	for c := Initialize; c <= Fault; c++ {
		if string(b) == c.String() {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("vip: unknown state %q", b)
}

// MachineConfig is what the state machine needs of an instance.
type MachineConfig struct {
	// Version 2 takes Skew_Time in seconds (RFC 3768); 0 or 3 is RFC 5798.
	Version Version
	// Priority is the configured priority, 1..255 (255 = address owner).
	Priority uint8
	// AdvertInterval is our own Advertisement_Interval (whole centiseconds).
	AdvertInterval time.Duration
	// Preempt is Preempt_Mode (keepalived's !nopreempt).
	Preempt bool
	// PreemptDelay is waited after start-up, and after first hearing a
	// lower-priority master, before preempting it (keepalived's preempt_delay).
	PreemptDelay time.Duration
	// DownTimerAdverts is the multiplier of Master_Down_Interval (RFC: 3).
	DownTimerAdverts int
	// Addr is our primary address, compared on equal priorities.
	Addr netip.Addr
	// LowerPrioNoAdvert keeps the RFC rule of ignoring lower-priority
	// adverts as master; false answers them with an advert and a GARP burst.
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert makes a master that yields to a higher-priority
	// advert first send one advert of its own, so that the winner hears a
	// lower-priority master and re-sends its GARPs: after a split brain the
	// clients that followed the loser come back (keepalived's
	// higher_prio_send_advert, FACTS 3.1).
	HigherPrioSendAdvert bool
	// GARPDelay is when the second GARP burst follows a takeover; 0 = none.
	GARPDelay time.Duration
	// GARPRefresh repeats GARPs this often while master; 0 = off.
	GARPRefresh time.Duration
}

// EventKind says what happened.
type EventKind uint8

// Events.
const (
	// EventStartup starts the instance (RFC 6.4.1).
	EventStartup EventKind = iota + 1
	// EventShutdown stops it: a master sends priority 0 and drops the VIPs.
	EventShutdown
	// EventAdvert is a valid advert of our VRID from another router.
	EventAdvert
	// EventTimer is the runner's timer firing at or after Deadline().
	EventTimer
	// EventTrack reports the current tracking result (penalty and fault).
	EventTrack
	// EventResume starts the instance as the master it continues: a reload
	// handed a master over (Manager.Adopt), whose VIPs are still in place.
	// It is EventStartup for a router that owns the addresses for now.
	EventResume
)

// Event is one input of Step.
type Event struct {
	Kind EventKind
	// EventAdvert: the sender's primary address, its priority and its
	// Max Adver Int.
	From     netip.Addr
	Priority uint8
	Interval time.Duration
	// EventTrack: the sum of the weights of the failing weighted trackers,
	// and whether an unweighted (FAULT) tracker fails.
	Penalty int
	Fault   bool
}

// ActionKind says what the runner must do.
type ActionKind uint8

// Actions, carried out in the order Step returns them.
const (
	// ActionSendAdvert sends an advert with Action.Priority.
	ActionSendAdvert ActionKind = iota + 1
	// ActionAddVIPs adds the virtual addresses.
	ActionAddVIPs
	// ActionRemoveVIPs removes them.
	ActionRemoveVIPs
	// ActionGARP sends gratuitous ARPs / unsolicited NAs for every VIP:
	// a takeover burst, or a refresh when Action.Refresh.
	ActionGARP
	// ActionNotify runs the notify hooks for Action.State
	// (Initialize meaning STOP) with Action.Priority.
	ActionNotify
)

// Action is one output of Step.
type Action struct {
	Kind     ActionKind
	Priority uint8
	State    State
	Refresh  bool
}

// Machine is one virtual router's RFC 5798 state machine, pure: no clock,
// socket or netlink. Time comes in with every Step; the runner calls Step
// with EventTimer once Deadline() has passed. Not safe for concurrent use.
type Machine struct {
	cfg MachineConfig

	state   State
	penalty int
	fault   bool

	masterAdverInt time.Duration
	master         netip.Addr // current master as last heard ("" if we are it)
	masterPrio     uint8

	downAt, adverAt, garpAt, refreshAt time.Time
	startedAt, lowerSince              time.Time

	transitions int
	lastChange  time.Time
}

// NewMachine returns a machine in Initialize; send EventStartup next.
func NewMachine(cfg MachineConfig) *Machine {
	if cfg.DownTimerAdverts < 1 {
		cfg.DownTimerAdverts = DefaultDownTimerAdverts
	}
	return &Machine{cfg: cfg, masterAdverInt: cfg.AdvertInterval}
}

// State is the current state.
func (m *Machine) State() State { return m.state }

// Priority is the effective priority: the configured one less the tracking
// penalty, kept within 1..254 (an owner with no penalty stays 255).
func (m *Machine) Priority() uint8 {
	p := int(m.cfg.Priority)
	if m.penalty == 0 {
		return uint8(p)
	}
	p -= m.penalty
	switch {
	case p < 1:
		p = 1
	case p > 254:
		p = 254
	}
	return uint8(p)
}

// MasterAddr is the master's address as last heard in an advert, ours while
// we are master, invalid when unknown.
func (m *Machine) MasterAddr() netip.Addr {
	if m.state == Master {
		return m.cfg.Addr
	}
	return m.master
}

// MasterAdverInterval is the interval learnt from the master (RFC 6.1).
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterAdverInt }

// Transitions counts state changes; LastChange is when the last one happened.
func (m *Machine) Transitions() int      { return m.transitions }
func (m *Machine) LastChange() time.Time { return m.lastChange }

// Deadline is when the runner must step EventTimer next; zero means no timer.
func (m *Machine) Deadline() time.Time {
	var d time.Time
	for _, t := range []time.Time{m.downAt, m.adverAt, m.garpAt, m.refreshAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Step feeds one event in at time now and returns what to do, in order.
func (m *Machine) Step(ev Event, now time.Time) []Action {
	switch ev.Kind {
	case EventStartup:
		if m.state == Initialize {
			m.startedAt = now
			return m.start(now)
		}
	case EventResume:
		if m.state == Initialize {
			m.startedAt = now
			if m.fault {
				return m.become(Fault, now)
			}
			return m.takeOver(now)
		}
	case EventShutdown:
		return m.shutdown(now)
	case EventAdvert:
		switch m.state {
		case Backup:
			return m.backupAdvert(ev, now)
		case Master:
			return m.masterAdvert(ev, now)
		}
	case EventTimer:
		return m.timer(now)
	case EventTrack:
		return m.track(ev, now)
	}
	return nil
}

// start leaves Initialize (RFC 6.4.1), or Fault once tracking recovers.
func (m *Machine) start(now time.Time) []Action {
	if m.fault {
		return m.become(Fault, now)
	}
	if m.Priority() == 255 {
		return m.takeOver(now)
	}
	return m.toBackup(m.cfg.AdvertInterval, now)
}

func (m *Machine) shutdown(now time.Time) []Action {
	if m.state == Initialize {
		return nil
	}
	var acts []Action
	if m.state == Master {
		acts = append(acts, Action{Kind: ActionSendAdvert, Priority: 0}, Action{Kind: ActionRemoveVIPs})
	}
	m.stopTimers()
	m.master = netip.Addr{}
	return append(acts, m.become(Initialize, now)...)
}

// backupAdvert is RFC 6.4.2 on receiving an ADVERTISEMENT.
func (m *Machine) backupAdvert(ev Event, now time.Time) []Action {
	if ev.Priority == 0 {
		// The master is leaving: take over after Skew_Time only.
		m.downAt = now.Add(m.skew())
		return nil
	}
	m.master, m.masterPrio = ev.From, ev.Priority
	if m.cfg.Preempt && ev.Priority < m.Priority() && !m.preemptHeldBack(now) {
		// Ignore it: the down timer runs out and we preempt (RFC 6.4.2).
		return nil
	}
	if ev.Priority >= m.Priority() {
		m.lowerSince = time.Time{}
	}
	m.masterAdverInt = ev.Interval
	m.downAt = now.Add(m.mdi())
	return nil
}

// preemptHeldBack is keepalived's preempt_delay: a lower-priority master is
// accepted until the delay has passed since start-up and since we first heard it.
func (m *Machine) preemptHeldBack(now time.Time) bool {
	if m.cfg.PreemptDelay <= 0 {
		return false
	}
	if m.lowerSince.IsZero() {
		m.lowerSince = now
	}
	return now.Before(m.startedAt.Add(m.cfg.PreemptDelay)) || now.Before(m.lowerSince.Add(m.cfg.PreemptDelay))
}

// masterAdvert is RFC 6.4.3 on receiving an ADVERTISEMENT.
func (m *Machine) masterAdvert(ev Event, now time.Time) []Action {
	own := m.Priority()
	if own == 255 {
		return nil // the owner discards adverts of its VRID (RFC 7.1)
	}
	switch {
	case ev.Priority == 0:
		// Someone is leaving: re-assert at once.
		m.adverAt = now.Add(m.cfg.AdvertInterval)
		return []Action{{Kind: ActionSendAdvert, Priority: own}}
	case ev.Priority > own || ev.Priority == own && ev.From.Compare(m.cfg.Addr) > 0:
		m.master, m.masterPrio = ev.From, ev.Priority
		var acts []Action
		if m.cfg.HigherPrioSendAdvert {
			acts = append(acts, Action{Kind: ActionSendAdvert, Priority: own})
		}
		acts = append(acts, Action{Kind: ActionRemoveVIPs})
		return append(acts, m.toBackup(ev.Interval, now)...)
	case m.cfg.LowerPrioNoAdvert:
		return nil
	}
	// keepalived's "forcing new election" (FACTS 2): answer a lower
	// master at once so it yields, and re-GARP so clients come back to us.
	m.adverAt = now.Add(m.cfg.AdvertInterval)
	return []Action{{Kind: ActionSendAdvert, Priority: own}, {Kind: ActionGARP}}
}

func (m *Machine) timer(now time.Time) []Action {
	var acts []Action
	switch m.state {
	case Backup:
		if !m.downAt.IsZero() && !now.Before(m.downAt) {
			return m.takeOver(now)
		}
	case Master:
		if !m.adverAt.IsZero() && !now.Before(m.adverAt) {
			acts = append(acts, Action{Kind: ActionSendAdvert, Priority: m.Priority()})
			m.adverAt = now.Add(m.cfg.AdvertInterval)
		}
		if !m.garpAt.IsZero() && !now.Before(m.garpAt) {
			acts = append(acts, Action{Kind: ActionGARP})
			m.garpAt = time.Time{}
		}
		if !m.refreshAt.IsZero() && !now.Before(m.refreshAt) {
			acts = append(acts, Action{Kind: ActionGARP, Refresh: true})
			m.refreshAt = now.Add(m.cfg.GARPRefresh)
		}
	}
	return acts
}

func (m *Machine) track(ev Event, now time.Time) []Action {
	before := m.Priority()
	wasFault := m.fault
	m.penalty, m.fault = max(ev.Penalty, 0), ev.Fault
	switch {
	case m.state == Initialize:
		return nil
	case m.fault && !wasFault:
		var acts []Action
		if m.state == Master {
			acts = append(acts, Action{Kind: ActionSendAdvert, Priority: 0}, Action{Kind: ActionRemoveVIPs})
		}
		m.stopTimers()
		return append(acts, m.become(Fault, now)...)
	case !m.fault && wasFault && m.state == Fault:
		return m.start(now) // keepalived: FAULT -> BACKUP (or MASTER for an owner)
	case m.state == Master && m.Priority() != before:
		// Tell the backups now: a higher one preempts after its down timer.
		m.adverAt = now.Add(m.cfg.AdvertInterval)
		return []Action{{Kind: ActionSendAdvert, Priority: m.Priority()}}
	}
	return nil
}

// takeOver is Master_Down_Timer firing or an owner starting (RFC 6.4.1-2).
func (m *Machine) takeOver(now time.Time) []Action {
	m.stopTimers()
	m.master = netip.Addr{}
	m.lowerSince = time.Time{}
	m.adverAt = now.Add(m.cfg.AdvertInterval)
	if m.cfg.GARPDelay > 0 {
		m.garpAt = now.Add(m.cfg.GARPDelay)
	}
	if m.cfg.GARPRefresh > 0 {
		m.refreshAt = now.Add(m.cfg.GARPRefresh)
	}
	// RFC 5798 6.4.1-2 order: the advert first, so backups stop counting
	// down at once, then the addresses and the gratuitous ARPs.
	acts := []Action{{Kind: ActionSendAdvert, Priority: m.Priority()}, {Kind: ActionAddVIPs}, {Kind: ActionGARP}}
	return append(acts, m.become(Master, now)...)
}

func (m *Machine) toBackup(masterInterval time.Duration, now time.Time) []Action {
	m.stopTimers()
	m.masterAdverInt = masterInterval
	m.downAt = now.Add(m.mdi())
	return m.become(Backup, now)
}

func (m *Machine) mdi() time.Duration {
	if m.cfg.Version == Version2 {
		return time.Duration(m.cfg.DownTimerAdverts)*m.masterAdverInt + m.skew()
	}
	return MasterDownInterval(m.Priority(), m.masterAdverInt, m.cfg.DownTimerAdverts)
}

func (m *Machine) skew() time.Duration {
	if m.cfg.Version == Version2 {
		return SkewTimeV2(m.Priority())
	}
	return SkewTime(m.Priority(), m.masterAdverInt)
}

func (m *Machine) stopTimers() {
	m.downAt, m.adverAt, m.garpAt, m.refreshAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
}

func (m *Machine) become(s State, now time.Time) []Action {
	if s == m.state {
		return nil
	}
	m.state = s
	m.transitions++
	m.lastChange = now
	return []Action{{Kind: ActionNotify, State: s, Priority: m.Priority()}}
}
