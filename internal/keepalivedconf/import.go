package keepalivedconf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// Limits of the keepalived.conf reader: a real file is a few KiB.
const (
	maxImportBytes = 1 << 20
	maxImportDepth = 16
	// v2AuthPassLen is the size of VRRPv2's Authentication Data field
	// (RFC 3768 5.3.10): keepalived sends no more of auth_pass than this.
	v2AuthPassLen = 8
)

// ErrSyntax is wrapped by Import for unbalanced braces,
// unterminated quotes and oversized input.
var ErrSyntax = errors.New("keepalivedconf: syntax")

// Import turns the vrrp_instance blocks of a keepalived.conf into
// the `vrrp:` section of mosparo-lb's YAML. VRRPv2 instances stay version 2,
// a PASS auth_pass becomes an ${ENV} reference (the secret is never
// printed; a warning names the variable to set). Everything that cannot be
// carried over exactly (AH, scripts, sync groups, virtual MACs, LVS, unknown
// keywords...) is listed in warnings, with its line; nothing is dropped
// silently. `include` is not followed.
func Import(r io.Reader) (yamlText []byte, warnings []string, err error) {
	b, err := io.ReadAll(io.LimitReader(r, maxImportBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxImportBytes {
		return nil, nil, fmt.Errorf("%w: file larger than %d bytes", ErrSyntax, maxImportBytes)
	}
	toks, err := tokenize(string(b))
	if err != nil {
		return nil, nil, err
	}
	p := &parser{toks: toks}
	root, err := p.items(0)
	if err != nil {
		return nil, nil, err
	}
	im := &importer{version: 2}
	im.run(root)
	out, err := yaml.Marshal(struct {
		VRRP configs.VRRP `yaml:"vrrp"`
	}{im.cfg})
	if err != nil {
		return nil, nil, err
	}
	return out, im.warnings, nil
}

// importer maps the parsed file onto configs.VRRP.
type importer struct {
	cfg      configs.VRRP
	warnings []string
	version  int
	// global_defs GARP defaults (keepalived's vrrp_garp_*).
	garp configs.VRRPGARP
}

func (im *importer) warn(n *node, format string, args ...any) {
	im.warnings = append(im.warnings, fmt.Sprintf("line %d: %s", n.line, fmt.Sprintf(format, args...)))
}

func (im *importer) run(root []*node) {
	// global_defs first: it sets defaults for every instance.
	for _, n := range root {
		if n.key == "global_defs" {
			im.globalDefs(n)
		}
	}
	for _, n := range root {
		switch n.key {
		case "global_defs":
		case "vrrp_instance":
			im.instance(n)
		case "vrrp_sync_group":
			im.warn(n, "vrrp_sync_group %s: instances are run independently; give them the same priorities and tracking so they move together", strings.Join(n.args, " "))
		case "vrrp_script":
			im.warn(n, "vrrp_script %s is not carried over: mosparo-lb tracks its own node pool (track_pool) and links (track_interfaces)", strings.Join(n.args, " "))
		case "include":
			im.warn(n, "include %s is not followed; import that file separately", strings.Join(n.args, " "))
		case "virtual_server", "virtual_server_group", "real_server":
			im.warn(n, "%s (LVS) ignored: mosparo-lb balances HTTP itself", n.key)
		default:
			im.warn(n, "%s ignored", n.key)
		}
	}
	if len(im.cfg.Instances) == 0 {
		im.warnings = append(im.warnings, "no vrrp_instance found")
	}
}

// garpMaster reads one garp_master_* option (the same in global_defs, with
// a vrrp_ prefix, and in a vrrp_instance) into g.
func (im *importer) garpMaster(n *node, key string, g *configs.VRRPGARP) {
	switch key {
	case "garp_master_delay":
		if d, ok := im.seconds(n, 0, 3600); ok {
			dd := configs.Duration(d)
			g.Delay = &dd
		}
	case "garp_master_repeat":
		g.Repeat, _ = im.intArg(n, 1, 100)
	case "garp_master_refresh":
		if d, ok := im.seconds(n, 0, 86400); ok {
			g.Refresh = configs.Duration(d)
		}
	case "garp_master_refresh_repeat":
		g.RefreshRepeat, _ = im.intArg(n, 1, 100)
	}
}

func (im *importer) globalDefs(g *node) {
	for _, n := range g.children {
		switch n.key {
		case "vrrp_version":
			if v, ok := im.intArg(n, 2, 3); ok {
				im.version = v
			}
		case "vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh", "vrrp_garp_master_refresh_repeat":
			im.garpMaster(n, strings.TrimPrefix(n.key, "vrrp_"), &im.garp)
		case "vrrp_garp_interval", "vrrp_gna_interval":
			if d, ok := im.seconds(n, 0, 1); ok {
				im.garp.Interval = configs.Duration(d)
			}
		case "vrrp_strict":
			im.warn(n, "vrrp_strict ignored: mosparo-lb always accepts traffic to its VIPs and installs no firewall rules")
		case "router_id", "script_user", "enable_script_security", "max_auto_priority", "vrrp_skip_check_adv_addr",
			"notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout":
			// Nothing VRRP-relevant to carry over.
		default:
			im.warn(n, "global_defs %s ignored", n.key)
		}
	}
}

func (im *importer) instance(blk *node) {
	in := configs.VRRPInstance{GARP: im.garp}
	if len(blk.args) > 0 {
		in.Name = blk.args[0]
	} else {
		im.warn(blk, "vrrp_instance without a name")
	}
	if !blk.block {
		im.warn(blk, "vrrp_instance %s has no { } block", in.Name)
	}
	version := im.version
	var trackWeights []int
	var auth *node
	for _, n := range blk.children {
		switch n.key {
		case "state":
			if s := strings.ToUpper(im.arg(n)); s == "MASTER" || s == "BACKUP" {
				in.State = s
			} else {
				im.warn(n, "state %q ignored; use MASTER or BACKUP", s)
			}
		case "interface":
			in.Interface = im.arg(n)
		case "virtual_router_id":
			in.VirtualRouterID, _ = im.intArg(n, 1, 255)
		case "priority":
			in.Priority, _ = im.intArg(n, 1, 255)
		case "advert_int":
			if d, ok := im.seconds(n, 0.01, 255); ok { // 40.95 s in v3, checked by the config loader
				in.AdvertInterval = configs.Duration(d)
			}
		case "version":
			if v, ok := im.intArg(n, 2, 3); ok {
				version = v
			}
		case "nopreempt":
			in.Nopreempt = true
		case "preempt":
		case "preempt_delay":
			if d, ok := im.seconds(n, 0, 1000); ok {
				in.PreemptDelay = configs.Duration(d)
			}
		case "down_timer_adverts":
			in.DownTimerAdverts, _ = im.intArg(n, 1, 100)
		case "virtual_ipaddress":
			in.VirtualIPs = append(in.VirtualIPs, im.vips(n)...)
		case "virtual_ipaddress_excluded":
			im.warn(n, "virtual_ipaddress_excluded merged into virtual_ips: mosparo-lb lists every VIP in its adverts (keepalived peers only log the difference)")
			in.VirtualIPs = append(in.VirtualIPs, im.vips(n)...)
		case "unicast_src_ip":
			in.UnicastSrcIP = im.arg(n)
		case "unicast_peer":
			for _, p := range n.children {
				in.UnicastPeers = append(in.UnicastPeers, p.key)
				if len(p.args) > 0 {
					im.warn(p, "unicast peer %s: %s ignored", p.key, strings.Join(p.args, " "))
				}
			}
		case "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat":
			im.garpMaster(n, n.key, &in.GARP)
		case "lower_prio_no_advert":
			in.LowerPrioNoAdvert = len(n.args) == 0 || n.args[0] != "false"
		case "higher_prio_send_advert":
			v := len(n.args) == 0 || n.args[0] != "false"
			in.HigherPrioSendAdvert = &v
		case "track_interface":
			for _, t := range n.children {
				ti := configs.VRRPTrackInterface{Name: t.key}
				if len(t.args) >= 2 && t.args[0] == "weight" {
					w, err := strconv.Atoi(t.args[1])
					switch {
					case err != nil || w < -253 || w > 253:
						im.warn(t, "track_interface %s: weight %q is not -253..253; tracked as FAULT", t.key, t.args[1])
					case w < 0:
						ti.Weight = -w
					case w > 0:
						// keepalived adds w while up; we subtract w while down: same
						// relative effect with the base priority raised by w.
						ti.Weight = w
						trackWeights = append(trackWeights, w)
					}
				}
				in.TrackInterfaces = append(in.TrackInterfaces, ti)
			}
		case "notify":
			in.Notify.Script = im.script(n)
		case "notify_master":
			in.Notify.Master = im.script(n)
		case "notify_backup":
			in.Notify.Backup = im.script(n)
		case "notify_fault":
			in.Notify.Fault = im.script(n)
		case "notify_stop":
			in.Notify.Stop = im.script(n)
		case "track_script":
			im.warn(n, "track_script ignored: the LB's own pool health (track_pool, default on) lowers the priority instead")
		case "authentication":
			auth = n
		case "use_vmac", "vmac_xmit_base":
			im.warn(n, "%s ignored: the VIPs go on the real interface with the real MAC, announced by gratuitous ARP (keepalived's default)", n.key)
		case "accept":
		case "no_accept":
			im.warn(n, "no_accept ignored: the LB must accept traffic to its VIPs")
		case "smtp_alert", "debug", "dont_track_primary", "native_ipv6":
		default:
			im.warn(n, "%s in vrrp_instance %s ignored", n.key, in.Name)
		}
	}
	im.setVersion(blk, &in, version, auth)
	if len(trackWeights) > 0 && in.Priority > 0 {
		sum := 0
		for _, w := range trackWeights {
			sum += w
		}
		p := min(in.Priority+sum, 254)
		im.warn(blk, "vrrp_instance %s: positive track_interface weights became priority %d (was %d) lowered by each weight while its link is down", in.Name, p, in.Priority)
		in.Priority = p
	}
	if len(in.VirtualIPs) == 0 {
		im.warn(blk, "vrrp_instance %s has no virtual_ipaddress", in.Name)
	}
	im.cfg.Instances = append(im.cfg.Instances, in)
}

// setVersion carries the instance's VRRP version over, and with version 2
// its advert interval in whole seconds and its authentication.
func (im *importer) setVersion(blk *node, in *configs.VRRPInstance, version int, auth *node) {
	in.Version = version
	if version == 2 && len(in.VirtualIPs) > 0 {
		if v, err := configs.ParseVirtualIP(in.VirtualIPs[0]); err == nil && v.Prefix.Addr().Is6() {
			in.Version = 3 // keepalived speaks VRRPv3 for IPv6 instances whatever vrrp_version says
		}
	}
	if in.Version == 3 {
		if auth != nil {
			im.warn(auth, "authentication ignored: VRRPv3 has none (keepalived ignores it too)")
		}
		return
	}
	if d := in.AdvertInterval.D(); d != 0 && d%time.Second != 0 {
		r := max(d.Round(time.Second), time.Second)
		im.warn(blk, "vrrp_instance %s: VRRPv2 adverts in whole seconds only; advert_int %s became %s, as keepalived does", in.Name, d, r)
		in.AdvertInterval = configs.Duration(r)
	}
	if auth != nil {
		im.authentication(auth, in)
	}
}

// authentication carries a VRRPv2 authentication block over: PASS as an
// ${ENV} reference, never the password itself; AH is refused.
func (im *importer) authentication(blk *node, in *configs.VRRPInstance) {
	var typ string
	var pass *node
	for _, n := range blk.children {
		switch n.key {
		case "auth_type":
			typ = strings.ToUpper(im.arg(n))
		case "auth_pass":
			pass = n
		default:
			im.warn(n, "authentication %s ignored", n.key)
		}
	}
	switch {
	case typ == "AH":
		im.warn(blk, "vrrp_instance %s: auth_type AH is not carried over (mosparo-lb refuses AH; keepalived's own documentation advises against it): switch the group to PASS or no authentication first", in.Name)
	case typ != "PASS":
		im.warn(blk, "vrrp_instance %s: authentication without auth_type PASS or AH ignored (keepalived ignores it too)", in.Name)
	case pass == nil || len(pass.args) == 0:
		im.warn(blk, "vrrp_instance %s: auth_type PASS without auth_pass ignored (keepalived ignores it too)", in.Name)
	default:
		env := authPassEnv(in.Name)
		in.AuthType, in.AuthPass = configs.AuthTypePass, "${"+env+"}"
		note := ""
		if len(pass.args[0]) > v2AuthPassLen {
			note = " (only its first 8 characters: keepalived sends no more)"
		}
		im.warn(pass, "note: vrrp_instance %s auth_pass became ${%s}: set the environment variable %s to the auth_pass of this line%s for mosparo-lb; the password itself is not copied", in.Name, env, env, note)
	}
}

// authPassEnv names the environment variable of an instance's password.
func authPassEnv(instance string) string {
	b := []byte("VRRP_AUTH_PASS_" + strings.ToUpper(instance))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			b[i] = '_'
		}
	}
	return string(b)
}

