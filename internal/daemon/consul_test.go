package daemon

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
	"github.com/valyala/fasthttp"
)

// TestConsulNodesJoinAndLeaveTheDataPlane: instances registered in Consul
// receive traffic once passing, stop receiving it when they fail, and the
// last known set survives the agent going away.
func TestConsulNodesJoinAndLeaveTheDataPlane(t *testing.T) {
	agent, err := consultest.New(consultest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	nodes := startNodes(t, 3)
	c := startCluster(t, nodes[:1], fmt.Sprintf("discovery: {consul: {address: %q, service: mosparo, wait: 2s, backoff_min: 50ms, backoff_max: 200ms}}\n", agent.Addr()))
	for _, n := range nodes[1:] {
		host, port, _ := net.SplitHostPort(n.Addr())
		p, _ := strconv.Atoi(port)
		if err := agent.Register(consultest.Registration{ID: n.Name(), Name: "mosparo", Address: host, Port: p,
			Check: &consultest.CheckDefinition{CheckID: n.Name() + "-ttl", TTL: "1h", Status: "passing"}}); err != nil {
			t.Fatal(err)
		}
	}
	waitNodes := func(want map[string]bool) {
		t.Helper()
		cl := &fasthttp.Client{}
		var seen map[string]bool
		if !eventually(8*time.Second, func() bool {
			seen = map[string]bool{}
			for i := 0; i < 12; i++ {
				if code, node, err := do(t, cl, "GET", c.lb+"/robots.txt", ""); err == nil && code == 200 {
					seen[node] = true
				}
			}
			return fmt.Sprint(seen) == fmt.Sprint(want)
		}) {
			t.Fatalf("traffic reached %v, want %v; status %+v", seen, want, c.d.nodeSnapshots(nil))
		}
	}
	waitNodes(map[string]bool{"n1": true, "n2": true, "n3": true})
	if err := agent.UpdateTTL("n3-ttl", "critical", "down for maintenance"); err != nil {
		t.Fatal(err)
	}
	waitNodes(map[string]bool{"n1": true, "n2": true})
	agent.Stop() // Consul outage: the last set keeps serving
	if !eventually(10*time.Second, func() bool { return !c.d.Snapshot().Discovery.Healthy }) {
		t.Fatalf("discovery did not notice the outage: %+v", c.d.Snapshot().Discovery)
	}
	waitNodes(map[string]bool{"n1": true, "n2": true})
}
