package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"net/http/httptest"
)

func TestMetricsFamilies(t *testing.T) {
	m := NewMetrics(func() Gauges {
		return Gauges{
			PoolHealthy: true,
			Nodes:       []NodeGauge{{Name: "n1", State: "up", InFlight: 2, Ejections: 1, Weight: 100}},
			VRRP:        []VRRPGauge{{Instance: "VI_1", State: "MASTER", Priority: 150, Transitions: 3}},
			CSS:         &CSSGauge{Hits: 5, Misses: 1},
			Cron:        &CronGauge{Runs: map[string]uint64{"done": 2}},
			Reloads:     1,
			ClientConns: &ClientConnGauge{Open: 7, RefusedMaxConns: 2, RefusedIP: 3},
			RateLimits:  []RateLimitGauge{{Route: "frontend", Limited: 4, Evictions: 1, Entries: 9, Capacity: 100352}},
		}
	})
	r := m.Node("n1")
	r.Observe(balancer.Frontend, 200, 3*time.Millisecond, 0)
	r.Observe(balancer.Frontend, 200, 3*time.Millisecond, 1)
	m.Node("").Observe(balancer.Health, 403, time.Millisecond, 0)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"mosparo_lb_requests_total", "mosparo_lb_request_duration_seconds", "mosparo_lb_retries_total",
		"mosparo_lb_pool_healthy", "mosparo_lb_node_state", "mosparo_lb_node_in_flight", "mosparo_lb_node_ejections_total",
		"mosparo_lb_node_effective_weight", "mosparo_lb_node_queued", "mosparo_lb_node_queue_timeouts_total", "mosparo_lb_vrrp_state", "mosparo_lb_vrrp_priority", "mosparo_lb_vrrp_transitions_total", "mosparo_lb_vrrp_dropped_adverts_total",
		"mosparo_lb_css_cache_requests_total", "mosparo_lb_css_cache_entries", "mosparo_lb_cron_runs_total",
		"mosparo_lb_config_reloads_total", "mosparo_lb_config_reload_failures_total",
		"mosparo_lb_client_connections", "mosparo_lb_client_connections_refused_total",
		"mosparo_lb_rate_limited_total", "mosparo_lb_rate_limit_entries", "mosparo_lb_rate_limit_capacity", "mosparo_lb_rate_limit_evictions_total",
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("family %s missing", name)
		}
	}
	reqs := fams["mosparo_lb_requests_total"]
	var total float64
	for _, mm := range reqs.Metric {
		total += mm.GetCounter().GetValue()
	}
	if total != 3 {
		t.Errorf("requests_total sums to %v, want 3", total)
	}
}
