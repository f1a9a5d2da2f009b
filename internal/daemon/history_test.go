package daemon

import (
	"context"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/mosparo-lb/mosparo-lb/admin"
)

// TestStatusHistoryAndEvents: /status carries the traffic the data plane
// recorded and the events the health hook and reloads fed (the status
// page's charts and event list).
func TestStatusHistoryAndEvents(t *testing.T) {
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, "")
	client := &fasthttp.Client{}
	for range 20 {
		if code, _, err := do(t, client, "GET", c.lb+"/login", ""); err != nil || code != 200 {
			t.Fatalf("GET /login = %d, %v", code, err)
		}
	}
	c.d.history.Sample()
	if err := c.d.setNodeState(nodes[0].Name(), "drain"); err != nil {
		t.Fatal(err)
	}
	c.write(testBase + nodesYAML(nodes) + "balancing: {policy: fastest}\n")
	if err := c.d.Reload(context.Background()); err == nil {
		t.Fatal("Reload of a bad file succeeded")
	}

	st := c.d.Snapshot()
	if st.History == nil || len(st.History.Times) == 0 || len(st.History.Classes) != 1 || st.History.Classes[0].Name != "admin" {
		t.Fatalf("history = %+v, want the admin class's requests", st.History)
	}
	h := *st.History
	var total float64
	for _, n := range h.Nodes {
		total += n.RPS[0]
	}
	if total == 0 || total != h.Classes[0].RPS[0] {
		t.Errorf("nodes' rps sum to %v, the admin class has %v; want equal and > 0", total, h.Classes[0].RPS[0])
	}
	kinds := map[admin.EventKind]string{}
	for _, ev := range st.Events {
		kinds[ev.Kind] = ev.Subject + " " + ev.To
	}
	if got := kinds[admin.EventOperator]; got != nodes[0].Name()+" draining" {
		t.Errorf("operator event = %q, want %s draining", got, nodes[0].Name())
	}
	if _, ok := kinds[admin.EventReloadFailed]; !ok {
		t.Errorf("events %v lack the rejected reload", kinds)
	}
}
