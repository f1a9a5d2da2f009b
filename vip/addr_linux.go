package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkTimeout bounds one request on an instance's netlink socket, as
// the netlink package bounds its one-shot sockets (nl.SocketTimeoutTv):
// the kernel answers at once, but a run loop must never hang on it.
const netlinkTimeout = time.Minute

// netlinkSocket is an instance's netlink socket: one netlink.Handle for
// NETLINK_ROUTE, opened when the instance starts. The package-level
// netlink functions open a socket per call, so an LB out of descriptors
// could not remove its VIP (issue 13); every request here reuses this one.
type netlinkSocket struct {
	h *netlink.Handle
}

func openNetlink() (*netlinkSocket, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("set netlink socket timeout: %w", err)
	}
	return &netlinkSocket{h: h}, nil
}

func (s *netlinkSocket) addrs(vips []vipAddr) addrSet { return &netlinkAddrs{h: s.h, vips: vips} }

// linkUp reports whether the named link is up and has carrier; false when
// it cannot be read.
func (s *netlinkSocket) linkUp(name string) bool {
	l, err := s.h.LinkByName(name)
	if err != nil {
		return false
	}
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_RUNNING != 0
}

func (s *netlinkSocket) close() error {
	s.h.Close()
	return nil
}

// netlinkAddrs adds and removes an instance's VIPs with netlink, like
// keepalived: plain addresses on the real interface (FACTS 1.6), IPv6 ones
// without duplicate address detection so they work at once. Each device is
// looked up by name on every call (it may have been recreated with another
// index), over the instance's socket like the rest.
type netlinkAddrs struct {
	h    *netlink.Handle
	vips []vipAddr
}

func (a *netlinkAddrs) nlAddr(v vipAddr) (netlink.Link, *netlink.Addr, error) {
	link, err := a.h.LinkByName(v.dev)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", v.dev, err)
	}
	na := &netlink.Addr{IPNet: &net.IPNet{IP: v.prefix.Addr().AsSlice(), Mask: net.CIDRMask(v.prefix.Bits(), v.prefix.Addr().BitLen())}, Label: v.label}
	if v.prefix.Addr().Is6() {
		na.Flags = unix.IFA_F_NODAD
	}
	return link, na, nil
}

// add puts every VIP on its device; present ones are left alone.
func (a *netlinkAddrs) add() error {
	var errs []error
	for _, v := range a.vips {
		link, na, err := a.nlAddr(v)
		if err == nil {
			err = a.h.AddrAdd(link, na)
			if errors.Is(err, syscall.EEXIST) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add %s to %s: %w", v.prefix, v.dev, err))
		}
	}
	return errors.Join(errs...)
}

// remove deletes every VIP; absent ones are not an error. It is also the
// stale-VIP cleanup at start-up (FACTS 2, 5: a crashed master leaves them).
func (a *netlinkAddrs) remove() error {
	var errs []error
	for _, v := range a.vips {
		link, na, err := a.nlAddr(v)
		if err == nil {
			err = a.h.AddrDel(link, na)
			if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", v.prefix, v.dev, err))
		}
	}
	return errors.Join(errs...)
}

// watchDeleted calls deleted (from the watcher goroutine) for every VIP of
// ours that someone removes, until ctx ends (FACTS 3.7: network managers
// remove foreign addresses). It returns once the subscription is set up;
// the subscription has a socket of its own, opened here, at start.
func (a *netlinkAddrs) watchDeleted(ctx context.Context, deleted func(netip.Addr), onErr func(error)) (wait func(), err error) {
	ours := map[netip.Addr]bool{}
	for _, v := range a.vips {
		ours[v.prefix.Addr()] = true
	}
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return nil, fmt.Errorf("subscribe to address updates: %w", err)
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-ctx.Done():
				close(done)
				for range ch { // netlink closes ch once its receiver ends
				}
				return
			case u, ok := <-ch:
				if !ok {
					<-ctx.Done()
					close(done)
					return
				}
				ip, _ := netip.AddrFromSlice(u.LinkAddress.IP)
				if ip = ip.Unmap(); !u.NewAddr && ours[ip] {
					deleted(ip)
				}
			}
		}
	}()
	return func() { <-finished }, nil
}

// primaryAddr is the address adverts come from: the first primary IPv4
// address of ifi that is not one of our VIPs, or its IPv6 link-local one
// (RFC 5798 5.1.1.1, 5.1.2.1). Only starting an instance asks, so its
// one-shot netlink sockets are fine: starting may need descriptors, giving
// the VIPs up must not.
func primaryAddr(ifi *net.Interface, is6 bool, vips []vipAddr) (netip.Addr, error) {
	link, err := netlink.LinkByIndex(ifi.Index)
	if err != nil {
		return netip.Addr{}, err
	}
	family := netlink.FAMILY_V4
	if is6 {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(link, family)
	if err != nil {
		return netip.Addr{}, err
	}
	isVIP := func(ip netip.Addr) bool {
		for _, v := range vips {
			if v.prefix.Addr() == ip {
				return true
			}
		}
		return false
	}
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		ip = ip.Unmap()
		switch {
		case isVIP(ip):
		case is6 && ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0:
			return ip, nil
		case !is6 && a.Flags&unix.IFA_F_SECONDARY == 0:
			return ip, nil
		}
	}
	kind := "primary IPv4"
	if is6 {
		kind = "usable link-local IPv6"
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no %s address", ifi.Name, kind)
}
