package balancer

// NodeStat is one node's data-plane counters, for /status.
type NodeStat struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Admin    bool   `json:"admin"`
	Weight   int    `json:"weight"`
	InFlight int64  `json:"in_flight"`
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
	// Queued is how many requests wait for a connection to the node now
	// (in flight beyond limits.max_conns_per_node).
	Queued int64 `json:"queued"`
	// QueueTimeouts counts requests answered 503 after timeouts.queue.
	QueueTimeouts uint64 `json:"queue_timeouts"`
}

// NodeStats returns the current runtime's per-node counters. Counters start
// again from zero when a reload builds a new runtime.
func (s *Server) NodeStats() []NodeStat {
	rt := s.rt.Load()
	out := make([]NodeStat, 0, len(rt.nodes))
	for _, u := range rt.nodes {
		// Each failure and queue timeout is counted after its request,
		// so reading them first keeps them within Requests; Queued comes
		// from the same in-flight count as InFlight.
		failures, queueTimeouts := u.failures.Load(), u.queueTimeouts.Load()
		inflight := u.inflight.Load()
		out = append(out, NodeStat{
			Name: u.name, Address: u.addr, Admin: u.admin, Weight: u.weight,
			InFlight: inflight, Requests: u.requests.Load(), Failures: failures,
			Queued: max(inflight-u.maxConns, 0), QueueTimeouts: queueTimeouts,
		})
	}
	return out
}
