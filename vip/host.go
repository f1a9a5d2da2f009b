package vip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/clock"
)

// Host is the machine an instance acts on: its advert socket, its netlink
// socket (virtual addresses, links) and its gratuitous ARPs. Options.Host nil is the real
// host (raw IP protocol 112 sockets, netlink, ARP and NDP); the methods are
// unexported because only this package's real host and the fakes of its
// tests implement them, so that instance.run is tested without root.
type Host interface {
	// open resolves the interface and our source address (c.src, when
	// valid, is unicast_src_ip) and opens the advert socket.
	open(ifname string, is6 bool, vips []vipAddr, c connConfig) (instanceConn, netip.Addr, error)
	// netlink opens the socket an instance manages its addresses and
	// polls its links with, from start to stop.
	netlink() (linkSocket, error)
	// announcer tells the link that we hold vips.
	announcer(vips []vipAddr) announcer
}

// linkSocket is one instance's netlink socket, held for its whole run so
// that giving the VIPs up needs no new file descriptor: an LB that has run
// out of them (EMFILE) must still be able to let go (issue 13).
type linkSocket interface {
	// addrs manages vips on their devices through this socket.
	addrs(vips []vipAddr) addrSet
	// linkUp reports whether the named link is up with carrier.
	linkUp(name string) bool
	close() error
}

// addrSet adds and removes a set of virtual addresses and watches for
// someone else removing them (addr_linux.go). Adding and removing use the
// linkSocket it came from; the watch opens its own subscription when it
// starts.
type addrSet interface {
	add() error
	remove() error
	watchDeleted(ctx context.Context, deleted func(netip.Addr), onErr func(error)) (wait func(), err error)
}

// announcer sends gratuitous ARPs and unsolicited neighbour
// advertisements (garp.go).
type announcer interface {
	prepare()
	announce(ctx context.Context, rounds int, interval time.Duration, keep func() bool) error
	close()
}

// TimerClock is a Clock that also makes the runners' timers. When
// Options.Clock is one, the instances' timers follow it (tests drive them
// with a fake clock); otherwise they run in real time.
type TimerClock interface {
	clock.Clock
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the runner uses.
type Timer interface {
	Chan() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

type realHost struct{}

func (realHost) open(ifname string, is6 bool, vips []vipAddr, c connConfig) (instanceConn, netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if !c.src.IsValid() {
		if c.src, err = primaryAddr(ifi, is6, vips); err != nil {
			return nil, netip.Addr{}, err
		}
	}
	c.ifi = ifi
	conn, err := openConn(c)
	return conn, c.src, err
}

func (realHost) netlink() (linkSocket, error)       { return openNetlink() }
func (realHost) announcer(vips []vipAddr) announcer { return newAnnouncer(vips) }

type realTimer struct{ *time.Timer }

func (t realTimer) Chan() <-chan time.Time { return t.C }

// newTimer makes a runner timer on the options' clock.
func (in *instance) newTimer(d time.Duration) Timer {
	if tc, ok := in.opts.Clock.(TimerClock); ok {
		return tc.NewTimer(d)
	}
	return realTimer{time.NewTimer(d)}
}

// Interface guards.
var (
	_ Host       = realHost{}
	_ linkSocket = (*netlinkSocket)(nil)
	_ addrSet    = (*netlinkAddrs)(nil)
	_ announcer  = (*garpAnnouncer)(nil)
)
