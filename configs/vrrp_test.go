package configs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func parseVRRP(t *testing.T, instances string) (*Config, error) {
	t.Helper()
	return Parse("test.yaml", []byte("vrrp:\n  instances:\n"+instances), func(string) (string, bool) { return "", false })
}

func TestVRRPDefaults(t *testing.T) {
	c, err := parseVRRP(t, `    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10/24"]}
`)
	if err != nil {
		t.Fatal(err)
	}
	in := c.VRRP.Instances[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"priority", in.Priority, 100},
		{"version", in.Version, 3},
		{"auth_type", in.AuthType, ""},
		{"advert_interval", in.AdvertInterval.D(), time.Second},
		{"state", in.State, "BACKUP"},
		{"down_timer_adverts", in.DownTimerAdverts, 3},
		{"garp.repeat", in.GARP.Repeat, 5},
		{"garp.delay", in.GARP.Delay.D(), 5 * time.Second},
		{"garp.refresh", in.GARP.Refresh.D(), time.Duration(0)},
		{"garp.refresh_repeat", in.GARP.RefreshRepeat, 1},
		{"track_pool.mode", in.TrackPool.Mode, TrackPoolWeight},
		{"track_pool.weight", in.TrackPool.Weight, 253},
		{"notify.timeout", in.Notify.Timeout.D(), 10 * time.Second},
		{"nopreempt", in.Nopreempt, false},
		{"higher_prio_send_advert", *in.HigherPrioSendAdvert, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestVRRPGARPDelayZeroKept(t *testing.T) {
	c, err := parseVRRP(t, `    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10"], garp: {delay: 0s}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.VRRP.Instances[0].GARP.Delay.D(); d != 0 {
		t.Errorf("garp.delay = %s, want 0 (explicit 0 means no second burst)", d)
	}
}

func TestVRRPFullValid(t *testing.T) {
	_, err := parseVRRP(t, `    - name: VI_1
      interface: eth0
      virtual_router_id: 51
      priority: 150
      advert_interval: 100ms
      state: BACKUP
      nopreempt: true
      preempt_delay: 5s
      down_timer_adverts: 4
      virtual_ips: ["192.0.2.10/24 label eth0:vip", "192.0.2.11/32 dev eth1"]
      unicast_src_ip: 10.0.0.11
      unicast_peers: [10.0.0.12, 10.0.0.13]
      lower_prio_no_advert: true
      garp: {repeat: 3, interval: 10ms, delay: 2s, refresh: 60s, refresh_repeat: 2}
      track_interfaces: [{name: eth1}, {name: eth2, weight: 20}]
      track_pool: {mode: fault}
      notify: {script: /usr/local/bin/notify.sh, master: /bin/true, timeout: 2s}
    - {name: VI_6, interface: eth0, virtual_router_id: 51, priority: 255, virtual_ips: ["fe80::1/64", "2001:db8::10/64"]}
`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestVRRPInvalid(t *testing.T) {
	base := "name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: [\"192.0.2.10/24\"]"
	tests := []struct {
		name  string
		extra string // appended inside the flow mapping, or a whole list when it starts with "-"
		path  string
		msg   string
	}{
		{"vrid zero", "", "vrrp.instances[0].virtual_router_id", "1..255"},
		{"priority", "priority: 256", "vrrp.instances[0].priority", "1..254"},
		{"advert too short", "advert_interval: 5ms", "vrrp.instances[0].advert_interval", "10ms..40.95s"},
		{"advert not cs", "advert_interval: 15ms", "vrrp.instances[0].advert_interval", "steps of 10ms"},
		{"advert too long", "advert_interval: 41s", "vrrp.instances[0].advert_interval", "10ms..40.95s"},
		{"state", "state: LEADER", "vrrp.instances[0].state", "BACKUP or MASTER"},
		{"nopreempt master", "state: MASTER, nopreempt: true", "vrrp.instances[0].nopreempt", "state BACKUP"},
		{"preempt delay", "preempt_delay: 1001s", "vrrp.instances[0].preempt_delay", "0..1000s"},
		{"down adverts", "down_timer_adverts: 101", "vrrp.instances[0].down_timer_adverts", "1..100"},
		{"unicast family", "unicast_peers: [\"2001:db8::1\"]", "vrrp.instances[0].unicast_peers[0]", "family"},
		{"unicast bad", "unicast_peers: [\"nope\"]", "vrrp.instances[0].unicast_peers[0]", "unicast address"},
		{"unicast dup", "unicast_peers: [10.0.0.1, 10.0.0.1]", "vrrp.instances[0].unicast_peers[1]", "twice"},
		{"src without peers", "unicast_src_ip: 10.0.0.1", "vrrp.instances[0].unicast_src_ip", "unicast_peers"},
		{"garp repeat", "garp: {repeat: 101}", "vrrp.instances[0].garp.repeat", "1..100"},
		{"garp refresh", "garp: {refresh: 500ms}", "vrrp.instances[0].garp.refresh", "1s..24h"},
		{"track weight", "track_interfaces: [{name: eth1, weight: 300}]", "vrrp.instances[0].track_interfaces[0].weight", "1..253"},
		{"track name", "track_interfaces: [{weight: 3}]", "vrrp.instances[0].track_interfaces[0].name", "required"},
		{"pool mode", "track_pool: {mode: maybe}", "vrrp.instances[0].track_pool.mode", "weight, fault, off"},
		{"pool weight", "track_pool: {weight: 254}", "vrrp.instances[0].track_pool.weight", "1..253"},
		{"notify relative", "notify: {script: notify.sh}", "vrrp.instances[0].notify.script", "absolute path"},
		{"notify timeout", "notify: {timeout: 11m}", "vrrp.instances[0].notify.timeout", "100ms..10m"},
		{"version 4", "version: 4", "vrrp.instances[0].version", "2 or 3"},
		{"version 1", "version: 1", "vrrp.instances[0].version", "2 or 3"},
		{"v2 sub-second", "version: 2, advert_interval: 100ms", "vrrp.instances[0].advert_interval", "whole seconds"},
		{"v2 fraction", "version: 2, advert_interval: 1500ms", "vrrp.instances[0].advert_interval", "whole seconds"},
		{"v2 too long", "version: 2, advert_interval: 256s", "vrrp.instances[0].advert_interval", "1s..255s"},
		{"v2 ipv6", "version: 2", "vrrp.instances[0].version", "IPv4 only"},
		{"v2 AH", "version: 2, auth_type: AH, auth_pass: x", "vrrp.instances[0].auth_type", "AH is not supported"},
		{"v2 bad auth type", "version: 2, auth_type: md5", "vrrp.instances[0].auth_type", "PASS"},
		{"v2 PASS without password", "version: 2, auth_type: PASS", "vrrp.instances[0].auth_pass", "required"},
		{"v2 password too long", "version: 2, auth_pass: 123456789", "vrrp.instances[0].auth_pass", "at most 8"},
		{"v3 auth", "auth_pass: secret", "vrrp.instances[0].auth_type", "no authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := strings.Replace(base, "virtual_router_id: 51", "virtual_router_id: 51", 1)
			switch tt.name {
			case "vrid zero":
				b = strings.Replace(base, "virtual_router_id: 51", "virtual_router_id: 0", 1)
			case "v2 ipv6":
				b = strings.Replace(base, "192.0.2.10/24", "2001:db8::10", 1)
			}
			if tt.extra != "" {
				b += ", " + tt.extra
			}
			_, err := parseVRRP(t, "    - {"+b+"}\n")
			wantProblem(t, err, tt.path, tt.msg)
		})
	}
}

func TestVRRPInvalidVIPs(t *testing.T) {
	tests := []struct {
		name, vips, path, msg string
	}{
		{"none", `[]`, "vrrp.instances[0].virtual_ips", "at least one"},
		{"garbage", `["nope"]`, "vrrp.instances[0].virtual_ips[0]", "not an address"},
		{"multicast", `["224.0.0.18"]`, "vrrp.instances[0].virtual_ips[0]", "cannot be a virtual address"},
		{"mixed", `["192.0.2.1", "2001:db8::1"]`, "vrrp.instances[0].virtual_ips[1]", "mixes address families"},
		{"dup", `["192.0.2.1/24", "192.0.2.1/32"]`, "vrrp.instances[0].virtual_ips[1]", "twice"},
		{"option", `["192.0.2.1 scope host"]`, "vrrp.instances[0].virtual_ips[0]", "unknown option"},
		{"dangling", `["192.0.2.1 dev"]`, "vrrp.instances[0].virtual_ips[0]", "needs a value"},
		{"label prefix", `["192.0.2.1 label vip"]`, "vrrp.instances[0].virtual_ips[0]", "must start with the device name"},
		{"label v6", `["2001:db8::1 label eth0:x"]`, "vrrp.instances[0].virtual_ips[0]", "IPv4 addresses only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseVRRP(t, "    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: "+tt.vips+"}\n")
			wantProblem(t, err, tt.path, tt.msg)
		})
	}
}

func TestVRRPDuplicates(t *testing.T) {
	_, err := parseVRRP(t, `    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10"]}
    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.11"]}
`)
	wantProblem(t, err, "vrrp.instances[1].name", "used by another instance")
	wantProblem(t, err, "vrrp.instances[1].virtual_router_id", "already used on eth0")
	// The same VRID for the other family is a different virtual router.
	_, err = parseVRRP(t, `    - {name: VI_4, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10"]}
    - {name: VI_6, interface: eth0, virtual_router_id: 51, virtual_ips: ["2001:db8::10"]}
`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestVRRPProblemPosition(t *testing.T) {
	_, err := parseVRRP(t, `    - name: VI_1
      interface: eth0
      virtual_router_id: 51
      priority: 300
      virtual_ips: ["192.0.2.10"]
`)
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 {
		t.Fatalf("Parse = %v, want one problem", err)
	}
	if p := e.Problems[0]; p.Line != 6 || p.Path != "vrrp.instances[0].priority" {
		t.Errorf("problem at line %d path %s, want line 6 vrrp.instances[0].priority", p.Line, p.Path)
	}
}

func TestParseVirtualIP(t *testing.T) {
	tests := []struct {
		in, prefix, dev, label string
	}{
		{"192.0.2.10", "192.0.2.10/32", "", ""},
		{"192.0.2.10/24", "192.0.2.10/24", "", ""},
		{"192.0.2.10/24 dev eth1 label eth1:a", "192.0.2.10/24", "eth1", "eth1:a"},
		{"2001:db8::1/64", "2001:db8::1/64", "", ""},
		{"fe80::1", "fe80::1/128", "", ""},
	}
	for _, tt := range tests {
		v, err := ParseVirtualIP(tt.in)
		if err != nil {
			t.Errorf("ParseVirtualIP(%q) error %v", tt.in, err)
			continue
		}
		if v.Prefix.String() != tt.prefix || v.Dev != tt.dev || v.Label != tt.label {
			t.Errorf("ParseVirtualIP(%q) = %v %q %q, want %s %q %q", tt.in, v.Prefix, v.Dev, v.Label, tt.prefix, tt.dev, tt.label)
		}
	}
}

func TestVRRPVersion2(t *testing.T) {
	env := func(k string) (string, bool) {
		return map[string]string{"VRRP_AUTH_PASS": "secret12"}[k], k == "VRRP_AUTH_PASS"
	}
	c, err := Parse("test.yaml", []byte(`vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10/24"], version: 2, advert_interval: 2s, auth_pass: "${VRRP_AUTH_PASS}"}
    - {name: VI_2, interface: eth0, virtual_router_id: 52, virtual_ips: ["192.0.2.11/24"], version: 2}
`), env)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.VRRP.Instances[0], c.VRRP.Instances[1]
	if a.Version != 2 || a.AuthType != AuthTypePass || a.AuthPass != "secret12" || a.AdvertInterval.D() != 2*time.Second {
		t.Errorf("VI_1 = version %d, auth %q %q, advert %s; want 2, PASS secret12, 2s", a.Version, a.AuthType, a.AuthPass, a.AdvertInterval.D())
	}
	if b.Version != 2 || b.AuthType != AuthTypeNone || b.AdvertInterval.D() != time.Second {
		t.Errorf("VI_2 = version %d, auth %q, advert %s; want 2, none, 1s", b.Version, b.AuthType, b.AdvertInterval.D())
	}
}
