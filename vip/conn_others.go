//go:build !linux

package vip

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// errUnsupported: VRRP needs Linux raw sockets and netlink.
var errUnsupported = errors.New("vip: VRRP is only supported on Linux")

func openConn(connConfig) (instanceConn, error) { return nil, errUnsupported }

type netlinkSocket struct{}

func openNetlink() (*netlinkSocket, error) { return nil, errUnsupported }

func (*netlinkSocket) addrs(vips []vipAddr) addrSet { return &netlinkAddrs{vips: vips} }
func (*netlinkSocket) linkUp(string) bool           { return false }
func (*netlinkSocket) close() error                 { return nil }

type netlinkAddrs struct{ vips []vipAddr }

func (a *netlinkAddrs) add() error    { return errUnsupported }
func (a *netlinkAddrs) remove() error { return nil }
func (a *netlinkAddrs) watchDeleted(context.Context, func(netip.Addr), func(error)) (func(), error) {
	return nil, errUnsupported
}

func primaryAddr(*net.Interface, bool, []vipAddr) (netip.Addr, error) {
	return netip.Addr{}, errUnsupported
}
