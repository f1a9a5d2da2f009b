package admin

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/vip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Gauges are the values read at scrape time from the other components.
type Gauges struct {
	PoolHealthy bool
	// VersionsMixed: the nodes run different mosparo code versions.
	VersionsMixed  bool
	Nodes          []NodeGauge
	VRRP           []VRRPGauge
	CSS            *CSSGauge // nil without css_cache
	Cron           *CronGauge
	Reloads        uint64
	ReloadFailures uint64
	ClientConns    *ClientConnGauge // nil when no listener serves
	RateLimits     []RateLimitGauge // one per limited route class
	ACME           []ACMEGauge      // one per listen[].tls.acme domain (acme.go)
}

// RateLimitGauge is one route class's per-client limiter (rate_limits).
type RateLimitGauge struct {
	Route              string
	Limited, Evictions uint64
	Entries, Capacity  int
}

// ClientConnGauge are the public listeners' connection counters.
type ClientConnGauge struct {
	Open                       int64
	RefusedMaxConns, RefusedIP uint64 // closed at accept, by the limit reached
	// Closed on proxy_protocol listeners: a peer outside proxy_protocol.from,
	// no valid PROXY header in time.
	RefusedProxyPeer, RefusedProxyHeader uint64
	// HTTP/2 (issue 14): connections open, closed for rapid reset, and
	// requests by protocol.
	H2Open                 int64
	H2RapidResets          uint64
	RequestsH1, RequestsH2 uint64
}

// NodeGauge is one node's health state and counters.
type NodeGauge struct {
	Name      string
	State     health.State
	InFlight  int64
	Ejections int
	Weight    int
	// Queued requests wait for a connection to the node; QueueTimeouts
	// of them were answered 503 after timeouts.queue.
	Queued        int64
	QueueTimeouts uint64
	// Version is the node's code-version fingerprint, "" while unknown.
	Version string
}

// VRRPGauge is one VRRP instance.
type VRRPGauge struct {
	Instance    string
	State       vip.State
	Priority    int
	Transitions uint64

	// Adverts of the instance's VRID dropped for speaking the other VRRP
	// version, and for failing VRRPv2 authentication.
	OtherVersionAdverts, AuthFailures uint64
}

// CSSGauge are the edge CSS cache's counters.
type CSSGauge struct {
	Hits, Redirects, NotModified, Misses, Errors uint64
	Entries, Bytes                               int64
	// Reachable is the shared cache's probe result; nil before the first.
	Reachable *bool
	// CoherenceChecks, Disagreements and Disagreeing: the edge's unhashed
	// redirect compared with the nodes' (FACTS 11.5).
	CoherenceChecks, Disagreements uint64
	Disagreeing                    int64
}

// CronGauge are the web cron's counters by outcome.
type CronGauge struct {
	Runs map[string]uint64
}

// Metrics is the Prometheus side of mosparo-lb: per-request counters and
// histograms recorded by the balancer, and the state of every other
// component collected at scrape time. Names start with mosparo_lb_.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	gauges   func() Gauges
	// traffic are the same requests by node and class for History.
	traffic trafficSet
}

