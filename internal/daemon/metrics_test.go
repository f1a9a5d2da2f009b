package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"
)

func scrape(t *testing.T, c *cluster) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + c.d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func sum(f *dto.MetricFamily) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		switch {
		case m.Counter != nil:
			s += m.Counter.GetValue()
		case m.Histogram != nil:
			s += float64(m.Histogram.GetSampleCount())
		case m.Gauge != nil:
			s += m.Gauge.GetValue()
		}
	}
	return s
}

// TestMetricsMoveUnderLoad scrapes /metrics of a running LB before and
// after load: every data-plane family is present and the counters move.
func TestMetricsMoveUnderLoad(t *testing.T) {
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, "")
	before := scrape(t, c)
	cl := &fasthttp.Client{}
	for i := 0; i < 50; i++ {
		do(t, cl, "GET", c.lb+"/robots.txt", "")
		do(t, cl, "POST", c.lb+"/api/v1/frontend/request-submit-token", frontendForm)
	}
	nodes[1].Close()
	for i := 0; i < 20; i++ { // some of these retry on n1 before n2 is marked down
		do(t, cl, "GET", c.lb+"/robots.txt", "")
	}
	waitState(t, c, "n2", "down")
	after := scrape(t, c)
	for _, name := range []string{"mosparo_lb_requests_total", "mosparo_lb_request_duration_seconds"} {
		if sum(after[name])-sum(before[name]) < 120 {
			t.Errorf("%s moved by %v under 120 requests", name, sum(after[name])-sum(before[name]))
		}
	}
	for _, name := range []string{"mosparo_lb_pool_healthy", "mosparo_lb_node_state", "mosparo_lb_node_in_flight",
		"mosparo_lb_node_ejections_total", "mosparo_lb_node_effective_weight", "mosparo_lb_config_reloads_total",
		"mosparo_lb_retries_total"} {
		if _, ok := after[name]; !ok {
			t.Errorf("family %s missing", name)
		}
	}
	var downSeen bool
	for _, m := range after["mosparo_lb_node_state"].GetMetric() {
		var node, state string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "node":
				node = l.GetValue()
			case "state":
				state = l.GetValue()
			}
		}
		if node == "n2" && state == "down" && m.GetGauge().GetValue() == 1 {
			downSeen = true
		}
	}
	if !downSeen {
		t.Error("mosparo_lb_node_state does not show n2 down")
	}
}
