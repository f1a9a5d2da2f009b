// Package acme keeps the certificates of listen[].tls.acme domains (issue
// 14): obtained from an ACME CA and renewed in the background by certmagic
// (Caddy's ACME engine), kept in a storage both LBs of an HA pair share (a
// directory, or Consul KV), and the answers to the CA's http-01 and
// tls-alpn-01 challenges, including those of orders the peer LB started
// (certmagic's distributed solving reads them from the shared storage).
//
// It owns the certmagic configuration, its certificate cache and the
// per-domain status. It never makes a client wait on the CA: a handshake
// gets a certificate from memory or none (the listener's files then serve),
// and nothing is obtained on demand. It does not bind sockets: the
// balancer's listeners route challenges here.
package acme
