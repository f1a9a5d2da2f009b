package balancer

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/mosparo-lb/mosparo-lb/configs"
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
	full    uint64 // eligible but full nodes, left out of mask while others are not
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
func NewSelector(policy configs.Policy) Selector {
	switch policy {
	case configs.PolicyRoundRobin:
		return &RoundRobin{}
	case configs.PolicyWeighted:
		return &Weighted{}
	case configs.PolicyClientIPHash:
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

// LeastConn takes the least loaded node: in-flight requests relative to the
// effective weight, an idle node counting as unloaded whatever its weight
// (HAProxy's leastconn key). Nodes with equal load take turns by smooth
// weighted rotation over their effective weights, as HAProxy does among
// equal loads: at low concurrency every node is idle and each gets its
// weight's share, so a node in slow start ramps up instead of losing every
// tie to the full-weight nodes until its ramp ends.
type LeastConn struct {
	rot rotation
}

// Select implements Selector.
func (l *LeastConn) Select(c *candidates) int {
	best, ties := -1, uint64(0)
	var bestIn, bestW int64
	for m := c.mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		in, w := c.nodes[i].inflight.Load(), c.weight(i)
		if best >= 0 {
			if d := compareLoad(in, w, bestIn, bestW); d > 0 {
				continue
			} else if d == 0 {
				ties |= 1 << uint(i)
				continue
			}
		}
		best, bestIn, bestW, ties = i, in, w, 1<<uint(i)
	}
	if ties&(ties-1) == 0 {
		return best
	}
	return l.rot.next(c, ties)
}

// compareLoad orders two nodes by load (in flight, weight): negative when
// the first is less loaded, 0 when equal. A busy node's load is
// (in+1)/weight, compared by cross-multiplying so no division rounds two
// different loads into a tie.
func compareLoad(inA, wA, inB, wB int64) int {
	switch {
	case inA == 0 && inB == 0:
		return 0
	case inA == 0:
		return -1
	case inB == 0:
		return 1
	}
	a, b := (inA+1)*wB, (inB+1)*wA
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Weighted is smooth weighted round robin (the nginx variant): over any
// window every node gets its share, spread out rather than in bursts.
type Weighted struct {
	rot rotation
}

// Select implements Selector.
func (w *Weighted) Select(c *candidates) int {
	if c.mask == 0 {
		return -1
	}
	return w.rot.next(c, c.mask)
}

// rotation is the state of smooth weighted round robin over a pool.
type rotation struct {
	mu      sync.Mutex
	current [maxPoolNodes]int64
}

// next picks among the nodes in mask (not empty): each gains its weight,
// the one ahead is taken and falls back by the sum of the weights.
func (r *rotation) next(c *candidates, mask uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	best, total := -1, int64(0)
	for m := mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		wt := c.weight(i)
		r.current[i] += wt
		total += wt
		if best < 0 || r.current[i] > r.current[best] {
			best = i
		}
	}
	r.current[best] -= total
	return best
}

// weight is node i's effective weight, at least 1.
func (c *candidates) weight(i int) int64 {
	return max(int64(c.weights[i]), 1)
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
