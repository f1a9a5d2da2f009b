// Package balancer owns mosparo-lb's data plane: the fasthttp server and its
// listeners (TLS by SNI, HTTP->HTTPS redirect), the mosparo route classes,
// one pool of nodes per class with its selection policy, request forwarding
// (hop-by-hop and forwarded headers), retries that never duplicate a request
// that may have reached a node, timeouts, JSON error answers and the access
// log, and the atomic swap of a whole runtime on reload.
//
// It does not probe nodes itself: node state comes from package health
// through the small NodeHealth view, and every outcome is reported back so
// health can eject nodes passively.
package balancer
