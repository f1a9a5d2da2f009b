package balancer

import (
	"bytes"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/health"
)

// verNode is a node's health with a fingerprint, for the update routes.
type verNode struct {
	st, op health.State
	fp     health.Fingerprint
}

func (n verNode) State() health.State           { return n.st }
func (n verNode) Operator() health.State        { return n.op }
func (n verNode) Weight(int64) int              { return 100 }
func (n verNode) Observe(health.Outcome, int64) {}
func (n verNode) Version() health.Fingerprint   { return n.fp }

// TestUpdateExcluded: which nodes an update route may go to, and when it
// is refused with which message (FACTS 11.3).
func TestUpdateExcluded(t *testing.T) {
	v1, v2, none := health.Fingerprint{1}, health.Fingerprint{2}, health.Fingerprint{}
	up := func(fp health.Fingerprint) verNode { return verNode{health.Up, health.Up, fp} }
	drain := func(fp health.Fingerprint) verNode { return verNode{health.Draining, health.Up, fp} }
	down := func(fp health.Fingerprint) verNode { return verNode{health.Down, health.Up, fp} }
	maint := func(fp health.Fingerprint) verNode { return verNode{health.Up, health.Maintenance, fp} }
	setup := func(fp health.Fingerprint) verNode { return verNode{health.Setup, health.Up, fp} }
	tests := []struct {
		name     string
		nodes    []verNode // the first is admin: true
		pinned   string    // balancing.update_node: "n<index>"
		excluded uint64
		body     []byte
	}{
		{"one version", []verNode{up(v1), up(v1), up(v1)}, "", 0, nil},
		{"admin node's new code", []verNode{drain(v2), up(v1), up(v1)}, "", 0b110, nil},
		{"admin on old code, one node synced early", []verNode{up(v1), drain(v2), up(v1)}, "", 0b010, nil},
		{"admin down: all others agree", []verNode{down(v2), drain(v1), drain(v1)}, "", 0b001, nil},
		{"admin in maintenance: others differ", []verNode{maint(v1), up(v1), drain(v2)}, "", 0, bodyUpdateMixed},
		{"admin without a fingerprint", []verNode{drain(none), up(v1), up(v1)}, "", 0, bodyUpdateNoVersion},
		{"a node without a fingerprint, no admin answers", []verNode{down(v1), up(v1), up(none)}, "", 0, bodyUpdateNoVersion},
		{"a down node's version does not count", []verNode{down(none), up(v1), down(v2)}, "", 0b101, nil},
		{"setup nodes have no say and get nothing", []verNode{down(none), up(v1), setup(v2)}, "", 0b101, nil},
		{"pinned", []verNode{up(v1), drain(v2), up(v1)}, "n1", 0b101, nil},
		{"pinned down", []verNode{up(v1), down(v2), up(v1)}, "n1", 0, bodyUpdateNodeDown},
		{"pinned in maintenance", []verNode{up(v1), maint(v2), up(v1)}, "n1", 0, bodyUpdateNodeDown},
		{"pinned unknown (discovery)", []verNode{up(v1), up(v1)}, "n7", 0, bodyUpdateNodeDown},
		{"pinned without a fingerprint", []verNode{up(v1), up(none)}, "n1", 0, bodyUpdateNoVersion},
		{"nobody answers", []verNode{down(v1), down(v1)}, "", ^uint64(0), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &Runtime{versionRouting: true}
			for i, n := range tt.nodes {
				rt.nodes = append(rt.nodes, &upstream{name: "n" + string(rune('0'+i)), admin: i == 0, health: n, ver: n})
			}
			rt.updateNode = tt.pinned
			p := &pool{class: Admin, nodes: rt.nodes}
			excluded, body := rt.updateExcluded(p)
			if !bytes.Equal(body, tt.body) || body == nil && excluded != tt.excluded {
				t.Errorf("updateExcluded = %b, %s; want %b, %s", excluded, body, tt.excluded, tt.body)
			}
		})
	}
	// Without fingerprints (health.version.every 0, or a health source
	// that has none) nothing is excluded.
	rt := &Runtime{nodes: []*upstream{{name: "n0", health: drain(none)}}}
	if excluded, body := rt.updateExcluded(&pool{nodes: rt.nodes}); excluded != 0 || body != nil {
		t.Errorf("without fingerprints: %b, %s", excluded, body)
	}
}
