package daemon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/health"
)

// waitVersions waits (bounded) until ok accepts the nodes' status.
func waitVersions(t *testing.T, c *cluster, what string, ok func(map[string]NodeSnapshot) bool) map[string]NodeSnapshot {
	t.Helper()
	var byName map[string]NodeSnapshot
	if !eventually(10*time.Second, func() bool {
		byName = map[string]NodeSnapshot{}
		for _, nv := range c.d.Snapshot().Nodes {
			byName[nv.Name] = nv
		}
		return ok(byName)
	}) {
		t.Fatalf("%s: not within 10s: %+v", what, byName)
	}
	return byName
}

func allKnown(nv map[string]NodeSnapshot) bool {
	for _, v := range nv {
		if v.Version.IsZero() {
			return false
		}
	}
	return true
}

// getBody sends GET path to the LB without following redirects.
func getBody(t *testing.T, c *cluster, path string) (int, string, string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(c.lb + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Mosparo-Node"), string(b)
}

// TestFinalizeOnlyOnTheUpdatedCode plays the UI update of issue 12 item 3:
// the admin node n1 unpacks a new release and drains; finalize must run on
// it, and after it ran, the nodes still on the old code (now draining, the
// tier finalize used to prefer) must never get it, or they would write the
// old version back (FACTS 11.3).
func TestFinalizeOnlyOnTheUpdatedCode(t *testing.T) {
	nodes := startNodes(t, 3)
	c := startCluster(t, nodes, "balancing: {policy: round_robin}\n")
	before := waitVersions(t, c, "first fingerprints", allKnown)
	old := before["n1"].Version
	if before["n2"].Version != old || before["n3"].Version != old {
		t.Fatalf("one release, fingerprints %v", before)
	}

	nodes[0].SetVersion("1.6.0") // the update unpacked on the admin node
	waitVersions(t, c, "n1's new code", func(nv map[string]NodeSnapshot) bool {
		return nv["n1"].State == health.Draining && nv["n1"].Version != old && !nv["n1"].Version.IsZero()
	})
	if v := c.d.checker.Versions(); !v.Mixed {
		t.Errorf("versions = %+v, want mixed", v)
	}
	code, node, _ := getBody(t, c, "/administration/update/finalize")
	if code != 302 || node != "n1" {
		t.Fatalf("finalize = %d from %q, want 302 from n1", code, node)
	}
	waitState(t, c, "n2", "draining") // old code, new installed version
	waitState(t, c, "n1", "up")
	for i := range 6 {
		if code, node, _ := getBody(t, c, "/administration/update/finalize"); node != "n1" {
			t.Errorf("finalize %d after the update = %d from %q, want n1 (the old-code nodes would write 1.5.4 back)", i, code, node)
		}
	}
	if got := nodes[0].Finalized() + nodes[1].Finalized() + nodes[2].Finalized(); got != 1 || nodes[0].Finalized() != 1 {
		t.Errorf("finalize ran %d times (n1 %d), want once on n1", got, nodes[0].Finalized())
	}

	// The operator syncs the code: versions agree, the warning ends.
	nodes[1].SetVersion("1.6.0")
	nodes[2].SetVersion("1.6.0")
	waitVersions(t, c, "synced code", func(nv map[string]NodeSnapshot) bool {
		return nv["n2"].Version == nv["n1"].Version && nv["n3"].Version == nv["n1"].Version && nv["n3"].State == health.Up
	})
	if v := c.d.checker.Versions(); v.Mixed {
		t.Errorf("versions after the sync = %+v, want one", v)
	}
}

// TestUpdateRoutesAmbiguous: when the LB cannot tell which node runs the
// code the update is for, update routes get 503 saying what to fix, while
// the rest of the admin UI is served.
func TestUpdateRoutesAmbiguous(t *testing.T) {
	nodes := startNodes(t, 3)
	c := startCluster(t, nodes, "balancing: {policy: round_robin}\n")
	waitVersions(t, c, "first fingerprints", allKnown)
	nodes[1].SetVersion("1.6.0")
	waitVersions(t, c, "n2's new code", func(nv map[string]NodeSnapshot) bool {
		return nv["n2"].Version != nv["n1"].Version && !nv["n2"].Version.IsZero()
	})
	// The admin node n1 decides while it answers: n2's finalize is refused.
	if code, node, _ := getBody(t, c, "/administration/update/finalize"); code != 302 || node == "n2" {
		t.Errorf("finalize = %d from %q, want the admin node's version (not n2)", code, node)
	}
	// Without the admin node, the versions are ambiguous.
	if err := c.d.setNodeState("n1", "maintenance"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/administration/update/finalize", "/administration/update/", "/index.php/administration/update/execute"} {
		code, node, body := getBody(t, c, path)
		if code != 503 || node != "" || !strings.Contains(body, "sync the source code onto every node") {
			t.Errorf("GET %s with mixed versions = %d from %q: %s; want 503 naming the fix", path, code, node, body)
		}
	}
	if code, node, _ := getBody(t, c, "/login"); code != 200 || node == "" {
		t.Errorf("GET /login = %d from %q, want a node's answer", code, node)
	}
	if nodes[1].Finalized()+nodes[2].Finalized() != 0 {
		t.Errorf("finalize ran on n2 %d, n3 %d times", nodes[1].Finalized(), nodes[2].Finalized())
	}

	// The operator pins the node with the new code.
	c.write(testBase + nodesYAML(nodes) + "balancing: {policy: round_robin, update_node: n2}\n")
	if err := c.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, node, _ := getBody(t, c, "/administration/update/finalize"); code != 302 || node != "n2" {
		t.Errorf("finalize with update_node n2 = %d from %q, want n2", code, node)
	}
	if nodes[1].Finalized() != 1 {
		t.Errorf("n2 finalized %d times, want 1", nodes[1].Finalized())
	}
	// The pinned node goes down: 503 naming balancing.update_node.
	nodes[1].Close()
	waitState(t, c, "n2", "down")
	if code, _, body := getBody(t, c, "/administration/update/finalize"); code != 503 || !strings.Contains(body, "balancing.update_node") {
		t.Errorf("finalize with the pinned node down = %d: %s", code, body)
	}
}

// TestUpdateRoutesWithoutFingerprints: health.version.every 0 turns the
// fingerprints off, and the update routes follow the tiers alone.
func TestUpdateRoutesWithoutFingerprints(t *testing.T) {
	nodes := startNodes(t, 2)
	base := strings.Replace(testBase, fastHealth, strings.TrimSuffix(fastHealth, "}")+", version: {every: 0}}", 1)
	c := startClusterBase(t, base, nodes, "balancing: {policy: round_robin}\n")
	nodes[1].SetVersion("1.6.0")
	waitState(t, c, "n2", "draining")
	if code, node, _ := getBody(t, c, "/administration/update/finalize"); code != 302 || node != "n2" {
		t.Errorf("finalize = %d from %q, want the draining n2", code, node)
	}
	for _, nv := range c.d.Snapshot().Nodes {
		if !nv.Version.IsZero() {
			t.Errorf("%s has fingerprint %s with health.version.every 0", nv.Name, nv.Version)
		}
	}
}
