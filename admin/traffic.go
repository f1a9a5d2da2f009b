package admin

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/balancer"
)

// latencyBuckets are the upper bounds (seconds) of the request duration
// histogram, shared by /metrics and the status page's p99, so both tell
// the same story.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// numBuckets counts latencyBuckets plus the one above the last bound.
const numBuckets = 15

// bucketBounds are latencyBuckets as durations, for the hot path.
var bucketBounds = func() (b [numBuckets - 1]time.Duration) {
	for i, s := range latencyBuckets {
		b[i] = time.Duration(s * float64(time.Second))
	}
	return b
}()

// classTraffic are the cumulative counters of one node and route class,
// sampled by History. Atomics: the balancer adds, the sampler reads.
type classTraffic struct {
	requests, errors atomic.Uint64
	buckets          [numBuckets]atomic.Uint64
}

// observe counts one request; 5xx answers (the node's or the LB's own
// 502/503/504) are the errors the page charts.
func (c *classTraffic) observe(status int, d time.Duration) {
	c.requests.Add(1)
	if status >= 500 {
		c.errors.Add(1)
	}
	i := 0
	for i < len(bucketBounds) && d > bucketBounds[i] {
		i++
	}
	c.buckets[i].Add(1)
}

// nodeTraffic are one node's counters by route class ("" is the LB
// answering itself). Kept by name across runtime rebuilds, like the
// Prometheus series.
type nodeTraffic [balancer.NumClasses]classTraffic

// trafficTotals is a plain copy of classTraffic at one instant.
type trafficTotals struct {
	requests, errors uint64
	buckets          [numBuckets]uint64
}

func (c *classTraffic) load() trafficTotals {
	t := trafficTotals{requests: c.requests.Load(), errors: c.errors.Load()}
	for i := range c.buckets {
		t.buckets[i] = c.buckets[i].Load()
	}
	return t
}

func (t *trafficTotals) add(o trafficTotals) {
	t.requests += o.requests
	t.errors += o.errors
	for i := range t.buckets {
		t.buckets[i] += o.buckets[i]
	}
}

// sub is t minus an earlier copy; a counter that went backwards (it
// cannot, but a series replaced under the same name could) counts from 0.
func (t trafficTotals) sub(earlier trafficTotals) trafficTotals {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	out := trafficTotals{requests: d(t.requests, earlier.requests), errors: d(t.errors, earlier.errors)}
	for i := range t.buckets {
		out.buckets[i] = d(t.buckets[i], earlier.buckets[i])
	}
	return out
}

// quantile estimates the q-quantile of the durations counted in t the way
// Prometheus' histogram_quantile does: linear within the bucket that holds
// it; the open top bucket reports the highest bound. ok is false without
// requests.
func (t trafficTotals) quantile(q float64) (d time.Duration, ok bool) {
	var n uint64
	for _, c := range t.buckets {
		n += c
	}
	if n == 0 {
		return 0, false
	}
	rank := q * float64(n)
	var seen float64
	for i, c := range t.buckets {
		if c == 0 || seen+float64(c) < rank {
			seen += float64(c)
			continue
		}
		if i == len(bucketBounds) {
			return bucketBounds[i-1], true
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = bucketBounds[i-1]
		}
		frac := (rank - seen) / float64(c)
		return lo + time.Duration(frac*float64(bucketBounds[i]-lo)), true
	}
	return bucketBounds[len(bucketBounds)-1], true
}

// trafficSet holds every node's counters by name.
type trafficSet struct {
	mu    sync.Mutex
	nodes map[string]*nodeTraffic
}

// node returns name's counters, creating them on first use.
func (s *trafficSet) node(name string) *nodeTraffic {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodes == nil {
		s.nodes = map[string]*nodeTraffic{}
	}
	t := s.nodes[name]
	if t == nil {
		t = &nodeTraffic{}
		s.nodes[name] = t
	}
	return t
}

// totals copies every counter.
func (s *trafficSet) totals() map[string][balancer.NumClasses]trafficTotals {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][balancer.NumClasses]trafficTotals, len(s.nodes))
	for name, t := range s.nodes {
		var c [balancer.NumClasses]trafficTotals
		for i := range t {
			c[i] = t[i].load()
		}
		out[name] = c
	}
	return out
}
