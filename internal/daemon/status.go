package daemon

import (
	"fmt"
	"maps"
	"time"

	"github.com/mosparo-lb/mosparo-lb/acme"
	"github.com/mosparo-lb/mosparo-lb/admin"
	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/cron"
	"github.com/mosparo-lb/mosparo-lb/cssproxy"
	"github.com/mosparo-lb/mosparo-lb/discovery"
	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/vip"
)

// cronCandidates are the nodes as the cron sees them: health's state plus
// each node's host: setting from the current generation.
func (d *Daemon) cronCandidates() []cron.Candidate {
	snap := d.checker.Snapshot()
	hosts := map[string]string{}
	for _, t := range d.cur.Load().targets {
		hosts[t.Address] = t.Host
	}
	out := make([]cron.Candidate, 0, len(snap))
	for _, s := range snap {
		out = append(out, cron.Candidate{Name: s.Name, Address: s.Address, Host: hosts[s.Address], Admin: s.Admin, Up: s.State == health.Up})
	}
	return out
}

// setNodeState applies an operator action from the admin API or CLI.
func (d *Daemon) setNodeState(name, action string) error {
	s := map[string]health.State{"drain": health.Draining, "maintenance": health.Maintenance, "ready": health.Up}[action]
	if s == 0 {
		return fmt.Errorf("unknown action %q", action)
	}
	return d.checker.SetOperatorState(name, s)
}

// Snapshot is the daemon's state at one moment, read from every part
// once: GET /status serves it as JSON (the status page renders that
// document), and /metrics derives its gauges from it, so the two never
// disagree. JSON names are an interface: the page, `mosparo-lb status` and
// operators' scripts read them.
type Snapshot struct {
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// Listen are the bound public addresses, in listen: order.
	Listen  []string       `json:"listen"`
	Nodes   []NodeSnapshot `json:"nodes"`
	Reloads ReloadStatus   `json:"reloads"`
	// PoolOK: some node can serve. Serving: the data plane accepts on
	// every listener. VRRP's track_pool follows both.
	PoolOK      bool             `json:"pool_ok"`
	Serving     bool             `json:"serving"`
	ClientConns ClientConns      `json:"client_conns"`
	Timestamp   time.Time        `json:"timestamp"`
	CSSCache    *cssproxy.Stats  `json:"css_cache,omitempty"` // nil without css_cache
	Discovery   discovery.Status `json:"discovery"`
	Versions    health.Versions  `json:"versions"`
	// RateLimits: the limited route classes; nil without rate_limits.
	RateLimits []balancer.RateLimitStat `json:"rate_limits,omitempty"`
	VRRP       []vip.InstanceStatus     `json:"vrrp,omitempty"` // nil without vrrp.instances
	Cron       *cron.Status             `json:"cron,omitempty"` // nil when cron is off
	ACME       *acme.Status             `json:"acme,omitempty"` // nil without listen[].tls.acme
	// History feeds the page's charts (nil without admin); Events its list.
	History *admin.HistoryView `json:"history,omitempty"`
	Events  []admin.Event      `json:"events"`
}

// NodeSnapshot is one node: health's view and the data plane's counters.
type NodeSnapshot struct {
	health.NodeStatus
	InFlight int64  `json:"in_flight"`
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
	Queued   int64  `json:"queued"`
	// QueueTimeouts counts requests answered 503 after timeouts.queue.
	QueueTimeouts uint64 `json:"queue_timeouts"`
}

// ClientConns are the public listeners' client connections: open now, and
// closed at accept by limits.max_conns and max_conns_per_ip.
type ClientConns struct {
	Open            int    `json:"open"`
	RefusedMaxConns uint64 `json:"refused_max_conns"`
	RefusedPerIP    uint64 `json:"refused_max_conns_per_ip"`
	// Closed on proxy_protocol listeners: a peer outside from:, or no
	// valid PROXY header in time.
	RefusedProxyPeer   uint64 `json:"refused_proxy_protocol_from"`
	RefusedProxyHeader uint64 `json:"refused_proxy_protocol_header"`
	// HTTP/2 (issue 14): open h2 connections, those closed for rapid
	// reset, and requests by protocol.
	H2Open        int64  `json:"http2_open"`
	H2RapidResets uint64 `json:"http2_rapid_reset_closed"`
	RequestsH1    uint64 `json:"requests_h1"`
	RequestsH2    uint64 `json:"requests_h2"`
}

