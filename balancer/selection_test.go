package balancer

import (
	"fmt"
	"testing"
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

// Slow start at low concurrency (issue 11): with every node idle, a node
// ramping at a tenth of its weight got no request at all until its ramp
// ended. Ties now rotate by effective weight, so it gets its ramp's share at
// any concurrency, and busier nodes still lose to idle ones.
func TestLeastConnSlowStartShare(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int32
		inflight []int64
		n        int
		want     string
	}{
		{"sequential, n3 ramping at 10", []int32{100, 100, 100, 10}, []int64{0, 0, 0, 0}, 310, "[100 100 100 10]"},
		{"sequential, n3 ramping at 50", []int32{100, 100, 100, 50}, []int64{0, 0, 0, 0}, 350, "[100 100 100 50]"},
		{"sequential, n3 at weight 1", []int32{100, 100, 100, 1}, []int64{0, 0, 0, 0}, 301, "[100 100 100 1]"},
		{"one request in flight everywhere", []int32{100, 100, 100, 10}, []int64{1, 1, 1, 1}, 300, "[100 100 100 0]"},
		{"equal busy loads rotate by weight", []int32{200, 100, 100, 100}, []int64{3, 1, 1, 5}, 400, "[200 100 100 0]"},
		{"an idle ramping node beats busy ones", []int32{100, 100, 100, 10}, []int64{1, 1, 1, 0}, 50, "[0 0 0 50]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &candidates{weights: &[maxPoolNodes]int32{}}
			for i, w := range tt.weights {
				c.nodes = append(c.nodes, &upstream{name: fmt.Sprintf("n%d", i), weight: 100})
				c.nodes[i].inflight.Store(tt.inflight[i])
				c.weights[i] = w
				c.mask |= 1 << uint(i)
			}
			if got := fmt.Sprint(picks(&LeastConn{}, c, tt.n)); got != tt.want {
				t.Errorf("%d picks with weights %v, in flight %v = %s, want %s", tt.n, tt.weights, tt.inflight, got, tt.want)
			}
		})
	}
}

func TestCompareLoad(t *testing.T) {
	tests := []struct {
		inA, wA, inB, wB int64
		want             int
	}{
		{0, 1, 0, 1000, 0},   // idle is idle, whatever the weight
		{0, 1, 1, 1000, -1},  // idle beats busy
		{1, 1000, 0, 1, 1},   //
		{1, 100, 1, 100, 0},  // equal
		{1, 100, 1, 10, -1},  // same count, more weight: less loaded
		{3, 200, 1, 100, 0},  // 4/200 == 2/100: a tie, not rounded apart
		{2, 300, 1, 200, 0},  // 3/300 == 2/200
		{2, 301, 1, 200, -1}, //
		{1 << 40, 1000, 1 << 40, 1, -1},
	}
	for _, tt := range tests {
		if got := compareLoad(tt.inA, tt.wA, tt.inB, tt.wB); got != tt.want {
			t.Errorf("compareLoad(%d, %d, %d, %d) = %d, want %d", tt.inA, tt.wA, tt.inB, tt.wB, got, tt.want)
		}
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
	for policy, want := range map[string]string{"round_robin": "*balancer.RoundRobin", "least_conn": "*balancer.LeastConn",
		"weighted": "*balancer.Weighted", "client_ip_hash": "balancer.ClientIPHash"} {
		if got := fmt.Sprintf("%T", NewSelector(policy)); got != want {
			t.Errorf("NewSelector(%q) = %s, want %s", policy, got, want)
		}
	}
}
