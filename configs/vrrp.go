package configs

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// VRRP holds the VRRP instances this LB takes part in (vrrp/FACTS.md).
// No instance (the default) means no virtual IP is managed.
type VRRP struct {
	Instances []VRRPInstance `yaml:"instances,omitempty"`
}

// VRRPInstance is one virtual router (keepalived's vrrp_instance): VRRPv3
// (RFC 5798) on IPv4 or IPv6 as the virtual_ips say, or VRRPv2 (RFC 3768,
// IPv4 only) to replace one keepalived host of a v2 group at a time.
type VRRPInstance struct {
	// Name identifies the instance in logs, /status, notify arguments and
	// IsMaster. Required, unique.
	Name string `yaml:"name"`
	// Interface adverts are sent and received on; VIPs go there unless a
	// VIP names another dev. Required.
	Interface string `yaml:"interface"`
	// VirtualRouterID is the VRID shared by every router of the group, 1..255.
	VirtualRouterID int `yaml:"virtual_router_id"`
	// Priority is 1..254 (higher wins) or 255 for the address owner, which
	// takes over at once. Default 100.
	Priority int `yaml:"priority,omitempty"`
	// Version is the VRRP version spoken, 3 (RFC 5798) or 2 (RFC 3768,
	// keepalived's default, IPv4 only); every router of the group must
	// agree. Adverts of the other version are dropped and counted. Default 3.
	Version int `yaml:"version,omitempty"`
	// AdvertInterval between adverts while master: 10ms..40.95s in steps of
	// 10ms (the wire unit is the centisecond); with version 2 whole
	// seconds, 1s..255s. Default 1s.
	AdvertInterval Duration `yaml:"advert_interval,omitempty"`
	// AuthType is VRRPv2's authentication: "" (none) or PASS, keepalived's
	// simple text password. AH is refused. Default PASS when AuthPass is
	// set, else none. Version 2 only.
	AuthType string `yaml:"auth_type,omitempty"`
	// AuthPass is the PASS password, 1..8 bytes (keepalived sends only the
	// first 8 characters), usually "${ENV}". It travels in clear text on
	// the link: it keeps routers of different groups apart, it is no
	// security. Never logged nor shown in /status. Version 2 only.
	AuthPass string `yaml:"auth_pass,omitempty"`
	// State is the start-up hint, BACKUP or MASTER (keepalived's "state").
	// Both wait Master_Down_Interval before taking over (RFC 5798 6.4.1);
	// only priority 255 takes over at once. nopreempt and preempt_delay
	// require BACKUP, as in keepalived. Default BACKUP.
	State string `yaml:"state,omitempty"`
	// Nopreempt keeps a running lower-priority master in place when this
	// higher-priority router comes back. Default false (preempt).
	Nopreempt bool `yaml:"nopreempt,omitempty"`
	// PreemptDelay is waited, after start-up or after first hearing a
	// lower-priority master, before preempting it. 0..1000s. Default 0.
	PreemptDelay Duration `yaml:"preempt_delay,omitempty"`
	// DownTimerAdverts replaces the RFC's 3 in Master_Down_Interval
	// (keepalived's down_timer_adverts); every router must agree. 1..100. Default 3.
	DownTimerAdverts int `yaml:"down_timer_adverts,omitempty"`
	// VirtualIPs are the addresses held while master, keepalived-style:
	// "ADDR/LEN [dev IFACE] [label LABEL]", e.g. "192.0.2.10/24 label eth0:vip".
	// LEN defaults to 32 (IPv4) or 128 (IPv6); dev defaults to Interface;
	// a label must start with the device name (kernel rule), IPv4 only.
	// All of one family, at least one; the instance speaks that family.
	VirtualIPs []string `yaml:"virtual_ips"`
	// UnicastSrcIP is the source address of unicast adverts. Default: the
	// interface's primary address of the family.
	UnicastSrcIP string `yaml:"unicast_src_ip,omitempty"`
	// UnicastPeers, when set, replace multicast (224.0.0.18 / ff02::12) by
	// one unicast advert per peer, and adverts from any other source are
	// dropped (keepalived's check_unicast_src). Default: multicast.
	UnicastPeers []string `yaml:"unicast_peers,omitempty"`
	// LowerPrioNoAdvert makes a master ignore lower-priority adverts as
	// RFC 5798 says. Default false: like keepalived, a master answers a
	// lower-priority advert at once with its own advert and a GARP burst,
	// which heals a split brain quickly.
	LowerPrioNoAdvert bool `yaml:"lower_prio_no_advert,omitempty"`
	// HigherPrioSendAdvert makes a master that yields to a higher priority
	// send one last advert first, so the winner hears it and re-sends its
	// GARPs (heals a split brain even when the winner's advert crossed
	// first). Default true (keepalived's default is false).
	HigherPrioSendAdvert *bool `yaml:"higher_prio_send_advert,omitempty"`
	// GARP paces the gratuitous ARPs / unsolicited neighbour advertisements.
	GARP VRRPGARP `yaml:"garp,omitempty"`
	// TrackInterfaces lower the priority or force FAULT while a link is down.
	TrackInterfaces []VRRPTrackInterface `yaml:"track_interfaces,omitempty"`
	// TrackPool reacts to the balancer having no node that can serve.
	TrackPool VRRPTrackPool `yaml:"track_pool,omitempty"`
	// TrackCSSCache reacts to the shared cache of css_cache being
	// unreachable (mosparo's health API does not cover it, FACTS 11.9).
	TrackCSSCache VRRPTrackCSSCache `yaml:"track_css_cache,omitempty"`
	// Notify runs scripts on state changes.
	Notify VRRPNotify `yaml:"notify,omitempty"`
}

