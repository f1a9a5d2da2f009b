package cron

import (
	"testing"
	"time"
)

// runFor steps m every tick from start to end (exclusive) and returns the
// times a call was decided; every call ends took later.
func runFor(m *Machine, start, end time.Time, tick, took time.Duration) []time.Time {
	var calls []time.Time
	for now := start; now.Before(end); now = now.Add(tick) {
		if d := m.Step(now, EventTick); d.Call {
			calls = append(calls, now)
			m.Step(now.Add(took), EventDone)
		}
	}
	return calls
}

func TestMachineOneCallPerInterval(t *testing.T) {
	const interval = 10 * time.Minute
	m := NewMachine(interval, 0)
	if d := m.Step(t0, EventTick); d.Call || !d.Next.IsZero() {
		t.Fatalf("follower tick = %+v, want nothing", d)
	}
	d := m.Step(t0, EventLeader)
	if want := t0.Add(interval); !d.Next.Equal(want) {
		t.Fatalf("leader Next = %s, want %s (a full interval after taking over)", d.Next, want)
	}
	// 100 intervals, ticking every second, calls taking no time.
	calls := runFor(m, t0, t0.Add(100*interval+time.Second), time.Second, 0)
	if len(calls) != 100 {
		t.Fatalf("%d calls in 100 intervals, want 100", len(calls))
	}
	for i, c := range calls {
		if want := t0.Add(time.Duration(i+1) * interval); !c.Equal(want) {
			t.Errorf("call %d at %s, want %s", i, c, want)
		}
	}
}

func TestMachineIntervalCountsFromEnd(t *testing.T) {
	const interval = time.Minute
	m := NewMachine(interval, 0)
	m.Step(t0, EventLeader)
	// Each call takes 20s: the next starts an interval after the end, as
	// mosparo's own schedule does.
	calls := runFor(m, t0, t0.Add(10*time.Minute), time.Second, 20*time.Second)
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap != 80*time.Second {
			t.Errorf("gap %d = %s, want 1m20s", i, gap)
		}
	}
	if len(calls) != 7 {
		t.Errorf("%d calls, want 7", len(calls))
	}
}

func TestMachineLateTickNoBurst(t *testing.T) {
	m := NewMachine(time.Minute, 0)
	m.Step(t0, EventLeader)
	// The runner slept through five intervals (suspended host): one call,
	// then a full interval, never a catch-up burst.
	late := t0.Add(5 * time.Minute)
	if d := m.Step(late, EventTick); !d.Call {
		t.Fatal("late tick made no call")
	}
	if d := m.Step(late, EventTick); d.Call || !m.Busy() {
		t.Fatal("second call while the first is out")
	}
	d := m.Step(late, EventDone)
	if want := late.Add(time.Minute); !d.Next.Equal(want) {
		t.Errorf("Next = %s, want %s", d.Next, want)
	}
	if d := m.Step(late.Add(59*time.Second), EventTick); d.Call {
		t.Error("call before the interval passed")
	}
}

func TestMachineNoNodeRetriesSoon(t *testing.T) {
	m := NewMachine(10*time.Minute, 10*time.Second)
	m.Step(t0, EventLeader)
	at := t0.Add(10 * time.Minute)
	if d := m.Step(at, EventTick); !d.Call {
		t.Fatal("no call when due")
	}
	d := m.Step(at, EventNoNode)
	if want := at.Add(10 * time.Second); !d.Next.Equal(want) {
		t.Fatalf("Next after no node = %s, want %s", d.Next, want)
	}
	if d := m.Step(at.Add(10*time.Second), EventTick); !d.Call {
		t.Fatal("no retry after 10s")
	}
	d = m.Step(at.Add(11*time.Second), EventDone)
	if want := at.Add(11*time.Second + 10*time.Minute); !d.Next.Equal(want) {
		t.Errorf("Next after the call = %s, want %s", d.Next, want)
	}
}

func TestMachineFollowerStops(t *testing.T) {
	m := NewMachine(time.Minute, 0)
	m.Step(t0, EventLeader)
	m.Step(t0.Add(30*time.Second), EventFollower)
	if calls := runFor(m, t0, t0.Add(time.Hour), time.Second, 0); len(calls) != 0 {
		t.Errorf("follower made %d calls", len(calls))
	}
	// Regaining leadership restarts the count: a full interval again.
	back := t0.Add(time.Hour)
	d := m.Step(back, EventLeader)
	if want := back.Add(time.Minute); !d.Next.Equal(want) {
		t.Errorf("Next after regaining = %s, want %s", d.Next, want)
	}
	// A repeated EventLeader does not push the call further out.
	if d := m.Step(back.Add(30*time.Second), EventLeader); !d.Next.Equal(back.Add(time.Minute)) {
		t.Errorf("repeated leader moved Next to %s", d.Next)
	}
}

func TestMachineLeadershipLostDuringCall(t *testing.T) {
	m := NewMachine(time.Minute, 0)
	m.Step(t0, EventLeader)
	if d := m.Step(t0.Add(time.Minute), EventTick); !d.Call {
		t.Fatal("no call")
	}
	m.Step(t0.Add(70*time.Second), EventFollower)
	if d := m.Step(t0.Add(80*time.Second), EventDone); !d.Next.IsZero() {
		t.Errorf("follower scheduled %s after its call ended", d.Next)
	}
}

func TestMachinePanicsOnImpossible(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"done without call", func() { NewMachine(time.Minute, 0).Step(t0, EventDone) }},
		{"unknown event", func() { NewMachine(time.Minute, 0).Step(t0, Event(99)) }},
		{"zero interval", func() { NewMachine(0, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}

// TestMachineTakeoverNoDoubleCall moves leadership between two LBs' machines
// at many phases of the interval; across both, two calls are never closer
// than an interval, and the schedule goes on on the new leader.
func TestMachineTakeoverNoDoubleCall(t *testing.T) {
	const interval = 10 * time.Minute
	for _, phase := range []time.Duration{0, time.Second, 3 * time.Minute, 9*time.Minute + 59*time.Second, interval} {
		t.Run(phase.String(), func(t *testing.T) {
			a, b := NewMachine(interval, 0), NewMachine(interval, 0)
			leader := a
			a.Step(t0, EventLeader)
			b.Step(t0, EventFollower)
			var calls []time.Time
			flips := 0
			for now := t0; now.Before(t0.Add(20 * interval)); now = now.Add(time.Second) {
				// Flip once every 3 intervals, at the phase under test.
				if now.Sub(t0) == time.Duration(3*(flips+1))*interval+phase {
					old := leader
					leader = map[*Machine]*Machine{a: b, b: a}[old]
					old.Step(now, EventFollower)
					leader.Step(now, EventLeader)
					flips++
				}
				for _, m := range []*Machine{a, b} {
					if d := m.Step(now, EventTick); d.Call {
						calls = append(calls, now)
						if m != leader {
							t.Errorf("call at %s by a follower", now.Sub(t0))
						}
						m.Step(now, EventDone)
					}
				}
			}
			for i := 1; i < len(calls); i++ {
				if gap := calls[i].Sub(calls[i-1]); gap < interval {
					t.Errorf("calls %d and %d only %s apart", i-1, i, gap)
				}
			}
			if len(calls) < 12 {
				t.Errorf("%d calls in 20 intervals with %d takeovers, want at least 12", len(calls), flips)
			}
		})
	}
}
