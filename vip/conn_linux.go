package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// tosInternetControl is IPv4 precedence "internetwork control", as
// keepalived sends adverts (FACTS 1.1); the IPv6 traffic class likewise.
const tosInternetControl = 0xc0

// rawConn is one instance's IP protocol 112 socket (FACTS 6): multicast with
// IP_MULTICAST_IF set explicitly and loopback off, or unicast to each peer
// with the checksum computed per destination.
type rawConn struct {
	cfg connConfig
	p4  *ipv4.PacketConn
	p6  *ipv6.PacketConn
	pc  net.PacketConn
	buf []byte
}

func openConn(cfg connConfig) (instanceConn, error) {
	c := &rawConn{cfg: cfg, buf: make([]byte, 1500)}
	var err error
	if cfg.src.Is4() {
		err = c.open4()
	} else {
		err = c.open6()
	}
	if err != nil {
		if c.pc != nil {
			c.pc.Close()
		}
		return nil, err
	}
	return c, nil
}

func (c *rawConn) open4() error {
	pc, err := net.ListenPacket("ip4:112", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("open ip4:112: %w", err)
	}
	c.pc = pc
	p := ipv4.NewPacketConn(pc)
	c.p4 = p
	steps := []error{
		p.SetMulticastInterface(c.cfg.ifi),
		p.SetMulticastTTL(255),
		p.SetTTL(255),
		p.SetTOS(tosInternetControl),
		p.SetMulticastLoopback(false),
		p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagSrc|ipv4.FlagDst|ipv4.FlagInterface, true),
	}
	if len(c.cfg.peers) == 0 {
		steps = append(steps, p.JoinGroup(c.cfg.ifi, &net.IPAddr{IP: group4.AsSlice()}))
	}
	if err := errors.Join(steps...); err != nil {
		return fmt.Errorf("set up ip4:112 on %s: %w", c.cfg.ifi.Name, err)
	}
	return nil
}

func (c *rawConn) open6() error {
	pc, err := net.ListenPacket("ip6:112", "::")
	if err != nil {
		return fmt.Errorf("open ip6:112: %w", err)
	}
	c.pc = pc
	p := ipv6.NewPacketConn(pc)
	c.p6 = p
	steps := []error{
		p.SetMulticastInterface(c.cfg.ifi),
		p.SetMulticastHopLimit(255),
		p.SetHopLimit(255),
		p.SetTrafficClass(tosInternetControl),
		p.SetMulticastLoopback(false),
		p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagSrc|ipv6.FlagDst|ipv6.FlagInterface, true),
	}
	if len(c.cfg.peers) == 0 {
		steps = append(steps, p.JoinGroup(c.cfg.ifi, &net.IPAddr{IP: group6.AsSlice()}))
	}
	if err := errors.Join(steps...); err != nil {
		return fmt.Errorf("set up ip6:112 on %s: %w", c.cfg.ifi.Name, err)
	}
	return nil
}

// send transmits a to the group, or to every unicast peer.
func (c *rawConn) send(a *Advertisement) error {
	dsts := c.cfg.peers
	if len(dsts) == 0 {
		dsts = []netip.Addr{group4}
		if c.p6 != nil {
			dsts = []netip.Addr{group6}
		}
	}
	var errs []error
	for _, dst := range dsts {
		b, err := a.Encode(c.cfg.src, dst)
		if err != nil {
			return err
		}
		if c.p4 != nil {
			cm := &ipv4.ControlMessage{Src: c.cfg.src.AsSlice(), IfIndex: c.cfg.ifi.Index}
			_, err = c.p4.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice()})
		} else {
			cm := &ipv6.ControlMessage{Src: c.cfg.src.AsSlice(), IfIndex: c.cfg.ifi.Index, HopLimit: 255, TrafficClass: tosInternetControl}
			_, err = c.p6.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: c.cfg.ifi.Name})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("send advert to %s: %w", dst, err))
		}
	}
	return errors.Join(errs...)
}

// recv blocks for the next packet and returns it when it is a valid advert
// of our VRID from another router; anything else is a *DropError (receive
// checks of RFC 5798 7.1, FACTS 1.5). Other errors mean the socket is gone.
func (c *rawConn) recv() (*Advertisement, netip.Addr, error) {
	var (
		n       int
		ttl     int
		ifindex int
		srcIP   net.IP
		dstIP   net.IP
		err     error
		from    net.Addr
	)
	if c.p4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, from, err = c.p4.ReadFrom(c.buf)
		if cm != nil {
			ttl, ifindex, srcIP, dstIP = cm.TTL, cm.IfIndex, cm.Src, cm.Dst
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, from, err = c.p6.ReadFrom(c.buf)
		if cm != nil {
			ttl, ifindex, srcIP, dstIP = cm.HopLimit, cm.IfIndex, cm.Src, cm.Dst
		}
	}
	if err != nil {
		return nil, netip.Addr{}, err
	}
	if srcIP == nil {
		if ia, ok := from.(*net.IPAddr); ok {
			srcIP = ia.IP
		}
	}
	src, _ := netip.AddrFromSlice(srcIP)
	dst, _ := netip.AddrFromSlice(dstIP)
	src, dst = src.Unmap(), dst.Unmap()
	drop := func(reason string, err error) (*Advertisement, netip.Addr, error) {
		return nil, src, &DropError{From: src, Reason: reason, Err: err}
	}
	switch {
	case ifindex != c.cfg.ifi.Index:
		return drop("other interface", nil)
	case src == c.cfg.src:
		return drop("own advert", nil)
	case len(c.cfg.peers) > 0 && !slices.Contains(c.cfg.peers, src):
		return drop("not a unicast peer", nil) // keepalived's check_unicast_src
	case len(c.cfg.peers) == 0 && ttl != 255:
		// On-link proof (RFC 5798 7.1); unicast peers may be routed (FACTS 1.1).
		return drop(fmt.Sprintf("TTL %d, want 255", ttl), nil)
	}
	a, err := Decode(c.buf[:n], src, dst)
	if err != nil {
		return drop("invalid advert", err)
	}
	if a.VRID != c.cfg.vrid {
		return drop("other VRID", nil)
	}
	if a.Version != c.cfg.version {
		return drop(dropOtherVersion, fmt.Errorf("VRRPv%d advert, this instance speaks VRRPv%d", a.Version, c.cfg.version))
	}
	if a.Version == Version2 {
		if de := c.cfg.acceptV2(a); de != nil {
			de.From = src
			return nil, src, de
		}
	}
	return a, src, nil
}

func (c *rawConn) close() error { return c.pc.Close() }
