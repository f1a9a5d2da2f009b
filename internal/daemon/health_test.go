package daemon

import (
	"fmt"
	"math"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/valyala/fasthttp"
)

// waitState waits (bounded) until the LB's status shows node in state.
func waitState(t *testing.T, c *cluster, node, state string) {
	t.Helper()
	if !eventually(5*time.Second, func() bool {
		for _, nv := range c.d.nodeSnapshots(nil) {
			if nv.Name == node && nv.State.String() == state {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("node %s did not reach state %s", node, state)
	}
}

// spread sends n requests and counts answering nodes.
func spread(t *testing.T, c *cluster, method, path, body string, n int) map[string]int {
	t.Helper()
	cl := &fasthttp.Client{}
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		code, node, err := do(t, cl, method, c.lb+path, body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		seen[fmt.Sprintf("%s:%d", node, code)]++
	}
	return seen
}

var frontendForm = "publicKey=" + mosparoemu.DemoPublicKey + "&pageTitle=t&pageUrl=https%3A%2F%2Fexample.com%2F"

func TestDrainingNodeGetsOnlyAdminFallbackAndFinalize(t *testing.T) {
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, "balancing: {policy: round_robin}\n")
	nodes[1].SetHealth(mosparoemu.UpdateNotFinished)
	waitState(t, c, "n2", "draining")
	if got := spread(t, c, "POST", "/api/v1/frontend/request-submit-token", frontendForm, 10); got["n1:200"] != 10 {
		t.Errorf("frontend with n2 draining: %v, want all 10 on n1", got)
	}
	// Only a node running the new code can finalize the update (FACTS 1.4).
	if got := spread(t, c, "GET", "/administration/update/finalize", "", 4); got["n2:200"]+got["n2:302"] != 4 {
		t.Errorf("finalize: %v, want all on the draining n2", got)
	}
	// With no up node left, draining nodes still serve frontend traffic.
	nodes[0].SetHealth(mosparoemu.UpdateNotFinished)
	waitState(t, c, "n1", "draining")
	if got := spread(t, c, "POST", "/api/v1/frontend/request-submit-token", frontendForm, 6); got["n1:200"]+got["n2:200"] != 6 {
		t.Errorf("frontend with every node draining: %v, want all answered", got)
	}
}

func TestSetupNodesServeOnlySetupWithAffinity(t *testing.T) {
	nodes := startNodes(t, 3)
	c := startCluster(t, nodes, "balancing: {policy: round_robin}\n")
	nodes[2].SetHealth(mosparoemu.NotConfigured)
	waitState(t, c, "n3", "setup")
	if got := spread(t, c, "GET", "/login", "", 9); got["n3:200"]+got["n3:302"] != 0 {
		t.Errorf("admin traffic reached the not-installed n3 while others are up: %v", got)
	}
	// A fresh cluster: nothing installed; the wizard must stay on one node
	// because sessions are node-local files before installation (FACTS 2.8).
	for _, n := range nodes {
		n.SetHealth(mosparoemu.NotConfigured)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		waitState(t, c, n, "setup")
	}
	if got := spread(t, c, "POST", "/api/v1/frontend/request-submit-token", frontendForm, 3); got[":503"] != 3 {
		t.Errorf("frontend on a cluster that is not installed: %v, want 503s", got)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	seen := map[string]bool{}
	for _, p := range []string{"/setup/", "/setup/prerequisites", "/setup/database", "/setup/other", "/setup/install"} {
		resp, err := hc.Get(c.lb + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen[resp.Header.Get("X-Mosparo-Node")] = true
	}
	if len(seen) != 1 {
		t.Errorf("one client's setup wizard was served by %d nodes %v, want 1", len(seen), seen)
	}
}

func TestKilledNodeUnderLoadNoFailedIdempotentRequests(t *testing.T) {
	nodes := startNodes(t, 3)
	c := startCluster(t, nodes, "balancing: {policy: least_conn, retries: 2}\n")
	l := startLoad(t, c, 6, 20000, getLogin)
	l.waitRequests(t, 50) // the load runs
	killed := time.Now()
	nodes[1].Close()
	// interval 200ms * fall 2 + timeout 150ms (a refused connection fails at once, and the second check comes after fast_interval).
	waitState(t, c, "n2", "down")
	out := time.Since(killed)
	l.waitRequests(t, 100) // and goes on without n2
	l.end()
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d GETs failed while n2 died; first: %v", l.failed.Load(), l.total.Load(), l.first.Load())
	}
	if bound := 2*200*time.Millisecond + 150*time.Millisecond; out > bound {
		t.Errorf("n2 marked down after %s, want within interval*fall+timeout (+slack) = %s", out, bound)
	}
}

func TestFlappingNodeCausesNoErrors(t *testing.T) {
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, "balancing: {policy: round_robin, retries: 2}\n")
	l := startLoad(t, c, 4, math.MaxInt, getLogin)
	for i := 0; i < 8; i++ {
		l.waitRequests(t, 20) // every state lasts a few requests
		if i%2 == 0 {
			nodes[1].SetHealth(mosparoemu.DBFailed)
			nodes[1].Close()
		} else {
			if err := nodes[1].Restart(); err != nil {
				t.Fatal(err)
			}
			nodes[1].SetHealth(mosparoemu.Connected)
		}
	}
	l.end()
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d GETs failed with a flapping node; first: %v", l.failed.Load(), l.total.Load(), l.first.Load())
	}
}

func TestOperatorDrainSurvivesReload(t *testing.T) {
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, "")
	if err := c.d.setNodeState("n2", "maintenance"); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "n2", "maintenance")
	c.write(testBase + nodesYAML(nodes) + "balancing: {policy: round_robin}\n")
	if err := c.d.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "n2", "maintenance")
	if got := spread(t, c, "GET", "/login", "", 6); got["n1:200"] != 6 {
		t.Errorf("with n2 in maintenance after a reload: %v, want all on n1", got)
	}
	if !strings.Contains(statusJSON(t, c.d), "maintenance") {
		t.Error("status does not show the maintenance state")
	}
}

func TestOperatorDrainFinishesInFlightAndTakesNoNewRequests(t *testing.T) {
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, "balancing: {policy: round_robin}\n")
	nodes[1].SetDelay(400 * time.Millisecond)
	res := make(chan string, 4)
	for i := 0; i < 4; i++ { // round robin: two of these are in flight on n2
		go func() {
			code, node, _ := do(t, &fasthttp.Client{}, "GET", c.lb+"/robots.txt", "")
			res <- fmt.Sprintf("%s:%d", node, code)
		}()
	}
	if !eventually(5*time.Second, func() bool { return nodes[1].Requests("GET", "/robots.txt") == 2 }) {
		t.Fatalf("%d requests in flight on n2, want 2", nodes[1].Requests("GET", "/robots.txt"))
	}
	if err := c.d.setNodeState("n2", "drain"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if r := <-res; !strings.HasSuffix(r, ":200") {
			t.Errorf("request in flight during drain: %s, want 200", r)
		}
	}
	if got := spread(t, c, "POST", "/api/v1/frontend/request-submit-token", frontendForm, 8); got["n1:200"] != 8 {
		t.Errorf("after drain: %v, want every new request on n1", got)
	}
	if err := c.d.setNodeState("n2", "ready"); err != nil {
		t.Fatal(err)
	}
	nodes[1].SetDelay(0)
	waitState(t, c, "n2", "up")
	if got := spread(t, c, "GET", "/robots.txt", "", 8); got["n2:200"] == 0 {
		t.Errorf("after ready: %v, want n2 back in rotation", got)
	}
}
