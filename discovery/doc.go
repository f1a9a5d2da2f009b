// Package discovery owns the set of mosparo nodes the balancer may use: the
// static nodes of the YAML file plus, when discovery.consul is configured,
// the passing instances of a Consul service, found with blocking queries on
// /v1/health/service/<name>?passing (consul/FACTS.md).
//
// A Source merges both (static first, a static node winning over a Consul
// instance with the same address), publishes each change of the merged set
// on a coalescing channel, and reports its health for /status. It must not
// drop known nodes when Consul is unreachable: an outage keeps the last
// answered set and shows only in Status. Optionally the Source also keeps the
// LB itself registered in the same agent, with an HTTP check on its admin
// listener.
//
// It does not probe nodes (package health does) nor route requests (package
// balancer does).
package discovery
