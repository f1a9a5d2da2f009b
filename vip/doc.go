// Package vip moves the virtual IPs between load-balancer hosts with VRRPv3
// (RFC 5798) or, per instance, VRRPv2 (RFC 3768, with keepalived's PASS
// authentication), as a drop-in replacement for keepalived (vrrp/FACTS.md).
//
// It owns the advertisement codec (packet.go, checksum.go), the pure state
// machine and its timers (state.go, timers.go), the raw IP protocol 112
// sockets (conn_linux.go), the virtual addresses via netlink (addr_linux.go),
// gratuitous ARP and unsolicited neighbour advertisements (garp.go), the
// notify hooks (notify.go), the runners (instance.go, manager.go), the
// machine they act on behind the Host interface (host.go: the real one, or
// a fake so that the runner is tested without root), and the handovers of
// instances to a reloaded configuration (handover.go) and to an upgraded
// process (upgrade.go). The keepalived.conf importer is package
// internal/keepalivedconf.
//
// It must not block or slow the data plane: the balancer listens on the VIPs
// with IP_FREEBIND and never waits for this package.
package vip
