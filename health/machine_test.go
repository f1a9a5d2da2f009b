package health

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testParams() params {
	return params{
		path: "/api/v1/health/check", interval: 2 * time.Second, fast: 500 * time.Millisecond,
		down: 5 * time.Second, timeout: time.Second, rise: 2, fall: 3, slowStart: 10 * time.Second,
		failures: 3, baseEject: 30 * time.Second, maxEject: 100 * time.Second, maxEjectPct: 50,
	}
}

func TestMachineRiseFall(t *testing.T) {
	const D, U, Dr, S = Down, Up, Draining, Setup
	tests := []struct {
		name     string
		start    State
		verified bool
		verdicts []State
		want     []State // health after each verdict
	}{
		{"up falls after fall bad checks", U, true, []State{D, D, D}, []State{U, U, D}},
		{"a good check resets the fall count", U, true, []State{D, D, U, D, D}, []State{U, U, U, U, U}},
		{"down rises after rise good checks", D, true, []State{U, U}, []State{D, U}},
		{"a bad check resets the rise count", D, true, []State{U, D, U, U}, []State{D, D, D, U}},
		{"unverified up: first bad answer is believed", U, false, []State{D}, []State{D}},
		{"unverified up: first good answer keeps it up", U, false, []State{U, D}, []State{U, U}},
		{"unverified down: first good answer is believed", D, false, []State{U}, []State{U}},
		{"unverified down: first draining answer is believed", D, false, []State{Dr}, []State{Dr}},
		{"up to draining and back take one answer each", U, true, []State{Dr, U}, []State{Dr, U}},
		{"up to setup takes one answer", U, true, []State{S, S, U}, []State{S, S, U}},
		{"draining falls like up", Dr, true, []State{D, D, D}, []State{Dr, Dr, D}},
		{"down to draining needs rise answers", D, true, []State{Dr, Dr}, []State{D, Dr}},
		{"rise counts any alive answer, the latest wins", D, true, []State{U, S}, []State{D, S}},
		{"long outage stays down", D, true, []State{D, D, D, D}, []State{D, D, D, D}},
	}
	p := testParams()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(tt.start, t0)
			m.verified = tt.verified
			now := t0
			for i, v := range tt.verdicts {
				now = now.Add(p.interval)
				m.probed(&p, v, v.String(), now.Add(-time.Millisecond), now)
				if m.health != tt.want[i] {
					t.Errorf("after verdict %d (%v): health = %v, want %v", i, v, m.health, tt.want[i])
				}
			}
			if m.lastCheck != now || m.latency != time.Millisecond {
				t.Errorf("lastCheck, latency = %v, %v; want %v, 1ms", m.lastCheck, m.latency, now)
			}
		})
	}
}

