// Package cron runs mosparo's web cron (/cron-jobs/execute) on exactly one
// healthy node, from exactly one LB of the fleet.
//
// mosparo keeps the web cron's schedule and lock in each node's own temp
// directory (FACTS 6.1, 9.7), so every node behind a balancer would accept
// the call and run cleanup, rule-package refresh and GeoIP download again.
// The LB knows which nodes are up and which LB is active, so it is the
// place to send one call to one node. The package must not run anything on
// every node, and must not go through the public listener, which refuses
// /cron-jobs/execute from outside.
//
// # Which LB
//
// A Leader says whether this LB runs the cron: the VRRP master of
// cron.vrrp_instance, the holder of a Consul session lock (ConsulLock), or
// always when cron.standalone says this LB is the only one. The runner
// polls it (Options.Poll, default 1s). The wiring adapts vip and health to
// the small Leader and Nodes interfaces; this package imports neither.
//
// # Schedule (machine.go)
//
// Machine is a pure state machine: events (leader, follower, tick, done,
// no node) and the time in, "call now" and the next due time out. Rules:
//
//  1. A call starts cron.interval after the previous one ended. Counting
//     from the end is what mosparo does with its own webCronJobInterval
//     (FACTS 6.1 step 6), so with equal intervals the node never answers
//     425 because of a long run.
//  2. A new leader waits a full interval before its first call. It cannot
//     learn when the previous leader last called (nothing is shared
//     between LBs but VRRP adverts or a lock), and waiting is the one
//     choice that never calls twice within an interval. The price: the
//     first run after a takeover or start comes an interval later, and
//     leadership that flaps faster than the interval starves the cron;
//     mosparo's own schedule makes a late run harmless.
//  3. One call at a time; any answer, error or timeout counts as the run of
//     that interval: no retry on another node, because a 5xx or a timeout
//     may have left jobs running there.
//  4. When no node is up, or none accepts a connection, nothing reached a
//     node, so the run is retried every min(interval, 10s) and made as
//     soon as one is; that is still one call per interval.
//
// # Node choice (choose.go)
//
// Only nodes that are Up (not draining, setup or maintenance: their code
// may not match the database, FACTS 1.4). cron.preferred_node first, then
// admin nodes, then the rest, each by name. All LBs with the same view pick
// the same node, so a short split brain sends two calls to one node and
// mosparo's per-node lock answers the second with 425 or 429. A node that
// refuses the connection got nothing, so the next one is tried at once.
//
// # The call (client.go)
//
// GET http://<node address>/cron-jobs/execute?key=<key> on a fresh
// connection, with Host (cron.host, else the node's host:, else its
// address), "User-Agent: mosparo-lb", no X-Forwarded-For (mosparo checks
// its web cron allow list against the LB's own address, FACTS 4), bounded
// by cron.timeout. Answers (outcome.go): 200 done; 425 not due and 429
// busy are fine; 400, 401 and 403 are configuration errors reported in
// Status and the log with their fix (key, webCronJobActive, allow list);
// 5xx, timeouts and broken connections wait for the next interval.
//
// The key is a secret: it lives only in the request target, never in logs,
// Status or errors (error texts are scrubbed of it).
//
// # Wiring
//
// cmd/daemon code, outside this package, decides the Leader from
// configs.Config.CronMode and adapts health (and vip) to Nodes and Leader:
//
//	mode, instance := cfg.CronMode()
//	var leader cron.Leader // nil with standalone: always
//	switch mode {
//	case configs.CronModeVRRP:
//		leader = cron.LeaderFunc(func() bool { return vips.IsMaster(instance) })
//	case configs.CronModeConsul:
//		lock, _ := cron.NewConsulLock(cron.ConsulLockOptions{Address: ..., Token: ...,
//			Key: cfg.Cron.ConsulLock, Holder: hostname, Logger: log})
//		leader = lock // and run lock.Run(ctx) beside the runner
//	}
//	nodes := cron.NodesFunc(func() []cron.Candidate {
//		// one Candidate per checker.Snapshot() entry, Up: s.State == health.Up,
//		// Host from the node's host: setting
//	})
//	r, err := cron.New(cfg.Cron, cron.Options{Logger: log.Named("cron"),
//		Leader: leader, LeaderName: mode + " " + instance, Nodes: nodes})
//	go r.Run(ctx) // Status() for /status and metrics
//
// A test with two LBs (VRRP in network namespaces) needs nothing else: two
// Runners with cron.interval of a second or two, Options.Poll shorter, and
// emulated nodes counting calls.
//
// # Runner
//
// Runner.Run owns one timer and makes the calls synchronously, so there is
// no goroutine to leak; cancelling its context abandons a call in flight.
// Status is a copy for /status and metrics.
package cron
