// Package admin owns the operator surface on admin.listen: GET /status
// (JSON of nodes, their states and counters, VRRP, caches, cron), node
// drain/maintenance/ready, and /healthz for the LB itself. It also keeps
// what the status page charts and lists: History (bounded ring buffers of
// requests/s, errors/s and p99 per node and route class, sampled from the
// counters its request recorders keep beside /metrics, traffic.go) and
// Events (a bounded log fed by the health and vip hooks and by reloads). It listens on
// loopback by default and requires admin.token for writes and for any
// non-loopback address.
package admin
