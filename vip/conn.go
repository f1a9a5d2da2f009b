package vip

import (
	"crypto/subtle"
	"errors"
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

// Drop reasons the runner counts (DropError.Reason).
const (
	dropOtherVersion = "other VRRP version"
	dropAuth         = "authentication mismatch"
)

// connConfig says how an instance's advert socket is set up.
type connConfig struct {
	ifi   *net.Interface
	vrid  uint8
	src   netip.Addr   // our source address: primary IPv4 or link-local IPv6, or unicast_src_ip
	peers []netip.Addr // unicast peers; empty = multicast

	// version spoken; adverts of the other one are dropped. In version 2
	// the receiver also insists on its own auth and advert interval.
	version  Version
	auth     AuthType
	authData [authDataLen]byte
	interval Centiseconds
}

// acceptV2 is RFC 3768 7.1's authentication and interval checks (with
// keepalived's PASS): nil, or why a version 2 advert is dropped. The
// password never appears in the reason.
func (c *connConfig) acceptV2(a *Advertisement) *DropError {
	switch {
	case a.AuthType != c.auth:
		return &DropError{Reason: dropAuth, Err: fmt.Errorf("auth type %s, want %s", a.AuthType, c.auth)}
	case c.auth == AuthPass && subtle.ConstantTimeCompare(a.AuthData[:], c.authData[:]) != 1:
		return &DropError{Reason: dropAuth, Err: errors.New("wrong PASS password")}
	case a.MaxAdvertInterval != c.interval:
		// A v2 backup does not adopt the master's interval (RFC 3768 7.1).
		return &DropError{Reason: "advert interval mismatch", Err: fmt.Errorf("%s, want %s", a.MaxAdvertInterval.Duration(), c.interval.Duration())}
	}
	return nil
}

// vipAddr is one virtual address on one device.
type vipAddr struct {
	prefix netip.Prefix
	dev    string
	label  string
}
