package admin

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
)

func newTestClock() *clocktest.Manual {
	return clocktest.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

func seriesByName(s []SeriesView) map[string]SeriesView {
	out := map[string]SeriesView{}
	for _, x := range s {
		out[x.Name] = x
	}
	return out
}

func TestHistorySamples(t *testing.T) {
	clk := newTestClock()
	m := NewMetrics(nil)
	n1, lb := m.Node("n1"), m.Node("")
	m.Node("n2") // balanced, idle
	h := NewHistory(m, HistoryOptions{Interval: 10 * time.Second, Points: 3, Clock: clk})
	for range 100 {
		n1.Observe(balancer.Frontend, 200, 2*time.Millisecond, 0)
	}
	for range 10 {
		n1.Observe(balancer.API, 503, 20*time.Millisecond, 0)
	}
	for range 5 {
		lb.Observe(balancer.Health, 403, time.Millisecond, 0)
	}
	clk.Advance(10 * time.Second)
	h.Sample()

	v := h.View()
	if len(v.Times) != 1 || v.Partial || !v.Times[0].Equal(clk.Now()) || v.Interval != 10*time.Second {
		t.Fatalf("view times %v partial %v interval %v", v.Times, v.Partial, v.Interval)
	}
	nodes := seriesByName(v.Nodes)
	if len(v.Nodes) != 2 || nodes["n1"].RPS[0] != 11 || nodes["n1"].ErrorsPerS[0] != 1 || nodes["n2"].RPS[0] != 0 {
		t.Errorf("nodes = %+v, want n1 at 11 rps and 1 error/s, n2 idle (the LB itself is no node)", v.Nodes)
	}
	if p := float64(nodes["n1"].P99[0]); p < 10 || p > 25 {
		t.Errorf("n1 p99 = %v ms, want in the API's (10ms, 25ms] bucket", p)
	}
	if p := float64(nodes["n2"].P99[0]); !math.IsNaN(p) {
		t.Errorf("idle n2 p99 = %v, want none (null)", p)
	}
	classes := seriesByName(v.Classes)
	if len(v.Classes) != 3 || classes["frontend"].RPS[0] != 10 || classes["api"].ErrorsPerS[0] != 1 || classes["health"].RPS[0] != 0.5 {
		t.Errorf("classes = %+v, want frontend, api and health (the LB's own answers)", v.Classes)
	}

	// A running interval shows once it has lasted a second.
	clk.Advance(500 * time.Millisecond)
	if v := h.View(); v.Partial {
		t.Error("a running interval of 500ms is shown")
	}
	clk.Advance(1500 * time.Millisecond)
	for range 20 {
		n1.Observe(balancer.Frontend, 200, time.Millisecond, 0)
	}
	v = h.View()
	if !v.Partial || len(v.Times) != 2 || seriesByName(v.Nodes)["n1"].RPS[1] != 10 {
		t.Errorf("running interval: partial %v times %d n1 %+v, want 10 rps over 2s", v.Partial, len(v.Times), seriesByName(v.Nodes)["n1"])
	}

	// The window is bounded: after three more samples the first is gone,
	// and no class had requests in the last two.
	for range 3 {
		clk.Advance(10 * time.Second)
		h.Sample()
	}
	v = h.View()
	if len(v.Times) != 3 || len(seriesByName(v.Nodes)["n1"].RPS) != 3 {
		t.Errorf("after wrapping: %d times, n1 %+v; want 3", len(v.Times), seriesByName(v.Nodes)["n1"])
	}
	if got := seriesByName(v.Classes)["frontend"].RPS; len(got) != 3 || got[0] != 1.667 || got[2] != 0 {
		t.Errorf("frontend after wrapping = %v, want the 20 requests of the 12s interval, then nothing", got)
	}

	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"interval_ns":10000000000`, `"p99_ms":[`, `null`, `"errors_per_s":[`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
}

// TestHistoryBoundsNodes: nodes that come and go leave at most
// maxNodeSeries series behind.
func TestHistoryBoundsNodes(t *testing.T) {
	clk := newTestClock()
	m := NewMetrics(nil)
	h := NewHistory(m, HistoryOptions{Interval: time.Second, Points: 2, Clock: clk})
	for i := range 3 * maxNodeSeries {
		m.Node("n"+string(rune('A'+i%26))+string(rune('a'+i/26))).Observe(balancer.Admin, 200, time.Millisecond, 0)
		clk.Advance(time.Second)
		h.Sample()
	}
	for range 2 {
		clk.Advance(time.Second)
		h.Sample()
	}
	h.mu.Lock()
	n := len(h.nodes)
	h.mu.Unlock()
	if n > maxNodeSeries {
		t.Errorf("%d node series kept, want at most %d", n, maxNodeSeries)
	}
	clk.Advance(2 * time.Second)
	if v := h.View(); len(v.Nodes) > maxNodeSeries {
		t.Errorf("View shows %d node series, want at most %d", len(v.Nodes), maxNodeSeries)
	}
}

func TestMillisJSON(t *testing.T) {
	b, err := json.Marshal([]Millis{1.5, Millis(math.NaN()), Millis(math.Inf(1))})
	if err != nil || string(b) != "[1.500,null,null]" {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}