// VRRPGARP are keepalived's garp_master_* knobs. Defaults are keepalived's.
type VRRPGARP struct {
	// Repeat is the number of GARPs (NAs) per VIP in each burst, 1..100. Default 5.
	Repeat int `yaml:"repeat,omitempty"`
	// Interval between two GARPs of a burst, 0..1s. Default 0 (back to back).
	Interval Duration `yaml:"interval,omitempty"`
	// Delay of the second burst after becoming master, 0..1h ("0s" = no
	// second burst). Default 5s.
	Delay *Duration `yaml:"delay,omitempty"`
	// Refresh sends RefreshRepeat GARPs per VIP this often while master,
	// 0 (off) or 1s..24h. Default 0.
	Refresh Duration `yaml:"refresh,omitempty"`
	// RefreshRepeat is the number of GARPs per VIP in a refresh, 1..100. Default 1.
	RefreshRepeat int `yaml:"refresh_repeat,omitempty"`
}

// VRRPTrackInterface is one tracked link.
type VRRPTrackInterface struct {
	// Name of the interface. Required.
	Name string `yaml:"name"`
	// Weight is subtracted from the priority while the link is down,
	// 1..253; 0 (the default) puts the instance in FAULT instead.
	Weight int `yaml:"weight,omitempty"`
}

// VRRPTrackPool tracks the balancer's pool: "no healthy node" counts as a failure.
type VRRPTrackPool struct {
	// Mode is weight (lower the priority by Weight), fault (enter FAULT and
	// drop the VIPs) or off. Default weight.
	Mode TrackMode `yaml:"mode,omitempty"`
	// Weight subtracted from the priority while the pool is unhealthy,
	// 1..253. Default 253, so an LB without nodes always yields to one with.
	// The effective priority never drops below 1.
	Weight int `yaml:"weight,omitempty"`
}

// VRRPTrackCSSCache tracks css_cache's shared Redis or memcached: probes
// failing (every css_cache.revalidate_interval) count as a failure. Only
// with css_cache configured.
type VRRPTrackCSSCache struct {
	// Mode is weight, fault or off (as track_pool). Default off: the nodes
	// share the cache, so a peer LB usually sees the same outage; turn it
	// on when LBs reach the cache over different paths.
	Mode TrackMode `yaml:"mode,omitempty"`
	// Weight subtracted from the priority while the cache is unreachable,
	// 1..253. Default 50.
	Weight int `yaml:"weight,omitempty"`
}

// VRRPNotify are the state-change hooks. Commands are split on spaces
// (no shell). They run one at a time in order, never blocking VRRP.
type VRRPNotify struct {
	// Script is run with keepalived's four arguments appended:
	// INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>. Default none.
	Script string `yaml:"script,omitempty"`
	// Master, Backup, Fault and Stop run on entering that state, without
	// extra arguments (keepalived's notify_master etc.). Default none.
	Master string `yaml:"master,omitempty"`
	Backup string `yaml:"backup,omitempty"`
	Fault  string `yaml:"fault,omitempty"`
	Stop   string `yaml:"stop,omitempty"`
	// Timeout kills a hook still running after it, 100ms..10m. Default 10s.
	Timeout Duration `yaml:"timeout,omitempty"`
}

// VRRP authentication types (version 2).
const (
	AuthTypeNone = ""
	AuthTypePass = "PASS"
)

// TrackMode is how a tracked failure acts on a VRRP instance
// (track_pool.mode, track_css_cache.mode), spelled as in the file.
type TrackMode string

