package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/admin"
	"github.com/mosparo-lb/mosparo-lb/cron"
	"github.com/mosparo-lb/mosparo-lb/cssproxy"
	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/mosparo-lb/mosparo-lb/vip"
)

// TestStatusDocumentNames: GET /status, which the status page and
// `mosparo-lb status` read, keeps its JSON names now that it is the typed
// Snapshot, with every optional section present.
func TestStatusDocumentNames(t *testing.T) {
	redis := cachetest.StartRedis(t)
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, fmt.Sprintf("css_cache: {backend: redis, url: \"redis://%s/0\"}\n", redis.Addr)+
		fmt.Sprintf("cron: {enabled: true, standalone: true, key: %q, interval: 1h}\n", mosparoemu.DemoCronKey))
	resp, err := http.Get("http://" + c.d.AdminAddr() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Top   map[string]json.RawMessage
		Nodes []map[string]json.RawMessage `json:"nodes"`
	}
	if err := json.Unmarshal(b, &doc.Top); err != nil {
		t.Fatalf("/status is not a JSON object: %v\n%s", err, b)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := []string{"client_conns", "cron", "css_cache", "discovery", "events", "history", "listen", "nodes", "pool_ok", "reloads",
		"serving", "started", "timestamp", "version", "versions"}
	if got := slices.Sorted(maps.Keys(doc.Top)); !slices.Equal(got, want) {
		t.Errorf("/status keys = %v, want %v", got, want)
	}
	if len(doc.Nodes) != 2 {
		t.Fatalf("/status has %d nodes, want 2", len(doc.Nodes))
	}
	for _, k := range []string{"name", "address", "state", "health", "reason", "in_flight", "requests", "failures",
		"queued", "queue_timeouts", "ejections", "effective_weight"} {
		if _, ok := doc.Nodes[0][k]; !ok {
			t.Errorf("node in /status has no %q: %s", k, b)
		}
	}
	var reloads map[string]json.RawMessage
	if err := json.Unmarshal(doc.Top["reloads"], &reloads); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"count", "failures", "generation"} {
		if _, ok := reloads[k]; !ok {
			t.Errorf("reloads in /status has no %q: %s", k, doc.Top["reloads"])
		}
	}
}

// TestGaugesFromSnapshot: every gauge /metrics exports is the Snapshot's
// value, including the counters main added for queues, the CSS cache's
// reachability and coherence, VRRPv2 drops and client connection limits.
func TestGaugesFromSnapshot(t *testing.T) {
	reachable := false
	s := Snapshot{
		PoolOK:      true,
		Reloads:     ReloadStatus{Count: 7, Failures: 2},
		ClientConns: ClientConns{Open: 5, RefusedMaxConns: 11, RefusedPerIP: 13},
		Nodes: []NodeSnapshot{{
			NodeStatus: health.NodeStatus{Name: "n1", State: health.Draining, Ejections: 3, EffectiveWeight: 40},
			InFlight:   4, Queued: 6, QueueTimeouts: 9,
		}},
		CSSCache: &cssproxy.Stats{Hits: 10, Redirects: 3, NotModified: 2, Misses: 1, Errors: 4, Entries: 8, Bytes: 800,
			Reachable: &reachable, CoherenceChecks: 12, Disagreements: 5, Disagreeing: 1},
		VRRP: []vip.InstanceStatus{{Name: "VI_1", State: vip.Backup, EffectivePriority: 90, Transitions: 2,
			OtherVersionAdverts: 17, AuthFailures: 19}},
		Cron: &cron.Status{Outcomes: map[string]uint64{"ok": 3}},
	}
	want := admin.Gauges{
		PoolHealthy: true, Reloads: 7, ReloadFailures: 2,
		ClientConns: &admin.ClientConnGauge{Open: 5, RefusedMaxConns: 11, RefusedIP: 13},
		Nodes:       []admin.NodeGauge{{Name: "n1", State: health.Draining, InFlight: 4, Ejections: 3, Weight: 40, Queued: 6, QueueTimeouts: 9}},
		CSS: &admin.CSSGauge{Hits: 5, Redirects: 3, NotModified: 2, Misses: 1, Errors: 4, Entries: 8, Bytes: 800,
			Reachable: &reachable, CoherenceChecks: 12, Disagreements: 5, Disagreeing: 1},
		VRRP: []admin.VRRPGauge{{Instance: "VI_1", State: vip.Backup, Priority: 90, Transitions: 2, OtherVersionAdverts: 17, AuthFailures: 19}},
		Cron: &admin.CronGauge{Runs: map[string]uint64{"ok": 3}},
	}
	if got := s.gauges(); !reflect.DeepEqual(got, want) {
		t.Errorf("gauges =\n%+v\nwant\n%+v", got, want)
	}
}
