// Package admin owns the operator surface on admin.listen: GET /status
// (JSON of nodes, their states and counters, VRRP, caches, cron), node
// drain/maintenance/ready, and /healthz for the LB itself. It listens on
// loopback by default and requires admin.token for writes and for any
// non-loopback address.
package admin
