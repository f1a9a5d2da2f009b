// Package mosparoemu runs emulated mosparo nodes for tests, benchmarks and the demo.
//
// A Node is a small fasthttp server that answers the routes a mosparo-aware load balancer
// cares about exactly as mosparo v1.5.4 does, as written down in /work/shared/mosparo/FACTS.md
// (cited by section in comments): the health endpoint with its allow list and proxy-resolved
// client IP (sections 1 and 4), the frontend and HMAC-signed server APIs (2.1, 2.2, 8.1), the
// dynamic CSS resources (5.3), the web cron with its per-node lock (6.1), the setup wizard's
// node-local file sessions (2.8, 3) and the admin UI and static files only as far as routing,
// redirects and response sizes go. Test-only routes under /__ (echo, sleep, status) let
// forwarding tests see what reached the node.
//
// State that real mosparo keeps in its database (submit tokens, submissions) lives in a
// Database, which several nodes may share like a cluster shares its DB; state mosparo keeps on
// the node itself (setup sessions, web-cron schedule, health) is per Node.
//
// Use from tests:
//
//	db := mosparoemu.NewDatabase() // one DB for the cluster, like real nodes share MySQL
//	n1, err := mosparoemu.Start(mosparoemu.Options{Name: "n1", Database: db})
//	...
//	defer n1.Close()
//	n1.SetHealth(mosparoemu.DBFailed) // the LB should take it out
//	n1.Count("verify")                 // requests that reached this node
//
// fasthttp keeps one process-wide goroutine refreshing the Date header; goleak users ignore it
// with goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"). Every
// goroutine of a Node itself is gone shortly (< 100 ms, fasthttp's worker-pool cleaner) after
// Close returns.
//
// The package owns no global state; every Node stops its goroutines in Close. Beyond
// `mosparo-lb demo` and cmd/mosparo-node, production code must not import it: nothing here is
// hardened against hostile input beyond not crashing.
package mosparoemu
