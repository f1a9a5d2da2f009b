//go:build !race

package health

import (
	"testing"
	"time"
)

// TestHotPathAllocs: what the balancer calls for every request allocates
// nothing (STYLE 10).
func TestHotPathAllocs(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	many := 1 << 30 // never trip: the trip path may lock and log
	cfg.Passive.ConsecutiveFailures = &many
	c := newTestChecker(t, clk, cfg, "a", "b")
	n := c.Node("a:80")
	verdict(t, c, clk, "a:80", Down)
	verdict(t, c, clk, "a:80", Up)
	verdict(t, c, clk, "a:80", Up) // up with a slow-start ramp
	now := clk.Now().Add(time.Second).UnixNano()
	if w := n.Weight(now); w != 10 {
		t.Fatalf("precondition: weight %d, want 10 (ramping)", w)
	}
	tests := []struct {
		name string
		f    func()
	}{
		{"State", func() { _ = n.State() }},
		{"Weight", func() { _ = n.Weight(now) }},
		{"Operator", func() { _ = n.Operator() }},
		{"Observe success", func() { n.Observe(Success, now) }},
		{"Observe failure", func() { n.Observe(ServerError, now) }},
		{"Observe failure then success", func() { n.Observe(Timeout, now); n.Observe(Success, now) }},
		{"PoolHealthy", func() { _ = c.PoolHealthy() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(1000, tt.f); got != 0 {
				t.Errorf("%s allocates %v times per call, want 0", tt.name, got)
			}
		})
	}
}
