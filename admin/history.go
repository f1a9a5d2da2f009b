package admin

import (
	"context"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
)

// HistoryOptions shape a History. Zero fields take the defaults.
type HistoryOptions struct {
	// Interval is the resolution of the charts. Default 10s.
	Interval time.Duration
	// Points is how many intervals are kept. Default 60 (ten minutes).
	Points int
	// Clock stamps the samples; nil is clock.System. Run's ticker runs in
	// real time.
	Clock clock.Clock
}

// maxNodeSeries bounds the per-node series: nodes that come and go (Consul)
// would otherwise add series for ever. Beyond it, series idle for the whole
// window are dropped.
const maxNodeSeries = 64

// History keeps the last minutes of requests/s, errors/s and p99 latency
// per node and per route class for the status page, sampled from the
// counters Metrics' recorders keep. Memory is bounded: Points samples per
// series, at most maxNodeSeries nodes plus the route classes.
type History struct {
	m        *Metrics
	interval time.Duration
	points   int
	now      func() time.Time

	mu      sync.Mutex
	last    time.Time // when the last sample was taken (or History made)
	prev    map[string][balancer.NumClasses]trafficTotals
	times   []time.Time // ring: the end of each interval
	head    int         // next slot of every ring
	n       int         // filled slots
	nodes   map[string][]sample
	classes [balancer.NumClasses][]sample
}

// sample is one interval of one series.
type sample struct {
	rps, eps float64
	p99      time.Duration
	hasP99   bool
}

// NewHistory samples m's counters; call Run (or Sample in tests).
func NewHistory(m *Metrics, opts HistoryOptions) *History {
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Points <= 0 {
		opts.Points = 60
	}
	h := &History{m: m, interval: opts.Interval, points: opts.Points, now: clock.OrSystem(opts.Clock).Now,
		times: make([]time.Time, opts.Points), nodes: map[string][]sample{}}
	for c := range h.classes {
		h.classes[c] = make([]sample, opts.Points)
	}
	h.last = h.now()
	h.prev = m.traffic.totals()
	return h
}

// Run samples every interval until ctx ends.
func (h *History) Run(ctx context.Context) error {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			h.Sample()
		}
	}
}

// Sample closes the current interval at the clock's now.
func (h *History) Sample() {
	now := h.now()
	totals := h.m.traffic.totals()
	h.mu.Lock()
	defer h.mu.Unlock()
	nodes, classes := h.deltas(totals, now)
	slot := h.head
	h.times[slot] = now
	for name, s := range nodes {
		ring := h.nodes[name]
		if ring == nil {
			ring = make([]sample, h.points)
			h.nodes[name] = ring
		}
		ring[slot] = s
	}
	for name, ring := range h.nodes {
		if _, ok := nodes[name]; !ok {
			ring[slot] = sample{}
		}
	}
	for c := range classes {
		h.classes[c][slot] = classes[c]
	}
	h.head = (h.head + 1) % h.points
	h.n = min(h.n+1, h.points)
	h.prev, h.last = totals, now
	h.prune()
}

// deltas turns the counters' growth since the last sample into one sample
// per node and per class. Caller holds h.mu.
func (h *History) deltas(totals map[string][balancer.NumClasses]trafficTotals, now time.Time) (map[string]sample, [balancer.NumClasses]sample) {
	secs := now.Sub(h.last).Seconds()
	var byClass [balancer.NumClasses]trafficTotals
	nodes := map[string]sample{}
	for name, cur := range totals {
		prev := h.prev[name]
		var node trafficTotals
		for c := range cur {
			d := cur[c].sub(prev[c])
			node.add(d)
			byClass[c].add(d)
		}
		if name != "" { // the LB's own answers count per class only
			nodes[name] = toSample(node, secs)
		}
	}
	var classes [balancer.NumClasses]sample
	for c := range byClass {
		classes[c] = toSample(byClass[c], secs)
	}
	return nodes, classes
}

func toSample(t trafficTotals, secs float64) sample {
	if secs <= 0 {
		return sample{}
	}
	s := sample{rps: float64(t.requests) / secs, eps: float64(t.errors) / secs}
	s.p99, s.hasP99 = t.quantile(0.99)
	return s
}