func TestMachineDelay(t *testing.T) {
	p := testParams()
	tests := []struct {
		name string
		m    machine
		want time.Duration
	}{
		{"never checked: fast", machine{health: Up}, p.fast},
		{"steady up: interval", machine{health: Up, verified: true, okRun: 5}, p.interval},
		{"up but failing: fast", machine{health: Up, verified: true, failRun: 1}, p.fast},
		{"settled down: down interval", machine{health: Down, verified: true, failRun: 7}, p.down},
		{"down but recovering: fast", machine{health: Down, verified: true, okRun: 1}, p.fast},
		{"ejected: fast", machine{health: Up, verified: true, ejectedUntil: t0}, p.fast},
		{"passive trip refused: fast", machine{health: Up, verified: true, tripped: true}, p.fast},
		{"steady draining: interval", machine{health: Draining, verified: true}, p.interval},
		{"steady setup: interval", machine{health: Setup, verified: true}, p.interval},
		{"maintenance: interval even when down", machine{health: Down, verified: true, operator: Maintenance, okRun: 1}, p.interval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.delay(&p); got != tt.want {
				t.Errorf("delay() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMachineEffective(t *testing.T) {
	tests := []struct {
		name     string
		health   State
		operator State
		ejected  bool
		want     State
	}{
		{"plain up", Up, 0, false, Up},
		{"ejection shows as down", Up, 0, true, Down},
		{"maintenance wins over up", Up, Maintenance, false, Maintenance},
		{"maintenance wins over down", Down, Maintenance, false, Maintenance},
		{"maintenance wins over ejection", Up, Maintenance, true, Maintenance},
		{"operator drain of an up node", Up, Draining, false, Draining},
		{"operator drain of a setup node", Setup, Draining, false, Draining},
		{"operator drain does not revive a down node", Down, Draining, false, Down},
		{"operator drain does not revive an ejected node", Up, Draining, true, Down},
		{"mosparo draining", Draining, 0, false, Draining},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := machine{health: tt.health, operator: tt.operator}
			if tt.ejected {
				m.ejectedAt, m.ejectedUntil = t0, t0.Add(time.Minute)
			}
			if got := m.effective(); got != tt.want {
				t.Errorf("effective() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMachineEjectionBackoff(t *testing.T) {
	p := testParams() // base 30s, max 100s
	m := newMachine(Up, t0)
	m.verified = true
	now := t0
	// Each ejection starts right after the previous one expired.
	for i, want := range []time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second, 100 * time.Second, 100 * time.Second} {
		m.eject(&p, now)
		if got := m.ejectedUntil.Sub(now); got != want {
			t.Errorf("ejection %d lasts %v, want %v", i+1, got, want)
		}
		if m.expire(now.Add(want - time.Nanosecond)) {
			t.Errorf("ejection %d expired early", i+1)
		}
		now = now.Add(want)
		if !m.expire(now) || m.ejected() {
			t.Errorf("ejection %d did not expire at its end", i+1)
		}
		now = now.Add(time.Second)
	}
	if m.ejections != 5 || m.streak != 5 {
		t.Errorf("ejections, streak = %d, %d; want 5, 5", m.ejections, m.streak)
	}
	// Two max_ejection periods without an ejection forgive two steps.
	now = now.Add(2 * p.maxEject)
	m.eject(&p, now)
	if m.streak != 4 {
		t.Errorf("streak after decay = %d, want 4 (5 - 2 + 1)", m.streak)
	}
	// A long quiet time forgives everything.
	m.endEjection(now)
	now = now.Add(1000 * p.maxEject)
	m.eject(&p, now)
	if got := m.ejectedUntil.Sub(now); got != p.baseEject || m.streak != 1 {
		t.Errorf("after a long quiet time: length %v streak %d, want %v 1", got, m.streak, p.baseEject)
	}
}

func TestEjectionLength(t *testing.T) {
	p := testParams()
	tests := []struct {
		streak int
		want   time.Duration
	}{
		{0, 30 * time.Second}, {1, 30 * time.Second}, {3, 90 * time.Second}, {4, 100 * time.Second},
		{1 << 40, 100 * time.Second}, // no overflow
	}
	for _, tt := range tests {
		if got := ejectionLength(&p, tt.streak); got != tt.want {
			t.Errorf("ejectionLength(%d) = %v, want %v", tt.streak, got, tt.want)
		}
	}
}

func TestMachineGoodCheckEndsEjection(t *testing.T) {
	p := testParams()
	tests := []struct {
		name        string
		v           State
		startOffset time.Duration // probe start relative to the ejection
		wantEjected bool
	}{
		{"good check begun after the ejection ends it", Up, time.Millisecond, false},
		{"good check begun at the ejection ends it", Up, 0, false},
		{"good check begun before the ejection does not", Up, -time.Millisecond, true},
		{"draining answer does not", Draining, time.Millisecond, true},
		{"one bad check does not (fall not reached)", Down, time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(Up, t0)
			m.verified = true
			m.eject(&p, t0)
			m.probed(&p, tt.v, "x", t0.Add(tt.startOffset), t0.Add(10*time.Millisecond))
			if m.ejected() != tt.wantEjected {
				t.Errorf("ejected = %v, want %v", m.ejected(), tt.wantEjected)
			}
		})
	}
	// Falling down by active checks clears the ejection: the active verdict
	// takes over.
	m := newMachine(Up, t0)
	m.verified = true
	m.eject(&p, t0)
	for i := range p.fall {
		m.probed(&p, Down, "x", t0.Add(time.Duration(i)*time.Second), t0.Add(time.Duration(i)*time.Second))
	}
	if m.ejected() || m.health != Down {
		t.Errorf("after fall bad checks: ejected %v health %v; want false down", m.ejected(), m.health)
	}
}

func TestMachineSettleRamp(t *testing.T) {
	p := testParams()
	noRamp := p
	noRamp.slowStart = 0
	tests := []struct {
		name        string
		p           params
		old, health State
		wantChanged bool
		wantRamp    bool
	}{
		{"down to up ramps", p, Down, Up, true, true},
		{"draining to up ramps", p, Draining, Up, true, true},
		{"maintenance to up ramps", p, Maintenance, Up, true, true},
		{"up to up: nothing", p, Up, Up, false, false},
		{"up to down drops the ramp", p, Up, Down, true, false},
		{"slow start off: no ramp", noRamp, Down, Up, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := machine{health: tt.health, rampFrom: t0.Add(-time.Second)}
			if tt.old == tt.health {
				m.rampFrom = time.Time{}
			}
			got := m.settle(&tt.p, tt.old, t0)
			if got != tt.wantChanged {
				t.Errorf("settle() = %v, want %v", got, tt.wantChanged)
			}
			if ramp := m.rampFrom.Equal(t0); ramp != tt.wantRamp {
				t.Errorf("ramp from now = %v, want %v (rampFrom %v)", ramp, tt.wantRamp, m.rampFrom)
			}
		})
	}
}

func TestJittered(t *testing.T) {
	tests := []struct {
		name      string
		d, jitter time.Duration
		r         int64 // what Rand returns
		want      time.Duration
	}{
		{"no jitter", 2 * time.Second, 0, 0, 2 * time.Second},
		{"smallest draw keeps the delay", 2 * time.Second, 200 * time.Millisecond, 0, 2 * time.Second},
		{"largest draw", 2 * time.Second, 200 * time.Millisecond, int64(200*time.Millisecond) - 1, 1800*time.Millisecond + 1},
		{"jitter capped at half the delay", 500 * time.Millisecond, 2 * time.Second, int64(250*time.Millisecond) - 1, 250*time.Millisecond + 1},
		{"broken rand (negative) ignored", 2 * time.Second, time.Second, -5, 2 * time.Second},
		{"broken rand (too large) ignored", 2 * time.Second, time.Second, int64(time.Hour), 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotN int64
			got := jittered(tt.d, tt.jitter, func(n int64) int64 { gotN = n; return tt.r })
			if got != tt.want {
				t.Errorf("jittered(%v, %v) = %v, want %v", tt.d, tt.jitter, got, tt.want)
			}
			if tt.jitter > 0 && gotN != int64(min(tt.jitter, tt.d/2)) {
				t.Errorf("Rand called with %d, want %d", gotN, int64(min(tt.jitter, tt.d/2)))
			}
		})
	}
	// With the real default source every delay stays in (d-jitter, d].
	c := newChecker(t, testConfig(), Options{})
	for range 10000 {
		got := jittered(2*time.Second, 300*time.Millisecond, c.rnd)
		if got <= 1700*time.Millisecond || got > 2*time.Second {
			t.Fatalf("jittered = %v, outside (1.7s, 2s]", got)
		}
	}
}