// Track modes.
const (
	TrackPoolWeight TrackMode = "weight"
	TrackPoolFault  TrackMode = "fault"
	TrackPoolOff    TrackMode = "off"
)

// VirtualIP is one parsed virtual_ips entry.
type VirtualIP struct {
	Prefix netip.Prefix // address with its prefix length, not masked
	Dev    string       // "" = the instance interface
	Label  string       // "" = none
}

// ParseVirtualIP reads "ADDR[/LEN] [dev IFACE] [label LABEL]".
func ParseVirtualIP(s string) (VirtualIP, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return VirtualIP{}, fmt.Errorf("is empty; write ADDR/LEN [dev IFACE] [label LABEL]")
	}
	var vip VirtualIP
	var err error
	if strings.Contains(f[0], "/") {
		vip.Prefix, err = netip.ParsePrefix(f[0])
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(f[0])
		vip.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil || vip.Prefix.Addr().Zone() != "" {
		return VirtualIP{}, fmt.Errorf("%q is not an address such as 192.0.2.10/24 or 2001:db8::10/64", f[0])
	}
	vip.Prefix = netip.PrefixFrom(vip.Prefix.Addr().Unmap(), vip.Prefix.Bits())
	a := vip.Prefix.Addr()
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || (a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return VirtualIP{}, fmt.Errorf("%s cannot be a virtual address (unspecified, multicast, loopback or broadcast)", a)
	}
	for i := 1; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return VirtualIP{}, fmt.Errorf("%q needs a value", f[i])
		}
		switch f[i] {
		case "dev":
			vip.Dev = f[i+1]
		case "label":
			vip.Label = f[i+1]
		default:
			return VirtualIP{}, fmt.Errorf("unknown option %q; valid: dev, label", f[i])
		}
	}
	return vip, nil
}

func (r *VRRP) defaults() {
	for i := range r.Instances {
		in := &r.Instances[i]
		setInt(&in.Priority, 100)
		setInt(&in.Version, 3)
		setDuration(&in.AdvertInterval, "1s")
		if in.AuthType == AuthTypeNone && in.AuthPass != "" {
			in.AuthType = AuthTypePass
		}
		if in.State == "" {
			in.State = "BACKUP"
		}
		setInt(&in.DownTimerAdverts, 3)
		if in.HigherPrioSendAdvert == nil {
			t := true
			in.HigherPrioSendAdvert = &t
		}
		setInt(&in.GARP.Repeat, 5)
		if in.GARP.Delay == nil {
			d := Duration(5 * time.Second)
			in.GARP.Delay = &d
		}
		setInt(&in.GARP.RefreshRepeat, 1)
		if in.TrackPool.Mode == "" {
			in.TrackPool.Mode = TrackPoolWeight
		}
		setInt(&in.TrackPool.Weight, 253)
		if in.TrackCSSCache.Mode == "" {
			in.TrackCSSCache.Mode = TrackPoolOff
		}
		setInt(&in.TrackCSSCache.Weight, 50)
		setDuration(&in.Notify.Timeout, "10s")
	}
}

