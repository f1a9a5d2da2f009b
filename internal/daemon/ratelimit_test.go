package daemon

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fasthttp"
)

// Rate limits show in /metrics (limited requests, table size, evictions, by
// route class) and on the status page's /status (issue 15).
func TestRateLimitsInMetricsAndStatus(t *testing.T) {
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, "rate_limits: {frontend: {rate: 0.001, burst: 2}}\n")
	cl := &fasthttp.Client{}
	codes := map[int]int{}
	for range 5 {
		code, _, err := do(t, cl, "POST", c.lb+"/api/v1/frontend/request-submit-token", frontendForm)
		if err != nil {
			t.Fatal(err)
		}
		codes[code]++
	}
	if codes[200] != 2 || codes[429] != 3 {
		t.Fatalf("answers %v, want 2×200 and 3×429", codes)
	}
	fams := scrape(t, c)
	for name, want := range map[string]float64{
		"mosparo_lb_rate_limited_total":         3,
		"mosparo_lb_rate_limit_entries":         1,
		"mosparo_lb_rate_limit_evictions_total": 0,
	} {
		f, ok := fams[name]
		if !ok {
			t.Errorf("/metrics has no %s", name)
			continue
		}
		if got := sum(f); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
		if l := f.GetMetric()[0].GetLabel(); len(l) != 1 || l[0].GetValue() != "frontend" {
			t.Errorf("%s labels = %v, want route=frontend", name, l)
		}
	}
	b, err := json.Marshal(c.d.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		RateLimits []struct {
			Route   string `json:"route"`
			Limited uint64 `json:"limited"`
		} `json:"rate_limits"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.RateLimits) != 1 || st.RateLimits[0].Route != "frontend" || st.RateLimits[0].Limited != 3 {
		t.Errorf("/status rate_limits = %+v, want frontend with 3 limited", st.RateLimits)
	}
}
