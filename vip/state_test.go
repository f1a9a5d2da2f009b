package vip

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func cfg100() MachineConfig {
	return MachineConfig{Priority: 100, AdvertInterval: time.Second, Preempt: true, Addr: netip.MustParseAddr("10.0.0.2")}
}

var (
	higherAddr = netip.MustParseAddr("10.0.0.3")
	lowerAddr  = netip.MustParseAddr("10.0.0.1")
)

func advert(from netip.Addr, prio uint8, interval time.Duration) Event {
	return Event{Kind: EventAdvert, From: from, Priority: prio, Interval: interval}
}

var timerEv = Event{Kind: EventTimer}

type step struct {
	ev       Event
	at       time.Duration
	want     []Action
	state    State
	deadline time.Duration // -1: no deadline
}

var (
	becomeMaster = func(p uint8) []Action {
		return []Action{{Kind: ActionSendAdvert, Priority: p}, {Kind: ActionAddVIPs}, {Kind: ActionGARP}, {Kind: ActionNotify, State: Master, Priority: p}}
	}
	notify = func(s State, p uint8) Action { return Action{Kind: ActionNotify, State: s, Priority: p} }
	send   = func(p uint8) Action { return Action{Kind: ActionSendAdvert, Priority: p} }
	remove = Action{Kind: ActionRemoveVIPs}
)

