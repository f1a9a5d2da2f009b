package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// GARPConfig paces announcements (keepalived's garp_master_* knobs).
type GARPConfig struct {
	Repeat        int           // per VIP per takeover burst
	Interval      time.Duration // between two rounds of a burst
	RefreshRepeat int           // per VIP per refresh
}

// garpAnnouncer tells the link that we hold the VIPs now: keepalived-style
// gratuitous ARP requests with the real MAC for IPv4 (FACTS 1.6), unsolicited
// neighbour advertisements with the Override flag and the target link-layer
// address option for IPv6. Clients are opened lazily (an ARP client needs an
// IPv4 address on the device, which the VIP provides) and kept, with the
// interface they were opened on: a refresh while master then needs no new
// descriptor (net.InterfaceByName opens a netlink socket).
type garpAnnouncer struct {
	vips []vipAddr
	arp  map[string]*arp.Client
	ndp  map[string]ndpConn
}

type ndpConn struct {
	c   *ndp.Conn
	ifi *net.Interface
}

func newAnnouncer(vips []vipAddr) *garpAnnouncer {
	return &garpAnnouncer{vips: vips, arp: map[string]*arp.Client{}, ndp: map[string]ndpConn{}}
}

// announce sends rounds rounds of one announcement per VIP, interval apart.
// It returns early when ctx ends or keep turns false.
func (an *garpAnnouncer) announce(ctx context.Context, rounds int, interval time.Duration, keep func() bool) error {
	var errs []error
	for r := 0; r < rounds && keep(); r++ {
		if r > 0 && interval > 0 {
			t := time.NewTimer(interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(errs...)
			case <-t.C:
			}
		}
		for _, v := range an.vips {
			var err error
			if v.prefix.Addr().Is4() {
				err = an.garp(v)
			} else {
				err = an.unsolicitedNA(v)
			}
			if err != nil && r == 0 { // one report per VIP and burst is enough
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// prepare opens the sockets ahead of the first takeover, where it can (an
// ARP client needs an IPv4 address on the device, NDP a link-local one), so
// that a takeover does not pay for it; failures are retried at announce time.
func (an *garpAnnouncer) prepare() {
	for _, v := range an.vips {
		if v.prefix.Addr().Is4() {
			an.arpClient(v.dev)
		} else {
			an.ndpConn(v.dev)
		}
	}
}

func (an *garpAnnouncer) arpClient(dev string) (*arp.Client, error) {
	if c := an.arp[dev]; c != nil {
		return c, nil
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, fmt.Errorf("arp on %s: %w", dev, err)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("arp on %s: %w", dev, err)
	}
	an.arp[dev] = c
	return c, nil
}

func (an *garpAnnouncer) ndpConn(dev string) (*ndp.Conn, *net.Interface, error) {
	if nc, ok := an.ndp[dev]; ok {
		return nc.c, nc.ifi, nil
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, nil, fmt.Errorf("ndp on %s: %w", dev, err)
	}
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil, nil, fmt.Errorf("ndp on %s: %w", dev, err)
	}
	an.ndp[dev] = ndpConn{c: c, ifi: ifi}
	return c, ifi, nil
}

func (an *garpAnnouncer) garp(v vipAddr) error {
	c, err := an.arpClient(v.dev)
	if err != nil {
		return err
	}
	ip := v.prefix.Addr()
	// ARP request, sender = target = VIP, broadcast (FACTS 1.6, as keepalived).
	p, err := arp.NewPacket(arp.OperationRequest, c.HardwareAddr(), ip, ethernet.Broadcast, ip)
	if err == nil {
		err = c.WriteTo(p, ethernet.Broadcast)
	}
	if err != nil {
		return fmt.Errorf("gratuitous arp for %s on %s: %w", ip, v.dev, err)
	}
	return nil
}

var allNodes = netip.MustParseAddr("ff02::1")

func (an *garpAnnouncer) unsolicitedNA(v vipAddr) error {
	c, ifi, err := an.ndpConn(v.dev)
	if err != nil {
		return err
	}
	na := &ndp.NeighborAdvertisement{
		// Router as the host forwards (keepalived #200); a plain LB host is no router.
		Router:        forwarding6(v.dev),
		Override:      true,
		TargetAddress: v.prefix.Addr(),
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
	}
	if err := c.WriteTo(na, nil, allNodes); err != nil {
		return fmt.Errorf("unsolicited na for %s on %s: %w", v.prefix.Addr(), v.dev, err)
	}
	return nil
}

func forwarding6(dev string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + dev + "/forwarding")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

func (an *garpAnnouncer) close() {
	for _, c := range an.arp {
		c.Close()
	}
	for _, nc := range an.ndp {
		nc.c.Close()
	}
}
