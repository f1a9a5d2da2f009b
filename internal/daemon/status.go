package daemon

import (
	"fmt"

	"github.com/mosparo-lb/mosparo-lb/admin"
	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/cron"
	"github.com/mosparo-lb/mosparo-lb/health"
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

// nodeView is one node in /status: health's view and the data plane's counters.
type nodeView struct {
	health.NodeStatus
	InFlight int64  `json:"in_flight"`
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
	Queued   int64  `json:"queued"`
	// QueueTimeouts counts requests answered 503 after timeouts.queue.
	QueueTimeouts uint64 `json:"queue_timeouts"`
}

func (d *Daemon) nodeStatus(stats []balancer.NodeStat) any {
	snap := d.checker.Snapshot()
	byAddr := map[string]balancer.NodeStat{}
	for _, s := range stats {
		byAddr[s.Address] = s
	}
	out := make([]nodeView, 0, len(snap))
	for _, ns := range snap {
		s := byAddr[ns.Address]
		out = append(out, nodeView{NodeStatus: ns, InFlight: s.InFlight, Requests: s.Requests, Failures: s.Failures,
			Queued: s.Queued, QueueTimeouts: s.QueueTimeouts})
	}
	return out
}

// gauges is what /metrics reads of the components at scrape time.
func (d *Daemon) gauges() admin.Gauges {
	d.mu.Lock()
	rl := d.reload
	d.mu.Unlock()
	g := d.cur.Load()
	byAddr := map[string]balancer.NodeStat{}
	for _, s := range d.srv.NodeStats() {
		byAddr[s.Address] = s
	}
	out := admin.Gauges{PoolHealthy: d.checker.PoolHealthy(), Reloads: uint64(rl.Count), ReloadFailures: uint64(rl.Failures)}
	for _, ns := range d.checker.Snapshot() {
		s := byAddr[ns.Address]
		out.Nodes = append(out.Nodes, admin.NodeGauge{Name: ns.Name, State: ns.State.String(), InFlight: s.InFlight,
			Ejections: ns.Ejections, Weight: ns.EffectiveWeight, Queued: s.Queued, QueueTimeouts: s.QueueTimeouts})
	}
	if g.css != nil {
		st := g.css.Stats()
		out.CSS = &admin.CSSGauge{Hits: st.Hits - st.Redirects - st.NotModified, Redirects: st.Redirects, NotModified: st.NotModified,
			Misses: st.Misses, Errors: st.Errors, Entries: int64(st.Entries), Bytes: st.Bytes,
			Reachable: st.Reachable, CoherenceChecks: st.CoherenceChecks, Disagreements: st.Disagreements,
			Disagreeing: int64(st.Disagreeing)}
	}
	if g.vips != nil {
		for _, in := range g.vips.Status() {
			out.VRRP = append(out.VRRP, admin.VRRPGauge{Instance: in.Name, State: in.State, Priority: in.EffectivePriority, Transitions: uint64(in.Transitions),
				OtherVersionAdverts: in.OtherVersionAdverts, AuthFailures: in.AuthFailures})
		}
	}
	if g.cron != nil {
		runs := map[string]uint64{}
		for outcome, n := range g.cron.Status().Outcomes {
			runs[outcome] = uint64(n)
		}
		out.Cron = &admin.CronGauge{Runs: runs}
	}
	cs := d.srv.ConnStats()
	out.ClientConns = &admin.ClientConnGauge{Open: int64(cs.Open), RefusedMaxConns: cs.RefusedTotal, RefusedIP: cs.RefusedPerIP}
	return out
}
