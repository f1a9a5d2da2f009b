// Package health owns the state of every mosparo node: up, down, draining,
// setup and maintenance, plus the slow-start weight ramp. It runs active
// checks against mosparo's own health API, ejects nodes passively from the
// outcomes of live traffic, and keeps the operator's drain and maintenance.
//
// It must not know about HTTP routing: which route classes a state may
// serve is the balancer's decision; this package only exposes the state.
//
// # Verdicts (FACTS 1.4)
//
// The probe is GET health.path (default /api/v1/health/check) on a fresh
// connection, with the node's Host, "User-Agent: mosparo-lb", "Accept:
// application/json" and no X-Forwarded-* header, bounded by health.timeout.
//
//   - 200 with "databaseStatus":"connected" and "healthy":true: good (Up).
//   - 200 "test-skipped__update-not-finished": Draining.
//   - 200 "test-skipped__not-configured": Setup.
//   - 200 "bypassed": bad unless health.trust_bypassed (it tests nothing).
//   - 404: bad, with a reason naming MOSPARO_HEALTH_ALLOW_LIST and
//     TRUSTED_PROXIES (the node refused the LB's address).
//   - 500, any other status, a timeout, a refused connection, or a body that
//     is not mosparo's JSON answer: bad (Down).
//
// # Rise, fall and schedule
//
// Leaving Down takes health.rise consecutive alive answers (Up, Draining or
// Setup; the latest one is the new state); going Down takes health.fall
// consecutive bad ones. Moving between Up, Draining and Setup takes one
// answer: those are mosparo's own statements, not noisy signals. Checks
// run every health.interval, every fast_interval while a node changes
// state or is ejected, every down_interval while it is settled down; each
// delay is shortened by a random part of health.jitter, so the time to
// notice a dead node stays within interval*fall + timeout.
//
// # Initial state
//
// A node is probed as soon as it is added, and its first answer is believed
// at once in either direction (rise and fall only guard against flapping
// of a node already judged). Until that answer:
//
//   - when no other node is Up, which is the case when the LB starts, the
//     node is Up, so a freshly started or restarted LB serves at once
//     instead of answering 503 for rise*interval; a dead node is Down
//     after one timeout, and the balancer's connect retries cover the gap;
//   - otherwise (a node added by discovery or a reload while others serve)
//     it is Down, and gets traffic only after answering healthy, with a
//     slow-start ramp.
//
// Slow start ramps the weight whenever a node becomes Up after being in any
// other state; never for nodes Up from the start.
//
// # Passive detection
//
// health.passive.consecutive_failures requests in a row that never reached
// the node, timed out or got a 5xx eject it for base_ejection times the
// number of recent ejections, capped at max_ejection. At most
// max_ejected_percent of the pool is ejected at once (one node always may
// be), and never the last Up node. A good active check begun after the
// ejection ends it early, as in Envoy; an ejected node is checked at the
// fast interval.
//
// # Operator
//
// SetOperatorState puts a node into Maintenance or Draining, or back
// ("ready"). The operator state is kept by address across SetTargets, so it
// survives reloads; checks go on underneath.
//
// # Code version (version.go, versions.go)
//
// After a check whose verdict is alive and differs from the last one, and
// every health.version.every checks, the node's code version is
// fingerprinted without PHP: a hash of the files /build/entrypoints.json
// names, fetched conditionally over fresh connections and bounded by
// health.version.timeout. The fingerprint follows its check's verdict as a
// result of its own, so a slow or hostile answer never delays health
// detection. A failed fingerprint is unknown (zero) with a reason; a down
// node keeps its last one. Node.Version is one atomic load for the
// balancer; Versions tells whether the nodes run different versions,
// logged once per change.
//
// # Concurrency
//
// Node.State, Node.Weight and Node.Observe are the data plane's hot path:
// atomics only, no allocation. Everything else goes through the Checker's
// mutex. Each node's decisions are made by a pure state machine (machine.go)
// fed with explicit times; Run owns the timers and the probe goroutines.
package health
