package health

import (
	"testing"
	"time"
)

func TestEjectionAllowed(t *testing.T) {
	tests := []struct {
		name                          string
		total, ejected, othersUp, pct int
		want                          bool
	}{
		{"first of three at 50%", 3, 0, 2, 50, true},
		{"second of three at 50%", 3, 1, 1, 50, false},
		{"second of four at 50%", 4, 1, 2, 50, true},
		{"third of four at 50%", 4, 2, 1, 50, false},
		{"one always may be, even at 0%", 3, 0, 2, 0, true},
		{"one always may be, 10% of 3", 3, 0, 2, 10, true},
		{"but only one at 10% of 3", 3, 1, 1, 10, false},
		{"never the last up node", 3, 0, 0, 100, false},
		{"single-node pool never", 1, 0, 0, 100, false},
		{"100% of five, others still up", 5, 3, 1, 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ejectionAllowed(tt.total, tt.ejected, tt.othersUp, tt.pct); got != tt.want {
				t.Errorf("ejectionAllowed(%d, %d, %d, %d) = %v, want %v", tt.total, tt.ejected, tt.othersUp, tt.pct, got, tt.want)
			}
		})
	}
}

func TestPassiveEjection(t *testing.T) {
	clk := newClock() // consecutive_failures 3, base 30s, max 100s, 50%
	c := newTestChecker(t, clk, testConfig(), "a", "b", "c")
	a, b := c.Node("a:80"), c.Node("b:80")
	for _, x := range []string{"a:80", "b:80", "c:80"} {
		verdict(t, c, clk, x, Up)
	}
	now := func() int64 { return clk.Now().UnixNano() }

	// Failures must be consecutive: a success resets the count.
	a.Observe(ServerError, now())
	a.Observe(ConnectFailure, now())
	a.Observe(Success, now())
	a.Observe(Timeout, now())
	a.Observe(Outcome(0), now()) // unknown outcomes are ignored
	a.Observe(BadAnswer, now())
	if a.State() != Up {
		t.Fatalf("ejected before 3 consecutive failures: %v", a.State())
	}
	drain(c.Changed())
	a.Observe(ConnectFailure, now())
	if a.State() != Down || !drain(c.Changed()) || !c.PoolHealthy() {
		t.Fatalf("after 3 consecutive failures: %v; want down, signalled, pool healthy", a.State())
	}
	s := c.Snapshot()[0]
	if s.Ejections != 1 || !s.EjectedUntil.Equal(clk.Now().Add(30*time.Second)) || s.Health != Up || s.PassiveFailures != 0 {
		t.Errorf("snapshot of the ejected node = %+v", s)
	}
	// 50% of three: one node at a time. b trips but stays in, and its
	// checks go fast.
	for range 3 {
		b.Observe(ServerError, now())
	}
	if b.State() != Up {
		t.Errorf("second ejection beyond max_ejected_percent: b %v", b.State())
	}
	c.mu.Lock()
	if d := b.m.nextProbe.Sub(clk.Now()); d > 500*time.Millisecond || !b.m.tripped {
		t.Errorf("refused trip: next check in %v tripped %v, want <= fast interval", d, b.m.tripped)
	}
	c.mu.Unlock()

	// The ejection ends by time, with a slow-start ramp.
	clk.Advance(30 * time.Second)
	if jobs, _ := c.due(clk.Now().Add(-time.Nanosecond), nil); a.State() != Down || len(jobs) == 0 {
		t.Errorf("before the end: %v, %d jobs", a.State(), len(jobs))
	}
	c.due(clk.Now(), nil)
	if a.State() != Up || a.Weight(now()) != 1 {
		t.Errorf("at the end of the ejection: %v weight %d; want up 1", a.State(), a.Weight(now()))
	}

	// The second ejection lasts twice as long, unless a good check ends it.
	clk.Advance(time.Second)
	for range 3 {
		a.Observe(ServerError, now())
	}
	c.mu.Lock()
	until := a.m.ejectedUntil.Sub(clk.Now())
	c.mu.Unlock()
	if until != 60*time.Second {
		t.Errorf("second ejection lasts %v, want 60s", until)
	}
	clk.Advance(time.Second)
	verdict(t, c, clk, "a:80", Up)
	if a.State() != Up {
		t.Errorf("good check during ejection: %v, want up", a.State())
	}
}

func TestPassiveNeverLastUp(t *testing.T) {
	clk := newClock()
	c := newTestChecker(t, clk, testConfig(), "a", "b")
	a := c.Node("a:80")
	verdict(t, c, clk, "a:80", Up)
	verdict(t, c, clk, "b:80", Down) // first answer: b is down
	for range 10 {
		a.Observe(ServerError, clk.Now().UnixNano())
	}
	if a.State() != Up {
		t.Errorf("last up node ejected: %v", a.State())
	}
	// Maintenance and down nodes are not ejected (nothing to take away).
	if err := c.SetOperatorState("a", Maintenance); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a.Observe(ServerError, clk.Now().UnixNano())
	}
	c.mu.Lock()
	ej := a.m.ejections
	c.mu.Unlock()
	if ej != 0 {
		t.Errorf("ejections = %d, want 0", ej)
	}
}

func TestPassiveOff(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	off := 0
	cfg.Passive.ConsecutiveFailures = &off
	c := newTestChecker(t, clk, cfg, "a", "b")
	a := c.Node("a:80")
	for range 100 {
		a.Observe(ConnectFailure, clk.Now().UnixNano())
	}
	if a.State() != Up || a.fails.Load() != 0 {
		t.Errorf("passive off: state %v fails %d", a.State(), a.fails.Load())
	}
}