func (r *VRRP) validate(v *validator, path string) {
	names := map[string]bool{}
	type key struct {
		iface  string
		vrid   int
		family bool
	}
	vrids := map[key]string{}
	for i := range r.Instances {
		in := &r.Instances[i]
		p := fmt.Sprintf("%s.instances[%d]", path, i)
		switch {
		case in.Name == "":
			v.Errorf(p+".name", "is required: a unique name such as VI_1")
		case strings.ContainsAny(in.Name, " \t\n/"):
			v.Errorf(p+".name", "%q may not contain spaces or /", in.Name)
		case names[in.Name]:
			v.Errorf(p+".name", "%q is used by another instance", in.Name)
		}
		names[in.Name] = true
		if in.Interface == "" {
			v.Errorf(p+".interface", "is required: the interface adverts use, such as eth0")
		} else if len(in.Interface) > 15 || strings.ContainsAny(in.Interface, " /") {
			v.Errorf(p+".interface", "%q is not an interface name (at most 15 characters, no spaces or /)", in.Interface)
		}
		if in.VirtualRouterID < 1 || in.VirtualRouterID > 255 {
			v.Errorf(p+".virtual_router_id", "must be 1..255, got %d", in.VirtualRouterID)
		}
		if in.Priority < 1 || in.Priority > 255 {
			v.Errorf(p+".priority", "must be 1..254, or 255 for the address owner; got %d", in.Priority)
		}
		validateVersion(v, p, in)
		switch in.State {
		case "BACKUP", "MASTER":
		default:
			v.Errorf(p+".state", "%q is not valid; use BACKUP or MASTER", in.State)
		}
		if in.Nopreempt && in.State != "BACKUP" {
			v.Errorf(p+".nopreempt", "needs state BACKUP (a MASTER hint would preempt anyway)")
		}
		if d := in.PreemptDelay.D(); d > 1000*time.Second {
			v.Errorf(p+".preempt_delay", "must be 0..1000s, got %s", d)
		} else if d > 0 && in.State != "BACKUP" {
			v.Errorf(p+".preempt_delay", "needs state BACKUP")
		}
		if in.DownTimerAdverts < 1 || in.DownTimerAdverts > 100 {
			v.Errorf(p+".down_timer_adverts", "must be 1..100, got %d", in.DownTimerAdverts)
		}
		is6 := r.validateVIPs(v, p, in)
		if is6 && in.Version == 2 {
			v.Errorf(p+".version", "2 speaks IPv4 only (RFC 3768); use version 3 for IPv6 virtual_ips")
		}
		if len(in.VirtualIPs) > 0 && in.VirtualRouterID >= 1 && in.VirtualRouterID <= 255 {
			k := key{in.Interface, in.VirtualRouterID, is6}
			if other, ok := vrids[k]; ok {
				v.Errorf(p+".virtual_router_id", "%d is already used on %s by instance %q for the same address family", in.VirtualRouterID, in.Interface, other)
			}
			vrids[k] = in.Name
		}
		if in.UnicastSrcIP != "" {
			a, err := netip.ParseAddr(in.UnicastSrcIP)
			if err != nil || a.Zone() != "" || !a.IsValid() || a.IsMulticast() || a.IsUnspecified() {
				v.Errorf(p+".unicast_src_ip", "%q is not a unicast address such as 10.0.0.11", in.UnicastSrcIP)
			} else if a.Unmap().Is6() != is6 {
				v.Errorf(p+".unicast_src_ip", "%s is not of the virtual_ips' address family", a)
			} else if len(in.UnicastPeers) == 0 {
				v.Errorf(p+".unicast_src_ip", "only makes sense with unicast_peers")
			}
		}
		seenPeer := map[netip.Addr]bool{}
		for j, s := range in.UnicastPeers {
			pp := fmt.Sprintf("%s.unicast_peers[%d]", p, j)
			a, err := netip.ParseAddr(s)
			switch {
			case err != nil || a.Zone() != "" || a.IsMulticast() || a.IsUnspecified():
				v.Errorf(pp, "%q is not a unicast address such as 10.0.0.12", s)
			case a.Unmap().Is6() != is6:
				v.Errorf(pp, "%s is not of the virtual_ips' address family", a)
			case seenPeer[a]:
				v.Errorf(pp, "%s is listed twice", a)
			}
			seenPeer[a] = true
		}
		g := in.GARP
		if g.Repeat < 1 || g.Repeat > 100 {
			v.Errorf(p+".garp.repeat", "must be 1..100, got %d", g.Repeat)
		}
		if g.Interval.D() > time.Second {
			v.Errorf(p+".garp.interval", "must be 0..1s, got %s", g.Interval.D())
		}
		if g.Delay.D() > time.Hour {
			v.Errorf(p+".garp.delay", "must be 0s (no second burst)..1h, got %s", g.Delay.D())
		}
		if r := g.Refresh.D(); r != 0 && (r < time.Second || r > 24*time.Hour) {
			v.Errorf(p+".garp.refresh", "must be 0 (off) or 1s..24h, got %s", r)
		}
		if g.RefreshRepeat < 1 || g.RefreshRepeat > 100 {
			v.Errorf(p+".garp.refresh_repeat", "must be 1..100, got %d", g.RefreshRepeat)
		}
		for j, t := range in.TrackInterfaces {
			tp := fmt.Sprintf("%s.track_interfaces[%d]", p, j)
			if t.Name == "" || len(t.Name) > 15 {
				v.Errorf(tp+".name", "is required: an interface name of at most 15 characters")
			}
			if t.Weight < 0 || t.Weight > 253 {
				v.Errorf(tp+".weight", "must be 0 (FAULT while down) or 1..253 (subtracted while down), got %d", t.Weight)
			}
		}
		oneOf(v, p+".track_pool.mode", in.TrackPool.Mode, []TrackMode{TrackPoolWeight, TrackPoolFault, TrackPoolOff})
		if w := in.TrackPool.Weight; w < 1 || w > 253 {
			v.Errorf(p+".track_pool.weight", "must be 1..253, got %d", w)
		}
		oneOf(v, p+".track_css_cache.mode", in.TrackCSSCache.Mode, []TrackMode{TrackPoolWeight, TrackPoolFault, TrackPoolOff})
		if w := in.TrackCSSCache.Weight; w < 1 || w > 253 {
			v.Errorf(p+".track_css_cache.weight", "must be 1..253, got %d", w)
		}
		if t := in.Notify.Timeout.D(); t < 100*time.Millisecond || t > 10*time.Minute {
			v.Errorf(p+".notify.timeout", "must be 100ms..10m, got %s", t)
		}
		for _, h := range []struct{ key, cmd string }{{"script", in.Notify.Script}, {"master", in.Notify.Master}, {"backup", in.Notify.Backup}, {"fault", in.Notify.Fault}, {"stop", in.Notify.Stop}} {
			if h.cmd != "" && !strings.HasPrefix(strings.TrimSpace(h.cmd), "/") {
				v.Errorf(p+".notify."+h.key, "%q must start with an absolute path (no shell or PATH lookup)", h.cmd)
			}
		}
	}
}

