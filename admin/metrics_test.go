package admin

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/vip"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"net/http/httptest"
)

func TestMetricsFamilies(t *testing.T) {
	m := NewMetrics(func() Gauges {
		return Gauges{
			PoolHealthy:   true,
			Nodes:         []NodeGauge{{Name: "n1", State: health.Up, InFlight: 2, Ejections: 1, Weight: 100, Version: "0a1b2c3d4e5f60718293a4b5"}, {Name: "n2", State: health.Down}},
			VersionsMixed: true,
			VRRP:          []VRRPGauge{{Instance: "VI_1", State: vip.Master, Priority: 150, Transitions: 3}},
			CSS:           &CSSGauge{Hits: 5, Misses: 1},
			Cron:          &CronGauge{Runs: map[string]uint64{"done": 2}},
			Reloads:       1,
			ClientConns:   &ClientConnGauge{Open: 7, RefusedMaxConns: 2, RefusedIP: 3, RefusedProxyPeer: 4, RefusedProxyHeader: 5, H2Open: 1, H2RapidResets: 1, RequestsH1: 3, RequestsH2: 4},
			RateLimits:    []RateLimitGauge{{Route: "frontend", Limited: 4, Evictions: 1, Entries: 9, Capacity: 100352}},
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
		"mosparo_lb_client_connections_http2", "mosparo_lb_http2_rapid_reset_closed_total", "mosparo_lb_client_requests_total",
		"mosparo_lb_node_version_info", "mosparo_lb_versions_mixed",
		"mosparo_lb_rate_limited_total", "mosparo_lb_rate_limit_entries", "mosparo_lb_rate_limit_capacity", "mosparo_lb_rate_limit_evictions_total",
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("family %s missing", name)
		}
	}
	// One version series per node with a fingerprint; none while unknown.
	if v := fams["mosparo_lb_node_version_info"].Metric; len(v) != 1 || v[0].GetLabel()[0].GetValue() != "n1" ||
		v[0].GetLabel()[1].GetValue() != "0a1b2c3d4e5f60718293a4b5" {
		t.Errorf("node_version_info = %v, want n1's fingerprint only", v)
	}
	if v := fams["mosparo_lb_versions_mixed"].Metric[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("versions_mixed = %v, want 1", v)
	}
	reqs := fams["mosparo_lb_requests_total"]
	var total float64
	for _, mm := range reqs.Metric {
		total += mm.GetCounter().GetValue()
	}
	if total != 3 {
		t.Errorf("requests_total sums to %v, want 3", total)
	}
	refused := map[string]float64{}
	for _, mm := range fams["mosparo_lb_client_connections_refused_total"].Metric {
		refused[mm.GetLabel()[0].GetValue()] = mm.GetCounter().GetValue()
	}
	if want := map[string]float64{"max_conns": 2, "max_conns_per_ip": 3, "proxy_protocol_from": 4, "proxy_protocol_header": 5}; !maps.Equal(refused, want) {
		t.Errorf("client_connections_refused_total = %v, want %v", refused, want)
	}
}
