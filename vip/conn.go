package vip

import (
	"fmt"
	"net"
	"net/netip"
)

// DropError is a received packet that was not a valid advert for us; the
// runner logs it with rate limiting and reads on.
type DropError struct {
	From   netip.Addr
	Reason string
	Err    error
}

func (e *DropError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("vip: dropped packet from %s: %s: %v", e.From, e.Reason, e.Err)
	}
	return fmt.Sprintf("vip: dropped packet from %s: %s", e.From, e.Reason)
}

func (e *DropError) Unwrap() error { return e.Err }

// connConfig says how an instance's advert socket is set up.
type connConfig struct {
	ifi   *net.Interface
	vrid  uint8
	src   netip.Addr   // our source address: primary IPv4 or link-local IPv6, or unicast_src_ip
	peers []netip.Addr // unicast peers; empty = multicast
}

// vipAddr is one virtual address on one device.
type vipAddr struct {
	prefix netip.Prefix
	dev    string
	label  string
}
