package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
)

// TestStandaloneCronRunsOnOneNode: through the whole daemon, the web cron
// reaches exactly one node per interval, and moves when that node goes down.
func TestStandaloneCronRunsOnOneNode(t *testing.T) {
	nodes := startNodes(t, 3)
	for _, n := range nodes {
		n.SetCronAnswer(200)
	}
	c := startCluster(t, nodes, fmt.Sprintf("cron: {enabled: true, standalone: true, key: %q, interval: 2s, timeout: 1s}\n", mosparoemu.DemoCronKey))
	calls := func() (total int64, per []int64) {
		for _, n := range nodes {
			v := n.Count("cron")
			per = append(per, v)
			total += v
		}
		return
	}
	// The schedule itself (one interval before the first call, then one
	// per interval) is cron's, tested there on an injected clock; here: the
	// calls arrive, all on one node, and move when it goes down.
	var total int64
	var per []int64
	if !eventually(20*time.Second, func() bool { total, per = calls(); return total >= 2 }) {
		t.Fatalf("cron calls = %d %v, want 2 within 20s at a 2s interval", total, per)
	}
	if per[0] != total {
		t.Errorf("calls per node %v: want all on the admin node n1", per)
	}
	nodes[0].Close()
	waitState(t, c, "n1", "down")
	before := nodes[0].Count("cron") // n1 is closed: it counts no more
	if !eventually(20*time.Second, func() bool { total, per = calls(); return total >= before+2 }) {
		t.Fatalf("after n1 went down calls = %v (before %d), want two more on another node", per, before)
	}
	if per[0] != before {
		t.Errorf("after n1 went down calls = %v (before %d), want new calls on another node", per, before)
	}
	if per[1] > 0 && per[2] > 0 {
		t.Errorf("calls spread over n2 and n3 %v; want one stable node", per)
	}
	if st := statusJSON(t, c.d); !strings.Contains(st, `"cron":`) || strings.Contains(st, mosparoemu.DemoCronKey) {
		t.Errorf("status must show the cron and never its key: %s", st)
	}
}