func TestMachineTransitions(t *testing.T) {
	mdi100 := ms(3609.375)
	tests := []struct {
		name  string
		cfg   func(*MachineConfig)
		steps []step
	}{
		{"startup backup then master after Master_Down_Interval", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100 - 1, nil, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{timerEv, mdi100 + time.Second, []Action{send(100)}, Master, mdi100 + 2*time.Second},
		}},
		{"owner 255 takes over at once", func(c *MachineConfig) { c.Priority = 255 }, []step{
			{Event{Kind: EventStartup}, 0, becomeMaster(255), Master, time.Second},
			{advert(higherAddr, 254, time.Second), ms(10), nil, Master, time.Second},
		}},
		{"a reload's handover resumes a master at once, at any priority", nil, []step{
			{Event{Kind: EventResume}, 0, becomeMaster(100), Master, time.Second},
			{timerEv, time.Second, []Action{send(100)}, Master, 2 * time.Second},
		}},
		{"a reload's handover while tracking faults: FAULT, no advert", nil, []step{
			{Event{Kind: EventTrack, Fault: true}, 0, nil, Initialize, -1},
			{Event{Kind: EventResume}, 0, []Action{notify(Fault, 100)}, Fault, -1},
		}},
		{"state hint is ignored: MASTER waits like BACKUP", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
		}},
		{"backup resets down timer on higher advert and adopts its interval", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			// Master at 150 advertising every 100 ms: MDI = 300 ms + Skew(100 @ 100 ms).
			{advert(higherAddr, 150, 100*time.Millisecond), time.Second, nil, Backup, time.Second + ms(360.9375)},
			{advert(higherAddr, 150, 100*time.Millisecond), ms(1100), nil, Backup, ms(1100) + ms(360.9375)},
		}},
		{"backup accepts equal priority whatever the address", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{advert(lowerAddr, 100, time.Second), time.Second, nil, Backup, time.Second + mdi100},
		}},
		{"priority 0 cuts the wait to Skew_Time", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{advert(higherAddr, 150, time.Second), time.Second, nil, Backup, time.Second + mdi100},
			{advert(higherAddr, 0, time.Second), 2 * time.Second, nil, Backup, 2*time.Second + ms(609.375)},
			{timerEv, 2*time.Second + ms(609.375), becomeMaster(100), Master, 3*time.Second + ms(609.375)},
		}},
		{"preempt: lower-priority adverts are ignored", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{advert(higherAddr, 50, time.Second), time.Second, nil, Backup, mdi100},
			{advert(higherAddr, 50, time.Second), 2 * time.Second, nil, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
		}},
		{"nopreempt: lower-priority master is kept", func(c *MachineConfig) { c.Preempt = false }, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{advert(higherAddr, 50, time.Second), time.Second, nil, Backup, time.Second + mdi100},
			{advert(higherAddr, 50, time.Second), 2 * time.Second, nil, Backup, 2*time.Second + mdi100},
		}},
		{"preempt_delay holds preemption after start-up and first sighting", func(c *MachineConfig) { c.PreemptDelay = 5 * time.Second }, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{advert(higherAddr, 50, time.Second), 3 * time.Second, nil, Backup, 3*time.Second + mdi100},
			{advert(higherAddr, 50, time.Second), 7 * time.Second, nil, Backup, 7*time.Second + mdi100},
			// 5 s after start-up but only 5 s after the first sighting at 3 s from 8 s on.
			{advert(higherAddr, 50, time.Second), 8 * time.Second, nil, Backup, 7*time.Second + mdi100},
			{timerEv, 7*time.Second + mdi100, becomeMaster(100), Master, 8*time.Second + mdi100},
		}},
		{"master yields to higher priority", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{advert(lowerAddr, 200, 100*time.Millisecond), 4 * time.Second, []Action{remove, notify(Backup, 100)}, Backup, 4*time.Second + ms(360.9375)},
		}},
		{"higher_prio_send_advert: the loser advertises once before yielding", func(c *MachineConfig) { c.HigherPrioSendAdvert = true }, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{advert(lowerAddr, 200, time.Second), 4 * time.Second, []Action{send(100), remove, notify(Backup, 100)}, Backup, 4*time.Second + mdi100},
		}},
		{"master tie-break: higher address wins", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{advert(lowerAddr, 100, time.Second), 4 * time.Second, []Action{send(100), {Kind: ActionGARP}}, Master, 5 * time.Second},
			{advert(higherAddr, 100, time.Second), ms(4500), []Action{remove, notify(Backup, 100)}, Backup, ms(4500) + mdi100},
		}},
		{"master answers lower priority with advert and GARP", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{advert(higherAddr, 50, time.Second), 4 * time.Second, []Action{send(100), {Kind: ActionGARP}}, Master, 5 * time.Second},
		}},
		{"lower_prio_no_advert: RFC ignore", func(c *MachineConfig) { c.LowerPrioNoAdvert = true }, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{advert(higherAddr, 50, time.Second), 4 * time.Second, nil, Master, mdi100 + time.Second},
		}},
		{"master re-asserts on priority 0", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{advert(higherAddr, 0, time.Second), 4 * time.Second, []Action{send(100)}, Master, 5 * time.Second},
		}},
		{"shutdown as master sends priority 0 and removes VIPs", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{Event{Kind: EventShutdown}, 4 * time.Second, []Action{send(0), remove, notify(Initialize, 100)}, Initialize, -1},
			{Event{Kind: EventShutdown}, 5 * time.Second, nil, Initialize, -1},
		}},
		{"shutdown as backup", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{Event{Kind: EventShutdown}, time.Second, []Action{notify(Initialize, 100)}, Initialize, -1},
		}},
		{"garp delay and refresh", func(c *MachineConfig) {
			c.GARPDelay = 5 * time.Second
			c.GARPRefresh = 60 * time.Second
			c.AdvertInterval = 10 * time.Second
		}, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, 30*time.Second + ms(6093.75)},
			{timerEv, 30*time.Second + ms(6093.75), becomeMaster(100), Master, 35*time.Second + ms(6093.75)},
			{timerEv, 35*time.Second + ms(6093.75), []Action{{Kind: ActionGARP}}, Master, 40*time.Second + ms(6093.75)},
			{timerEv, 90*time.Second + ms(6093.75), []Action{send(100), {Kind: ActionGARP, Refresh: true}}, Master, 100*time.Second + ms(6093.75)},
		}},
		{"weighted tracking lowers priority; master tells at once", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{Event{Kind: EventTrack, Penalty: 60}, 4 * time.Second, []Action{send(40)}, Master, 5 * time.Second},
			{Event{Kind: EventTrack, Penalty: 60}, ms(4100), nil, Master, 5 * time.Second},
			{advert(lowerAddr, 50, time.Second), ms(4200), []Action{remove, notify(Backup, 40)}, Backup, ms(4200) + 3*time.Second + ms(843.75)},
			{Event{Kind: EventTrack, Penalty: 500}, ms(4300), nil, Backup, ms(4200) + 3*time.Second + ms(843.75)},
		}},
		{"fault tracking: master drops to FAULT and back to BACKUP", nil, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, mdi100},
			{timerEv, mdi100, becomeMaster(100), Master, mdi100 + time.Second},
			{Event{Kind: EventTrack, Fault: true}, 4 * time.Second, []Action{send(0), remove, notify(Fault, 100)}, Fault, -1},
			{advert(higherAddr, 50, time.Second), 5 * time.Second, nil, Fault, -1},
			{Event{Kind: EventTrack}, 6 * time.Second, []Action{notify(Backup, 100)}, Backup, 6*time.Second + mdi100},
		}},
		{"fault at start-up", nil, []step{
			{Event{Kind: EventTrack, Fault: true}, 0, nil, Initialize, -1},
			{Event{Kind: EventStartup}, 0, []Action{notify(Fault, 100)}, Fault, -1},
			{Event{Kind: EventTrack, Fault: true}, time.Second, nil, Fault, -1},
			{Event{Kind: EventShutdown}, 2 * time.Second, []Action{notify(Initialize, 100)}, Initialize, -1},
		}},
		{"owner with penalty is no owner", func(c *MachineConfig) { c.Priority = 255 }, []step{
			{Event{Kind: EventTrack, Penalty: 10}, 0, nil, Initialize, -1},
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 245)}, Backup, 3*time.Second + ms(42.96875)},
		}},
		{"down_timer_adverts", func(c *MachineConfig) { c.DownTimerAdverts = 5 }, []step{
			{Event{Kind: EventStartup}, 0, []Action{notify(Backup, 100)}, Backup, 5*time.Second + ms(609.375)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg100()
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			m := NewMachine(c)
			for i, s := range tt.steps {
				got := m.Step(s.ev, at(s.at))
				if !reflect.DeepEqual(got, s.want) {
					t.Fatalf("step %d: Step(%+v, +%s) = %+v, want %+v", i, s.ev, s.at, got, s.want)
				}
				if m.State() != s.state {
					t.Fatalf("step %d: state %s, want %s", i, m.State(), s.state)
				}
				wantDL := time.Time{}
				if s.deadline >= 0 {
					wantDL = at(s.deadline)
				}
				if dl := m.Deadline(); !dl.Equal(wantDL) {
					t.Fatalf("step %d: Deadline() = +%s, want +%s", i, dl.Sub(t0), s.deadline)
				}
			}
		})
	}
}