// NewMetrics registers every family; gauges is called on each scrape.
func NewMetrics(gauges func() Gauges) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosparo_lb_requests_total",
			Help: "Requests answered, by mosparo route class, node (empty when the LB answered itself) and status code.",
		}, []string{"route", "node", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mosparo_lb_request_duration_seconds",
			Help:    "Time from reading a request to having its answer, by route class.",
			Buckets: latencyBuckets,
		}, []string{"route"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosparo_lb_retries_total",
			Help: "Attempts on another node after a failure, by route class.",
		}, []string{"route"}),
		gauges: gauges,
	}
	m.reg.MustRegister(m.requests, m.duration, m.retries, (*stateCollector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Node returns the per-request recorder of one node ("" = the LB itself).
func (m *Metrics) Node(name string) balancer.RequestRecorder {
	r := &nodeRecorder{m: m, node: name, traffic: m.traffic.node(name)}
	empty := map[int]prometheus.Counter{}
	r.codes.Store(&empty)
	for c := balancer.Class(0); c < balancer.NumClasses; c++ {
		r.hist[c] = m.duration.WithLabelValues(c.String())
		r.retry[c] = m.retries.WithLabelValues(c.String())
	}
	return r
}

// nodeRecorder caches resolved series so Observe allocates nothing once a
// (class, code) pair has been seen: the counter map is copy-on-write.
type nodeRecorder struct {
	m       *Metrics
	node    string
	traffic *nodeTraffic
	mu      sync.Mutex
	codes   atomic.Pointer[map[int]prometheus.Counter]
	hist    [balancer.NumClasses]prometheus.Observer
	retry   [balancer.NumClasses]prometheus.Counter
}

func (r *nodeRecorder) Observe(class balancer.Class, status int, d time.Duration, retries int) {
	if class >= balancer.NumClasses {
		return
	}
	key := int(class)<<16 | status&0xffff
	c, ok := (*r.codes.Load())[key]
	if !ok {
		c = r.counter(class, status, key)
	}
	c.Inc()
	r.hist[class].Observe(d.Seconds())
	r.traffic[class].observe(status, d)
	if retries > 0 {
		r.retry[class].Add(float64(retries))
	}
}

func (r *nodeRecorder) counter(class balancer.Class, status, key int) prometheus.Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.codes.Load()
	if c, ok := old[key]; ok {
		return c
	}
	c := r.m.requests.WithLabelValues(class.String(), r.node, strconv.Itoa(status))
	next := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[key] = c
	r.codes.Store(&next)
	return c
}

// stateCollector turns Gauges into metrics at scrape time.
type stateCollector Metrics

var (
	descPool        = prometheus.NewDesc("mosparo_lb_pool_healthy", "1 while at least one node is up (the VRRP tracking signal).", nil, nil)
	descNodeState   = prometheus.NewDesc("mosparo_lb_node_state", "1 for the node's current state (up, down, draining, setup, maintenance).", []string{"node", "state"}, nil)
	descNodeFlight  = prometheus.NewDesc("mosparo_lb_node_in_flight", "Requests in flight to the node.", []string{"node"}, nil)
	descNodeEject   = prometheus.NewDesc("mosparo_lb_node_ejections_total", "Passive ejections of the node since it was added.", []string{"node"}, nil)
	descNodeWeight  = prometheus.NewDesc("mosparo_lb_node_effective_weight", "The node's weight as balanced now (lower during slow start).", []string{"node"}, nil)
	descNodeQueued  = prometheus.NewDesc("mosparo_lb_node_queued", "Requests waiting for a connection to the node (limits.max_conns_per_node in use).", []string{"node"}, nil)
	descNodeQueueTO = prometheus.NewDesc("mosparo_lb_node_queue_timeouts_total", "Requests answered 503 after waiting timeouts.queue for a connection to the node.", []string{"node"}, nil)
	descNodeVersion = prometheus.NewDesc("mosparo_lb_node_version_info", "1 with the node's code-version fingerprint (a hash of its built assets; one series per node, absent while unknown).", []string{"node", "version"}, nil)
	descVersMixed   = prometheus.NewDesc("mosparo_lb_versions_mixed", "1 while the nodes run different mosparo code versions (source code not synced onto every node).", nil, nil)
	descVRRPState   = prometheus.NewDesc("mosparo_lb_vrrp_state", "1 for the VRRP instance's current state.", []string{"instance", "state"}, nil)
	descVRRPPrio    = prometheus.NewDesc("mosparo_lb_vrrp_priority", "The VRRP instance's effective priority.", []string{"instance"}, nil)
	descVRRPTrans   = prometheus.NewDesc("mosparo_lb_vrrp_transitions_total", "State transitions of the VRRP instance.", []string{"instance"}, nil)
	descVRRPDropped = prometheus.NewDesc("mosparo_lb_vrrp_dropped_adverts_total", "Adverts of the VRRP instance's VRID dropped, by reason (other_version, auth).", []string{"instance", "reason"}, nil)
	descCSS         = prometheus.NewDesc("mosparo_lb_css_cache_requests_total", "Edge CSS lookups by result (hit, redirect, not_modified, miss, error).", []string{"result"}, nil)
	descCSSEntries  = prometheus.NewDesc("mosparo_lb_css_cache_entries", "Entries held in the local CSS cache.", nil, nil)
	descCSSBytes    = prometheus.NewDesc("mosparo_lb_css_cache_bytes", "Bytes held in the local CSS cache.", nil, nil)
	descCSSUp       = prometheus.NewDesc("mosparo_lb_css_cache_up", "Whether the shared Redis/memcached cache answers its probes (absent before the first probe); mosparo's health API does not cover it.", nil, nil)
	descCSSChecks   = prometheus.NewDesc("mosparo_lb_css_cache_coherence_checks_total", "Unhashed CSS requests left to a node to compare its redirect with the cached hash.", nil, nil)
	descCSSDisagree = prometheus.NewDesc("mosparo_lb_css_cache_disagreements_total", "Node answers to the unhashed CSS URL that differed from the cached hash (another hash, or 404).", nil, nil)
	descCSSDisProj  = prometheus.NewDesc("mosparo_lb_css_cache_disagreeing_projects", "Projects whose unhashed CSS URL the edge leaves to the nodes because the cache disagrees.", nil, nil)
	descCron        = prometheus.NewDesc("mosparo_lb_cron_runs_total", "Web cron calls by outcome.", []string{"outcome"}, nil)
	descReloads     = prometheus.NewDesc("mosparo_lb_config_reloads_total", "Configuration reloads attempted.", nil, nil)
	descConnsH2     = prometheus.NewDesc("mosparo_lb_client_connections_http2", "Client connections open on the public listeners that speak HTTP/2.", nil, nil)
	descRapidResets = prometheus.NewDesc("mosparo_lb_http2_rapid_reset_closed_total", "HTTP/2 client connections closed for resetting more streams than listen[].http2.max_resets within reset_window (CVE-2023-44487).", nil, nil)
	descReqProto    = prometheus.NewDesc("mosparo_lb_client_requests_total", "Client requests handled, by protocol (h1, h2).", []string{"proto"}, nil)
	descConns       = prometheus.NewDesc("mosparo_lb_client_connections", "Client connections open on the public listeners.", nil, nil)
	descConnsRefuse = prometheus.NewDesc("mosparo_lb_client_connections_refused_total", "Client connections closed at accept, by the limit reached (max_conns, max_conns_per_ip), or unread on a proxy_protocol listener (proxy_protocol_from, proxy_protocol_header).", []string{"limit"}, nil)
	descRateLimited = prometheus.NewDesc("mosparo_lb_rate_limited_total", "Requests the per-client rate limits answered at the LB (429, or mosparo's delay answer with rate_limits.frontend_answer: delay), by route class.", []string{"route"}, nil)
	descRateEntries = prometheus.NewDesc("mosparo_lb_rate_limit_entries", "Clients held by the route class's rate limiter.", []string{"route"}, nil)
	descRateCap     = prometheus.NewDesc("mosparo_lb_rate_limit_capacity", "Clients the route class's rate limiter can hold (rate_limits.max_entries, rounded up).", []string{"route"}, nil)
	descRateEvicted = prometheus.NewDesc("mosparo_lb_rate_limit_evictions_total", "Clients forgotten by the route class's rate limiter before their bucket was full again (each may get one extra burst).", []string{"route"}, nil)
	descReloadFails = prometheus.NewDesc("mosparo_lb_config_reload_failures_total", "Configuration reloads rejected.", nil, nil)
	nodeStates      = []health.State{health.Up, health.Down, health.Draining, health.Setup, health.Maintenance}
	vrrpStates      = []vip.State{vip.Initialize, vip.Backup, vip.Master, vip.Fault}
)

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPool, descVersMixed, descNodeVersion, descNodeState, descNodeFlight, descNodeEject, descNodeWeight, descNodeQueued, descNodeQueueTO,
		descVRRPState, descVRRPPrio, descVRRPTrans, descVRRPDropped, descCSS, descCSSEntries, descCSSBytes, descCSSUp, descCSSChecks, descCSSDisagree, descCSSDisProj, descCron, descReloads, descReloadFails, descConns, descConnsRefuse,
		descRateLimited, descRateEntries, descRateCap, descRateEvicted} {
		ch <- d
	}
	describeACME(ch)
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if s.gauges == nil {
		return
	}
	g := s.gauges()
	ch <- prometheus.MustNewConstMetric(descPool, prometheus.GaugeValue, b2f(g.PoolHealthy))
	ch <- prometheus.MustNewConstMetric(descVersMixed, prometheus.GaugeValue, b2f(g.VersionsMixed))
	for _, n := range g.Nodes {
		if n.Version != "" {
			ch <- prometheus.MustNewConstMetric(descNodeVersion, prometheus.GaugeValue, 1, n.Name, n.Version)
		}
		for _, st := range nodeStates {
			ch <- prometheus.MustNewConstMetric(descNodeState, prometheus.GaugeValue, b2f(n.State == st), n.Name, st.String())
		}
		ch <- prometheus.MustNewConstMetric(descNodeFlight, prometheus.GaugeValue, float64(n.InFlight), n.Name)
		ch <- prometheus.MustNewConstMetric(descNodeEject, prometheus.CounterValue, float64(n.Ejections), n.Name)
		ch <- prometheus.MustNewConstMetric(descNodeWeight, prometheus.GaugeValue, float64(n.Weight), n.Name)
		ch <- prometheus.MustNewConstMetric(descNodeQueued, prometheus.GaugeValue, float64(n.Queued), n.Name)
		ch <- prometheus.MustNewConstMetric(descNodeQueueTO, prometheus.CounterValue, float64(n.QueueTimeouts), n.Name)
	}
	for _, v := range g.VRRP {
		for _, st := range vrrpStates {
			ch <- prometheus.MustNewConstMetric(descVRRPState, prometheus.GaugeValue, b2f(v.State == st), v.Instance, st.String())
		}
		ch <- prometheus.MustNewConstMetric(descVRRPPrio, prometheus.GaugeValue, float64(v.Priority), v.Instance)
		ch <- prometheus.MustNewConstMetric(descVRRPTrans, prometheus.CounterValue, float64(v.Transitions), v.Instance)
		ch <- prometheus.MustNewConstMetric(descVRRPDropped, prometheus.CounterValue, float64(v.OtherVersionAdverts), v.Instance, "other_version")
		ch <- prometheus.MustNewConstMetric(descVRRPDropped, prometheus.CounterValue, float64(v.AuthFailures), v.Instance, "auth")
	}
	if c := g.CSS; c != nil {
		for _, r := range []struct {
			name string
			v    uint64
		}{{"hit", c.Hits}, {"redirect", c.Redirects}, {"not_modified", c.NotModified}, {"miss", c.Misses}, {"error", c.Errors}} {
			ch <- prometheus.MustNewConstMetric(descCSS, prometheus.CounterValue, float64(r.v), r.name)
		}
		ch <- prometheus.MustNewConstMetric(descCSSEntries, prometheus.GaugeValue, float64(c.Entries))
		ch <- prometheus.MustNewConstMetric(descCSSBytes, prometheus.GaugeValue, float64(c.Bytes))
		if c.Reachable != nil {
			ch <- prometheus.MustNewConstMetric(descCSSUp, prometheus.GaugeValue, b2f(*c.Reachable))
		}
		ch <- prometheus.MustNewConstMetric(descCSSChecks, prometheus.CounterValue, float64(c.CoherenceChecks))
		ch <- prometheus.MustNewConstMetric(descCSSDisagree, prometheus.CounterValue, float64(c.Disagreements))
		ch <- prometheus.MustNewConstMetric(descCSSDisProj, prometheus.GaugeValue, float64(c.Disagreeing))
	}
	if c := g.Cron; c != nil {
		for outcome, n := range c.Runs {
			ch <- prometheus.MustNewConstMetric(descCron, prometheus.CounterValue, float64(n), outcome)
		}
	}
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(g.Reloads))
	ch <- prometheus.MustNewConstMetric(descReloadFails, prometheus.CounterValue, float64(g.ReloadFailures))
	if c := g.ClientConns; c != nil {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(c.Open))
		ch <- prometheus.MustNewConstMetric(descConnsRefuse, prometheus.CounterValue, float64(c.RefusedMaxConns), "max_conns")
		ch <- prometheus.MustNewConstMetric(descConnsRefuse, prometheus.CounterValue, float64(c.RefusedIP), "max_conns_per_ip")
		ch <- prometheus.MustNewConstMetric(descConnsRefuse, prometheus.CounterValue, float64(c.RefusedProxyPeer), "proxy_protocol_from")
		ch <- prometheus.MustNewConstMetric(descConnsRefuse, prometheus.CounterValue, float64(c.RefusedProxyHeader), "proxy_protocol_header")
		ch <- prometheus.MustNewConstMetric(descConnsH2, prometheus.GaugeValue, float64(c.H2Open))
		ch <- prometheus.MustNewConstMetric(descRapidResets, prometheus.CounterValue, float64(c.H2RapidResets))
		ch <- prometheus.MustNewConstMetric(descReqProto, prometheus.CounterValue, float64(c.RequestsH1), "h1")
		ch <- prometheus.MustNewConstMetric(descReqProto, prometheus.CounterValue, float64(c.RequestsH2), "h2")
	}
	collectACME(ch, g.ACME)
	for _, r := range g.RateLimits {
		ch <- prometheus.MustNewConstMetric(descRateLimited, prometheus.CounterValue, float64(r.Limited), r.Route)
		ch <- prometheus.MustNewConstMetric(descRateEntries, prometheus.GaugeValue, float64(r.Entries), r.Route)
		ch <- prometheus.MustNewConstMetric(descRateCap, prometheus.GaugeValue, float64(r.Capacity), r.Route)
		ch <- prometheus.MustNewConstMetric(descRateEvicted, prometheus.CounterValue, float64(r.Evictions), r.Route)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
