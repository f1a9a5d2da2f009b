package cron

import (
	"slices"
	"testing"
)

func names(cs []Candidate) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestChoose(t *testing.T) {
	pool := []Candidate{
		{Name: "node3", Address: "10.0.0.13:80", Up: true},
		{Name: "node1", Address: "10.0.0.11:80", Up: true},
		{Name: "node4", Address: "10.0.0.14:80", Up: true, Admin: true},
		{Name: "node2", Address: "10.0.0.12:80", Up: false, Admin: true},
	}
	tests := []struct {
		name      string
		nodes     []Candidate
		preferred string
		want      []string
	}{
		{"admin first then by name", pool, "", []string{"node4", "node1", "node3"}},
		{"preferred before admin", pool, "node3", []string{"node3", "node4", "node1"}},
		{"preferred down is skipped", pool, "node2", []string{"node4", "node1", "node3"}},
		{"unknown preferred", pool, "nodeX", []string{"node4", "node1", "node3"}},
		{"none up", []Candidate{{Name: "a"}, {Name: "b"}}, "", []string{}},
		{"same name by address", []Candidate{{Name: "n", Address: "b:80", Up: true}, {Name: "n", Address: "a:80", Up: true}}, "", []string{"n", "n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Choose(tt.nodes, tt.preferred)
			if !slices.Equal(names(got), tt.want) {
				t.Errorf("Choose(%q) = %v, want %v", tt.preferred, names(got), tt.want)
			}
		})
	}
	if got := Choose(tests[5].nodes, ""); got[0].Address != "a:80" {
		t.Errorf("equal names ordered by address: got %s first, want a:80", got[0].Address)
	}
}

func TestChooseIndependentOfOrder(t *testing.T) {
	a := []Candidate{{Name: "x", Up: true}, {Name: "y", Up: true}, {Name: "z", Up: true}}
	b := []Candidate{a[2], a[0], a[1]}
	if ga, gb := Choose(a, "")[0].Name, Choose(b, "")[0].Name; ga != gb {
		t.Errorf("two LBs with the same nodes in another order chose %s and %s", ga, gb)
	}
}