func TestMachineStatus(t *testing.T) {
	m := NewMachine(cfg100())
	m.Step(Event{Kind: EventStartup}, at(0))
	m.Step(advert(higherAddr, 150, 100*time.Millisecond), at(time.Second))
	if m.MasterAddr() != higherAddr || m.MasterAdverInterval() != 100*time.Millisecond {
		t.Errorf("MasterAddr, interval = %s, %s; want %s, 100ms", m.MasterAddr(), m.MasterAdverInterval(), higherAddr)
	}
	m.Step(advert(higherAddr, 0, 100*time.Millisecond), at(2*time.Second))
	m.Step(timerEv, at(3*time.Second))
	if m.State() != Master || m.MasterAddr() != cfg100().Addr || m.Transitions() != 2 || !m.LastChange().Equal(at(3*time.Second)) {
		t.Errorf("state %s master %s transitions %d last %s", m.State(), m.MasterAddr(), m.Transitions(), m.LastChange())
	}
	for s, want := range map[State]string{Initialize: "INIT", Backup: "BACKUP", Master: "MASTER", Fault: "FAULT", 9: "UNKNOWN"} {
		if s.String() != want {
			t.Errorf("State(%d).String() = %s, want %s", s, s, want)
		}
	}
}

// TestStateText: /status and the netns helpers spell states as keepalived
// does; anything else is refused.
func TestStateText(t *testing.T) {
	for _, s := range []State{Initialize, Backup, Master, Fault} {
		b, err := s.MarshalText()
		var back State
		if err != nil || back.UnmarshalText(b) != nil || back != s {
			t.Errorf("%v: MarshalText = %q, %v; read back %v", s, b, err, back)
		}
	}
	if _, err := State(9).MarshalText(); err == nil {
		t.Error("MarshalText of State(9) succeeded")
	}
	for _, bad := range []string{"", "master", "UNKNOWN", "MASTER "} {
		var s State
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, want an error", bad, s)
		}
	}
}
