package balancer

import (
	"fmt"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// testPool is a fresh pool of three equal nodes per test.
func testPool() *candidates {
	c := &candidates{weights: &[maxPoolNodes]int32{}}
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("n%d", i)
		c.nodes = append(c.nodes, &upstream{name: name, weight: 100, hash: mix64(hashBytes([]byte(name)))})
		c.weights[i] = 100
	}
	c.mask = 0b111
	return c
}

func picks(s Selector, c *candidates, n int) []int {
	counts := make([]int, len(c.nodes))
	for i := 0; i < n; i++ {
		if j := s.Select(c); j >= 0 {
			counts[j]++
		}
	}
	return counts
}

func TestRoundRobinPolicy(t *testing.T) {
	c := testPool()
	if got := picks(&RoundRobin{}, c, 300); fmt.Sprint(got) != "[100 100 100]" {
		t.Errorf("round robin over 3 nodes = %v, want [100 100 100]", got)
	}
	c.mask = 0b101
	if got := picks(&RoundRobin{}, c, 100); got[1] != 0 || got[0] != 50 || got[2] != 50 {
		t.Errorf("round robin with n1 ineligible = %v, want [50 0 50]", got)
	}
	c.mask = 0
	if got := (&RoundRobin{}).Select(c); got != -1 {
		t.Errorf("empty mask = %d, want -1", got)
	}
}

func TestLeastConnPolicy(t *testing.T) {
	c := testPool()
	c.nodes[0].inflight.Store(5)
	c.nodes[1].inflight.Store(1)
	c.nodes[2].inflight.Store(3)
	if got := (&LeastConn{}).Select(c); got != 1 {
		t.Errorf("least conn = n%d, want n1 (1 in flight)", got)
	}
	// Slow start: n1 at a tenth of its weight counts as busier than n2.
	c.weights[1] = 10
	if got := (&LeastConn{}).Select(c); got != 2 {
		t.Errorf("least conn with n1 ramping = n%d, want n2", got)
	}
	// Ties rotate instead of always hitting the first node.
	c = testPool()
	if got := picks(&LeastConn{}, c, 300); got[0] != 100 || got[1] != 100 {
		t.Errorf("least conn ties = %v, want an even spread", got)
	}
}

// TestLeastConnSlowStartShareWhenIdle: with every node idle (sequential
// requests, low concurrency) a node in slow start gets its effective
// weight's share of the ties, not none until its ramp ends nor a full
// share at once (issue 11, item 14: a node re-added by Consul got 0 of 15
// sequential requests for 20 s).
func TestLeastConnSlowStartShareWhenIdle(t *testing.T) {
	for _, tt := range []struct {
		name    string
		weights [3]int32
		want    string
	}{
		{"ramp start", [3]int32{100, 10, 100}, "[100 10 100]"},
		{"half way", [3]int32{100, 50, 100}, "[100 50 100]"},
		{"ramp done", [3]int32{100, 100, 100}, "[100 100 100]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testPool()
			c.weights[0], c.weights[1], c.weights[2] = tt.weights[0], tt.weights[1], tt.weights[2]
			n := int(tt.weights[0] + tt.weights[1] + tt.weights[2])
			if got := picks(&LeastConn{}, c, n); fmt.Sprint(got) != tt.want {
				t.Errorf("least conn over %d idle picks with weights %v = %v, want %s", n, tt.weights, got, tt.want)
			}
		})
	}
}

func TestWeightedPolicy(t *testing.T) {
	c := testPool()
	c.weights[0], c.weights[1], c.weights[2] = 500, 300, 200
	if got := picks(&Weighted{}, c, 1000); fmt.Sprint(got) != "[500 300 200]" {
		t.Errorf("weighted 5:3:2 over 1000 = %v, want [500 300 200]", got)
	}
	// Smooth: the heavy node is not picked five times in a row.
	w := &Weighted{}
	run, longest := 0, 0
	for i := 0; i < 10; i++ {
		if w.Select(c) == 0 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest > 2 {
		t.Errorf("weighted picked the heavy node %d times in a row; smooth WRR interleaves", longest)
	}
}

func TestClientIPHashPolicy(t *testing.T) {
	c := testPool()
	got := map[uint64]int{}
	for key := uint64(0); key < 300; key++ {
		c.key = mix64(key)
		got[key] = ClientIPHash{}.Select(c)
		if again := (ClientIPHash{}).Select(c); again != got[key] {
			t.Fatalf("key %d moved from n%d to n%d", key, got[key], again)
		}
	}
	// Only the clients of a node that leaves move (rendezvous hashing).
	c.mask = 0b011
	moved := 0
	for key := uint64(0); key < 300; key++ {
		c.key = mix64(key)
		if n := (ClientIPHash{}).Select(c); n != got[key] {
			moved++
			if got[key] != 2 {
				t.Errorf("key %d moved from the surviving node n%d", key, got[key])
			}
		}
	}
	if moved == 0 || moved > 150 {
		t.Errorf("%d of 300 clients moved when n2 left, want about a third", moved)
	}
}

func TestNewSelector(t *testing.T) {
	for policy, want := range map[configs.Policy]string{"round_robin": "*balancer.RoundRobin", "least_conn": "*balancer.LeastConn",
		"weighted": "*balancer.Weighted", "client_ip_hash": "balancer.ClientIPHash"} {
		if got := fmt.Sprintf("%T", NewSelector(policy)); got != want {
			t.Errorf("NewSelector(%q) = %s, want %s", policy, got, want)
		}
	}
}
