package balancer

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// maxPoolNodes bounds a pool so eligibility fits one uint64 mask; mosparo
// clusters are a handful of nodes, and more are refused at configuration.
const maxPoolNodes = 64

// candidates is what a Selector chooses from: the pool's nodes, a mask of
// the eligible ones (bit i = nodes[i]), each node's effective weight
// (slow start included), and a precomputed key for hashing policies.
type candidates struct {
	nodes   []*upstream
	mask    uint64
	weights *[maxPoolNodes]int32
	key     uint64
}

// Selector picks one eligible node index, or -1 when the mask is empty. It
// sees a pool snapshot and a precomputed key, never the request, so policies
// test without a server.
type Selector interface {
	Select(c *candidates) int
}

// NewSelector returns the policy named in balancing.policy.
func NewSelector(policy string) Selector {
	switch policy {
	case "round_robin":
		return &RoundRobin{}
	case "weighted":
		return &Weighted{}
	case "client_ip_hash":
		return ClientIPHash{}
	default:
		return &LeastConn{}
	}
}

// RoundRobin takes eligible nodes in turn. It counts over the eligible
// nodes only, so a node that is out does not double its neighbour's share.
type RoundRobin struct {
	next atomic.Uint64
}

// Select implements Selector.
func (r *RoundRobin) Select(c *candidates) int {
	if c.mask == 0 {
		return -1
	}
	k := int(r.next.Add(1) % uint64(bits.OnesCount64(c.mask)))
	m := c.mask
	for ; k > 0; k-- {
		m &= m - 1
	}
	return bits.TrailingZeros64(m)
}

// LeastConn takes the node with the fewest in-flight requests relative to
// its weight; ties rotate so equal nodes share the load.
type LeastConn struct {
	next atomic.Uint64
}

// Select implements Selector.
func (l *LeastConn) Select(c *candidates) int {
	if c.mask == 0 {
		return -1
	}
	n := len(c.nodes)
	start := int(l.next.Add(1) % uint64(n))
	best, bestScore := -1, int64(0)
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if c.mask&(1<<uint(i)) == 0 {
			continue
		}
		w := int64(c.weights[i])
		if w < 1 {
			w = 1
		}
		// Compare (inflight+1)/weight without division.
		score := (c.nodes[i].inflight.Load() + 1) * 1_000_000 / w
		if best < 0 || score < bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// Weighted is smooth weighted round robin (the nginx variant): over any
// window every node gets its share, spread out rather than in bursts.
type Weighted struct {
	mu      sync.Mutex
	current [maxPoolNodes]int64
}

// Select implements Selector.
func (w *Weighted) Select(c *candidates) int {
	if c.mask == 0 {
		return -1
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	best, total := -1, int64(0)
	for m := c.mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		wt := int64(c.weights[i])
		if wt < 1 {
			wt = 1
		}
		w.current[i] += wt
		total += wt
		if best < 0 || w.current[i] > w.current[best] {
			best = i
		}
	}
	w.current[best] -= total
	return best
}

// ClientIPHash maps a client IP to one node with rendezvous hashing, so a
// client keeps its node (login throttling and delays are per node, FACTS 3)
// and only the clients of a node that leaves move.
type ClientIPHash struct{}

// Select implements Selector.
func (ClientIPHash) Select(c *candidates) int {
	best, bestScore := -1, uint64(0)
	for m := c.mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		s := mix64(c.key ^ c.nodes[i].hash)
		if best < 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// mix64 is the splitmix64 finalizer: cheap and well distributed.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashBytes is FNV-1a, used for node names and client addresses.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Interface guards.
var (
	_ Selector = (*RoundRobin)(nil)
	_ Selector = (*LeastConn)(nil)
	_ Selector = (*Weighted)(nil)
	_ Selector = ClientIPHash{}
)