// prune drops idle node series beyond maxNodeSeries. Caller holds h.mu.
func (h *History) prune() {
	if len(h.nodes) <= maxNodeSeries {
		return
	}
	for name, ring := range h.nodes {
		if len(h.nodes) <= maxNodeSeries {
			return
		}
		if idle(ring) {
			delete(h.nodes, name)
		}
	}
}

func idle(ring []sample) bool {
	for _, s := range ring {
		if s.rps != 0 {
			return false
		}
	}
	return true
}

// HistoryView is the "history" of /status: for each series one value per
// time in Times, oldest first.
type HistoryView struct {
	Interval time.Duration `json:"interval_ns"`
	// Times end each interval. The last one is now when Partial is set:
	// the interval still running, so the charts reach the present.
	Times   []time.Time `json:"times"`
	Partial bool        `json:"partial"`
	// Nodes are every node balanced in the window, by name; Classes only
	// the route classes that had requests in it.
	Nodes   []SeriesView `json:"nodes"`
	Classes []SeriesView `json:"classes"`
}

// SeriesView is one node's or route class's charts.
type SeriesView struct {
	Name string `json:"name"`
	// RPS and ErrorsPerS are per second over each interval; errors are
	// 5xx answers.
	RPS        []float64 `json:"rps"`
	ErrorsPerS []float64 `json:"errors_per_s"`
	// P99 is the 99th percentile of the request durations, in
	// milliseconds, estimated from the histogram buckets of /metrics;
	// null for an interval without requests.
	P99 []Millis `json:"p99_ms"`
}

// Millis is a duration in milliseconds for JSON; NaN encodes as null.
type Millis float64

// MarshalJSON writes the number with microsecond precision, or null.
func (m Millis) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(m), 'f', 3, 64), nil
}

// partialAfter is the least time a running interval must have lasted to
// be shown: shorter ones give noisy rates.
const partialAfter = time.Second

// View returns the window, with the running interval appended once it is
// long enough to give meaningful rates.
func (h *History) View() HistoryView {
	now := h.now()
	totals := h.m.traffic.totals()
	h.mu.Lock()
	defer h.mu.Unlock()
	v := HistoryView{Interval: h.interval, Times: []time.Time{}, Nodes: []SeriesView{}, Classes: []SeriesView{}}
	order := make([]int, 0, h.n+1)
	for i := h.n; i > 0; i-- {
		order = append(order, (h.head-i+h.points)%h.points)
	}
	for _, i := range order {
		v.Times = append(v.Times, h.times[i])
	}
	var partNodes map[string]sample
	var partClasses [balancer.NumClasses]sample
	if now.Sub(h.last) >= partialAfter {
		v.Partial = true
		v.Times = append(v.Times, now)
		partNodes, partClasses = h.deltas(totals, now)
	}
	series := func(name string, ring []sample, part sample) SeriesView {
		s := SeriesView{Name: name}
		add := func(x sample) {
			s.RPS = append(s.RPS, round3(x.rps))
			s.ErrorsPerS = append(s.ErrorsPerS, round3(x.eps))
			p := Millis(math.NaN())
			if x.hasP99 {
				p = Millis(float64(x.p99) / float64(time.Millisecond))
			}
			s.P99 = append(s.P99, p)
		}
		for _, i := range order {
			add(ring[i])
		}
		if v.Partial {
			add(part)
		}
		return s
	}
	names := make([]string, 0, len(h.nodes)+len(partNodes))
	for name := range h.nodes {
		names = append(names, name)
	}
	for name := range partNodes {
		if _, ok := h.nodes[name]; !ok && len(names) < maxNodeSeries {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		ring := h.nodes[name]
		if ring == nil {
			ring = make([]sample, h.points)
		}
		v.Nodes = append(v.Nodes, series(name, ring, partNodes[name]))
	}
	for c := range h.classes {
		s := series(balancer.Class(c).String(), h.classes[c], partClasses[c])
		if slices.ContainsFunc(s.RPS, func(r float64) bool { return r > 0 }) {
			v.Classes = append(v.Classes, s)
		}
	}
	return v
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