// vips reads a virtual_ipaddress block: "ADDR[/LEN] [dev X] [label Y] ...".
func (im *importer) vips(blk *node) []string {
	var out []string
	for _, n := range blk.children {
		if _, err := netip.ParsePrefix(n.key); err != nil {
			if _, err := netip.ParseAddr(n.key); err != nil {
				im.warn(n, "virtual address %q is not an address; skipped", n.key)
				continue
			}
		}
		s := n.key
		for i := 0; i < len(n.args); i++ {
			switch opt := n.args[i]; opt {
			case "dev", "label":
				if i+1 < len(n.args) {
					s += " " + opt + " " + n.args[i+1]
					i++
				}
			case "brd", "broadcast", "scope", "metric", "preferred_lft", "peer":
				im.warn(n, "virtual address %s: %s ignored", n.key, opt)
				i++ // its value
			default:
				im.warn(n, "virtual address %s: %s ignored", n.key, opt)
			}
		}
		out = append(out, s)
	}
	return out
}

func (im *importer) arg(n *node) string {
	if len(n.args) == 0 {
		im.warn(n, "%s needs a value", n.key)
		return ""
	}
	return n.args[0]
}

func (im *importer) intArg(n *node, lo, hi int) (int, bool) {
	s := im.arg(n)
	v, err := strconv.Atoi(s)
	if s != "" && (err != nil || v < lo || v > hi) {
		im.warn(n, "%s %q is not %d..%d; ignored", n.key, s, lo, hi)
		return 0, false
	}
	return v, err == nil
}

// seconds reads keepalived's decimal seconds, rounded to the centisecond.
func (im *importer) seconds(n *node, lo, hi float64) (time.Duration, bool) {
	s := im.arg(n)
	v, err := strconv.ParseFloat(s, 64)
	if s != "" && (err != nil || math.IsNaN(v) || v < lo || v > hi) {
		im.warn(n, "%s %q is not %g..%g seconds; ignored", n.key, s, lo, hi)
		return 0, false
	}
	return time.Duration(math.Round(v*100)) * 10 * time.Millisecond, err == nil
}

func (im *importer) script(n *node) string {
	s := strings.Join(n.args, " ")
	if s == "" {
		im.warn(n, "%s needs a script", n.key)
	} else if !strings.HasPrefix(s, "/") {
		im.warn(n, "%s %q: mosparo-lb runs no shell and needs an absolute path", n.key, s)
	} else if strings.ContainsAny(s, "'\"$`|;&<>") {
		im.warn(n, "%s %q: mosparo-lb runs no shell; quotes and shell syntax are passed literally", n.key, s)
	}
	return s
}
