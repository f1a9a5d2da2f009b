package health

import (
	"testing"
	"time"
)

func TestRampWeight(t *testing.T) {
	const s = int64(10 * time.Second)
	tests := []struct {
		name              string
		w, from, now, len int64
		want              int64
	}{
		{"no ramp", 100, 0, 5, s, 100},
		{"slow start off", 100, 1, 5, 0, 100},
		{"at the start: 1, never 0", 100, 1000, 1000, s, 1},
		{"clock behind the start", 100, 1000, 10, s, 1},
		{"10%", 100, 1000, 1000 + s/10, s, 10},
		{"half", 100, 1000, 1000 + s/2, s, 50},
		{"small weight stays >= 1", 3, 1000, 1000 + s/10, s, 1},
		{"done", 100, 1000, 1000 + s, s, 100},
		{"long done", 100, 1000, 1000 + 50*s, s, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rampWeight(tt.w, tt.from, tt.now, tt.len); got != tt.want {
				t.Errorf("rampWeight(%d, %d, %d, %d) = %d, want %d", tt.w, tt.from, tt.now, tt.len, got, tt.want)
			}
		})
	}
	if got := rampProgress(1000, 1000+s/4, s); got != 0.25 {
		t.Errorf("rampProgress at a quarter = %v", got)
	}
}

func TestSlowStartAfterRecovery(t *testing.T) {
	clk := newClock() // slow_start 10s, rise 2, fall 3
	c := newTestChecker(t, clk, testConfig(), "a", "b")
	a := c.Node("a:80")
	verdict(t, c, clk, "b:80", Up)
	verdict(t, c, clk, "a:80", Down)
	verdict(t, c, clk, "a:80", Up)
	if w := a.Weight(clk.Now().UnixNano()); a.State() != Down || w != 100 {
		t.Fatalf("down node: %v weight %d; want down 100 (configured)", a.State(), w)
	}
	clk.Advance(time.Second)
	verdict(t, c, clk, "a:80", Up)
	start := clk.Now()
	for _, tt := range []struct {
		at   time.Duration
		want int
	}{{0, 1}, {time.Second, 10}, {2500 * time.Millisecond, 25}, {9 * time.Second, 90}, {10 * time.Second, 100}, {time.Hour, 100}} {
		if got := a.Weight(start.Add(tt.at).UnixNano()); got != tt.want {
			t.Errorf("weight %v after recovery = %d, want %d", tt.at, got, tt.want)
		}
	}
	clk.Advance(5 * time.Second)
	if p := c.Snapshot()[0]; p.SlowStart != 0.5 || p.EffectiveWeight != 50 {
		t.Errorf("snapshot half-way: progress %v weight %d", p.SlowStart, p.EffectiveWeight)
	}
	// Going down mid-ramp and up again restarts the ramp.
	for range 3 {
		verdict(t, c, clk, "a:80", Down)
	}
	verdict(t, c, clk, "a:80", Up)
	verdict(t, c, clk, "a:80", Up)
	if w := a.Weight(clk.Now().UnixNano()); w != 1 {
		t.Errorf("weight after a second recovery = %d, want 1", w)
	}
}