// validateVersion checks version, advert_interval, auth_type and auth_pass,
// which depend on each other.
func validateVersion(v *validator, p string, in *VRRPInstance) {
	ai := in.AdvertInterval.D()
	switch in.Version {
	case 3:
		if ai < 10*time.Millisecond || ai > 4095*10*time.Millisecond || ai%(10*time.Millisecond) != 0 {
			v.Errorf(p+".advert_interval", "must be 10ms..40.95s in steps of 10ms, got %s", ai)
		}
		if in.AuthType != AuthTypeNone || in.AuthPass != "" {
			v.Errorf(p+".auth_type", "VRRP version 3 has no authentication (RFC 5798); set version: 2 to speak with keepalived peers using auth_type PASS")
		}
		return
	case 2:
	default:
		v.Errorf(p+".version", "must be 2 or 3, got %d", in.Version)
		return
	}
	if ai < time.Second || ai > 255*time.Second || ai%time.Second != 0 {
		v.Errorf(p+".advert_interval", "must be whole seconds 1s..255s with version 2 (RFC 3768 has no sub-second adverts), got %s", ai)
	}
	switch in.AuthType {
	case AuthTypeNone:
	case AuthTypePass:
		if in.AuthPass == "" {
			v.Errorf(p+".auth_pass", "is required with auth_type PASS: the group's password, e.g. ${VRRP_AUTH_PASS}")
		} else if len(in.AuthPass) > 8 {
			v.Errorf(p+".auth_pass", "is %d bytes; PASS carries at most 8 (keepalived uses only the first 8 characters of a longer one: write those)", len(in.AuthPass))
		}
	case "AH":
		v.Errorf(p+".auth_type", "AH is not supported (keepalived's own documentation advises against it); use PASS or no authentication on every router of the group")
	default:
		v.Errorf(p+".auth_type", "%q is not valid; use PASS or leave it empty", in.AuthType)
	}
}

// validateVIPs checks virtual_ips and reports whether they are IPv6.
func (r *VRRP) validateVIPs(v *validator, p string, in *VRRPInstance) (is6 bool) {
	if len(in.VirtualIPs) == 0 {
		v.Errorf(p+".virtual_ips", "needs at least one address such as 192.0.2.10/24")
		return false
	}
	seen := map[netip.Addr]bool{}
	for j, s := range in.VirtualIPs {
		vp := fmt.Sprintf("%s.virtual_ips[%d]", p, j)
		vip, err := ParseVirtualIP(s)
		if err != nil {
			v.Errorf(vp, "%v", err)
			continue
		}
		a := vip.Prefix.Addr()
		if j == 0 {
			is6 = a.Is6()
		} else if a.Is6() != is6 {
			v.Errorf(vp, "%s mixes address families; use one instance per family", a)
		}
		if seen[a] {
			v.Errorf(vp, "%s is listed twice", a)
		}
		seen[a] = true
		if vip.Dev != "" && len(vip.Dev) > 15 {
			v.Errorf(vp, "dev %q is not an interface name", vip.Dev)
		}
		if vip.Label != "" {
			dev := vip.Dev
			if dev == "" {
				dev = in.Interface
			}
			switch {
			case a.Is6():
				v.Errorf(vp, "labels exist for IPv4 addresses only")
			case len(vip.Label) > 15 || !strings.HasPrefix(vip.Label, dev):
				v.Errorf(vp, "label %q must start with the device name %q and be at most 15 characters, like %s:vip", vip.Label, dev, dev)
			}
		}
	}
	return is6
}
