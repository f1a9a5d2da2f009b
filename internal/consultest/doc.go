// Package consultest is an in-process fake of the Consul agent HTTP API for
// tests of mosparo-lb's discovery. It serves the endpoints and semantics
// recorded in ../shared/consul/FACTS.md (observed against a real Consul 1.14
// dev agent), because no Consul binary can be installed here:
//
//   - PUT /v1/agent/service/register and /deregister/<ID>, 200 with an empty body;
//     a check starts critical unless Status is given;
//   - TTL checks that expire to critical with Output "TTL expired", HTTP checks
//     that the fake runs itself, /v1/agent/check/pass|warn|fail|update/<CheckID>;
//   - service maintenance (_service_maintenance:<ID>) and node maintenance;
//   - GET /v1/health/service/<name> (passing, tag, dc) and
//     /v1/catalog/service/<name> with X-Consul-Index and the other headers,
//     blocking on index+wait, returning at wait plus up to wait/16 of jitter
//     with the same index when nothing changed, 400 on a malformed index;
//   - filter=Checks.Status (==|!=) <status>, matching if any check matches
//     (the trap FACTS.md records); other filters are refused with a 400;
//   - an optional ACL token (X-Consul-Token) and a request log, so tests can
//     assert what a client sent and count its requests;
//   - Stop and Start on the same address, and Reset to send the index backwards.
//   - for certstore (issue 14, from Consul's documentation, not FACTS.md):
//     KV get/put/delete with ?recurse, ?keys&separator, flags, cas, blocking
//     reads, the 512 KiB value limit (413), and sessions (create, renew,
//     destroy, info, list) with TTL invalidation after twice the TTL,
//     acquire/release, lock-delay and the release/delete behaviours. A
//     session's node checks are not modelled: InvalidateSession stands in.
//
// Time comes from a clock.Clock; clocktest.Manual lets a test expire TTLs and blocking
// waits without sleeping. It must not grow behaviour FACTS.md does not
// record without saying so in a comment.
package consultest
