package discovery

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// show renders nodes compactly for comparisons: name=address/weight[/admin]@source.
func show(nodes []Node) string {
	var parts []string
	for _, n := range nodes {
		s := fmt.Sprintf("%s=%s/%d", n.Name, n.Address, n.Weight)
		if n.Admin {
			s += "/admin"
		}
		parts = append(parts, s+"@"+n.Source)
	}
	return strings.Join(parts, " ")
}

func TestStaticNodes(t *testing.T) {
	got, err := staticNodes([]configs.Node{
		{Name: "node2", Address: "10.0.0.12:80", Weight: 100},
		{Name: "node1", Address: "10.0.0.11:80", Weight: 5, Admin: true, Host: "mosparo.example"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "node2=10.0.0.12:80/100@static node1=10.0.0.11:80/5/admin@static"; show(got) != want {
		t.Errorf("staticNodes = %s, want %s (file order)", show(got), want)
	}
	if got[1].Host != "mosparo.example" {
		t.Errorf("Host = %q, want the configured one", got[1].Host)
	}
}

// TestStaticNodesRefuseNoDefaults: configs sets every weight (issue 13:
// defaults once, there); a node without one is refused, not defaulted
// again here.
func TestStaticNodesRefuseNoDefaults(t *testing.T) {
	for _, tt := range []struct {
		name    string
		weight  int
		wantErr bool
	}{
		{"weight 0 (configs not applied)", 0, true},
		{"negative", -1, true},
		{"above max", configs.MaxNodeWeight + 1, true},
		{"1", 1, false},
		{"max", configs.MaxNodeWeight, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := []configs.Node{{Name: "n", Address: "10.0.0.1:80", Weight: tt.weight}}
			if _, err := staticNodes(cfg); (err != nil) != tt.wantErr {
				t.Errorf("staticNodes(weight %d) error = %v, want error %v", tt.weight, err, tt.wantErr)
			}
			if _, err := New(configs.Discovery{}, cfg, Options{}); (err != nil) != tt.wantErr {
				t.Errorf("New(weight %d) error = %v, want error %v", tt.weight, err, tt.wantErr)
			}
		})
	}
}

func TestMergeNodes(t *testing.T) {
	static, err := staticNodes([]configs.Node{{Name: "node1", Address: "10.0.0.11:80", Weight: 100}, {Name: "m-1", Address: "10.0.0.12:80", Weight: 100}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		insts       []instance
		want        string
		wantSkipped int
	}{
		{"none", nil, "node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static", 0},
		{
			"sorted by name after the static nodes",
			[]instance{{ID: "b", Address: "10.0.1.2", Port: 80}, {ID: "a", Address: "10.0.1.1", Port: 8080}},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static a=10.0.1.1:8080/100@consul b=10.0.1.2:80/100@consul", 0,
		},
		{
			"a name taken by a static node gets the consul: prefix",
			[]instance{{ID: "node1", Address: "10.0.1.1", Port: 80}},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static consul:node1=10.0.1.1:80/100@consul", 0,
		},
		{
			"a static node with the same address wins",
			[]instance{{ID: "x", Address: "10.0.0.11", Port: 80}},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static", 1,
		},
		{
			"an ID on two consul nodes is qualified by node",
			[]instance{{ID: "web", Node: "n2", Address: "10.0.1.2", Port: 80}, {ID: "web", Node: "n1", Address: "10.0.1.1", Port: 80}},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static web@n1=10.0.1.1:80/100@consul web@n2=10.0.1.2:80/100@consul", 0,
		},
		{
			"two instances on one address: the first by ID stays",
			[]instance{{ID: "z", Address: "10.0.1.1", Port: 80}, {ID: "y", Address: "10.0.1.1", Port: 80}},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static y=10.0.1.1:80/100@consul", 1,
		},
		{
			"weights: consul's default pair is unset, others clamped",
			[]instance{
				{ID: "d", Address: "10.0.1.1", Port: 80, WeightPassing: 1, WeightWarning: 1},
				{ID: "e", Address: "10.0.1.2", Port: 80, WeightPassing: 7, WeightWarning: 1},
				{ID: "f", Address: "10.0.1.3", Port: 80, WeightPassing: 5000},
				{ID: "g", Address: "10.0.1.4", Port: 80, WeightPassing: 1, WeightWarning: 0},
			},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static d=10.0.1.1:80/100@consul e=10.0.1.2:80/7@consul f=10.0.1.3:80/1000@consul g=10.0.1.4:80/1@consul", 0,
		},
		{
			"admin tag, case-insensitive",
			[]instance{{ID: "a", Address: "10.0.1.1", Port: 80, Tags: []string{"x", "MOSPARO-ADMIN"}}},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static a=10.0.1.1:80/100/admin@consul", 0,
		},
		{
			"IPv6 is bracketed; mapped IPv4 equals IPv4",
			[]instance{{ID: "v6", Address: "fd00::1", Port: 80}, {ID: "mapped", Address: "::ffff:10.0.0.12", Port: 80}},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static v6=[fd00::1]:80/100@consul", 1,
		},
		{
			"names unusable in the admin path are cleaned",
			[]instance{{ID: "a/b c?d", Address: "host-1.example", Port: 80}},
			"node1=10.0.0.11:80/100@static m-1=10.0.0.12:80/100@static a_b_c_d=host-1.example:80/100@consul", 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := mergeNodes(static, tt.insts, "mosparo-admin")
			if show(got) != tt.want {
				t.Errorf("mergeNodes =\n  %s\nwant\n  %s", show(got), tt.want)
			}
			if len(skipped) != tt.wantSkipped {
				t.Errorf("skipped = %q, want %d", skipped, tt.wantSkipped)
			}
		})
	}
}

func TestCanonAddr(t *testing.T) {
	same := [][2]string{
		{"10.0.0.1:80", "[::ffff:10.0.0.1]:80"},
		{"[fd00::1]:80", "[fd00:0::1]:80"},
		{"Host.Example.:80", "host.example:80"},
	}
	for _, p := range same {
		if canonAddr(p[0]) != canonAddr(p[1]) {
			t.Errorf("canonAddr(%q) = %q, canonAddr(%q) = %q, want equal", p[0], canonAddr(p[0]), p[1], canonAddr(p[1]))
		}
	}
	if canonAddr("10.0.0.1:80") == canonAddr("10.0.0.1:81") {
		t.Errorf("different ports compare equal")
	}
}