// Snapshot reads every part of the current generation.
func (d *Daemon) Snapshot() Snapshot {
	d.mu.Lock()
	rl := d.reload
	d.mu.Unlock()
	g := d.cur.Load()
	cs := d.srv.ConnStats()
	h2 := d.srv.HTTP2Stats()
	s := Snapshot{
		Version: d.opts.Version,
		Started: d.started.UTC(),
		Listen:  d.srv.Addrs(),
		Nodes:   d.nodeSnapshots(d.srv.NodeStats()),
		Reloads: rl,
		PoolOK:  d.checker.PoolHealthy(),
		Serving: d.srv.Healthy(),
		ClientConns: ClientConns{Open: cs.Open, RefusedMaxConns: cs.RefusedTotal, RefusedPerIP: cs.RefusedPerIP,
			RefusedProxyPeer: cs.RefusedProxyPeer, RefusedProxyHeader: cs.RefusedProxyHeader,
			H2Open: h2.Conns, H2RapidResets: h2.RapidResets, RequestsH1: h2.RequestsH1, RequestsH2: h2.RequestsH2},
		Timestamp:  d.opts.Clock.Now().UTC(),
		Discovery:  g.disc.Status(),
		Versions:   d.checker.Versions(),
		RateLimits: d.srv.RateLimitStats(),
	}
	if g.css != nil {
		st := g.css.Stats()
		s.CSSCache = &st
	}
	if g.vips != nil {
		s.VRRP = g.vips.Status()
	}
	if g.cron != nil {
		st := g.cron.Status()
		s.Cron = &st
	}
	if g.acme != nil {
		st := g.acme.Status()
		s.ACME = &st
	}
	if d.history != nil {
		v := d.history.View()
		s.History = &v
	}
	s.Events = d.events.List()
	return s
}

func (d *Daemon) nodeSnapshots(stats []balancer.NodeStat) []NodeSnapshot {
	snap := d.checker.Snapshot()
	byAddr := map[string]balancer.NodeStat{}
	for _, s := range stats {
		byAddr[s.Address] = s
	}
	out := make([]NodeSnapshot, 0, len(snap))
	for _, ns := range snap {
		s := byAddr[ns.Address]
		out = append(out, NodeSnapshot{NodeStatus: ns, InFlight: s.InFlight, Requests: s.Requests, Failures: s.Failures,
			Queued: s.Queued, QueueTimeouts: s.QueueTimeouts})
	}
	return out
}

// gauges are the scrape-time metrics of s.
func (s *Snapshot) gauges() admin.Gauges {
	out := admin.Gauges{PoolHealthy: s.PoolOK, Reloads: uint64(s.Reloads.Count), ReloadFailures: uint64(s.Reloads.Failures),
		VersionsMixed: s.Versions.Mixed,
		ClientConns: &admin.ClientConnGauge{Open: int64(s.ClientConns.Open), RefusedMaxConns: s.ClientConns.RefusedMaxConns,
			RefusedIP: s.ClientConns.RefusedPerIP, RefusedProxyPeer: s.ClientConns.RefusedProxyPeer,
			RefusedProxyHeader: s.ClientConns.RefusedProxyHeader, H2Open: s.ClientConns.H2Open,
			H2RapidResets: s.ClientConns.H2RapidResets, RequestsH1: s.ClientConns.RequestsH1, RequestsH2: s.ClientConns.RequestsH2}}
	for _, n := range s.Nodes {
		out.Nodes = append(out.Nodes, admin.NodeGauge{Name: n.Name, State: n.State, InFlight: n.InFlight,
			Ejections: n.Ejections, Weight: n.EffectiveWeight, Queued: n.Queued, QueueTimeouts: n.QueueTimeouts,
			Version: n.Version.String()})
	}
	if st := s.CSSCache; st != nil {
		out.CSS = &admin.CSSGauge{Hits: st.Hits - st.Redirects - st.NotModified, Redirects: st.Redirects, NotModified: st.NotModified,
			Misses: st.Misses, Errors: st.Errors, Entries: int64(st.Entries), Bytes: st.Bytes,
			Reachable: st.Reachable, CoherenceChecks: st.CoherenceChecks, Disagreements: st.Disagreements,
			Disagreeing: int64(st.Disagreeing)}
	}
	for _, in := range s.VRRP {
		out.VRRP = append(out.VRRP, admin.VRRPGauge{Instance: in.Name, State: in.State, Priority: in.EffectivePriority, Transitions: uint64(in.Transitions),
			OtherVersionAdverts: in.OtherVersionAdverts, AuthFailures: in.AuthFailures})
	}
	if s.Cron != nil {
		out.Cron = &admin.CronGauge{Runs: maps.Clone(s.Cron.Outcomes)}
	}
	if s.ACME != nil {
		for _, d := range s.ACME.Domains {
			out.ACME = append(out.ACME, admin.ACMEGauge{Domain: d.Domain, NotAfter: d.NotAfter, Obtained: d.Obtained, Failures: d.Failures, OCSPStapled: d.OCSPStapled})
		}
	}
	for _, r := range s.RateLimits {
		out.RateLimits = append(out.RateLimits, admin.RateLimitGauge{Route: r.Route, Limited: r.Limited, Evictions: r.Evictions,
			Entries: r.Entries, Capacity: r.Capacity})
	}
	return out
}
