package vip

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
)

func TestManagerBeforeRun(t *testing.T) {
	c, err := configs.Parse("t.yaml", []byte(`vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, priority: 150, advert_interval: 100ms, virtual_ips: ["192.0.2.10/24"]}
    - {name: VI_2, interface: eth0, virtual_router_id: 52, virtual_ips: ["2001:db8::10/64"], unicast_peers: ["2001:db8::12"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(c.VRRP, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	if len(st) != 2 || st[0].Name != "VI_1" || st[0].State != Initialize || st[0].EffectivePriority != 150 ||
		st[0].AdvertInterval != "100ms" || st[1].VIPs[0] != "2001:db8::10/64" || !st[1].Unicast {
		t.Errorf("Status() = %+v", st)
	}
	if m.IsMaster("VI_1") || m.IsMaster("nope") {
		t.Error("IsMaster true before Run")
	}
	b, err := json.Marshal(st[0])
	if err != nil || !strings.Contains(string(b), `"effective_priority":150`) || strings.Contains(string(b), "last_change") {
		t.Errorf("JSON %s, %v", b, err)
	}
}

func TestManagerRejects(t *testing.T) {
	in := configs.VRRPInstance{Name: "X", Interface: "eth0", VirtualRouterID: 1, Priority: 100, AdvertInterval: configs.Duration(time.Second)}
	if _, err := New(configs.VRRP{Instances: []configs.VRRPInstance{in}}, Options{}); err == nil {
		t.Error("New accepted an instance without virtual_ips")
	}
	in.VirtualIPs = []string{"192.0.2.1"}
	if _, err := New(configs.VRRP{Instances: []configs.VRRPInstance{in, in}}, Options{}); err == nil {
		t.Error("New accepted a duplicate name")
	}
}

// TestTrackCSSCache: an unreachable shared cache lowers the priority by
// track_css_cache.weight or forces FAULT, and changes nothing when off
// (FACTS 11.9). The interface is lo so that only the cache decides.
func TestTrackCSSCache(t *testing.T) {
	for _, tc := range []struct {
		name, track string
		reachable   bool
		penalty     int
		fault       bool
	}{
		{"off by default", "", false, 0, false},
		{"weight, reachable", "track_css_cache: {mode: weight}", true, 0, false},
		{"weight, down", "track_css_cache: {mode: weight}", false, 50, false},
		{"custom weight", "track_css_cache: {mode: weight, weight: 20}", false, 20, false},
		{"fault", "track_css_cache: {mode: fault}", false, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := "css_cache: {backend: redis, url: \"redis://127.0.0.1\"}\nvrrp:\n  instances:\n" +
				"    - {name: VI_1, interface: lo, virtual_router_id: 51, virtual_ips: [\"192.0.2.10/24\"], track_pool: {mode: off}"
			if tc.track != "" {
				y += ", " + tc.track
			}
			y += "}\n"
			c, err := configs.Parse("t.yaml", []byte(y), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			in, err := newInstance(c.VRRP.Instances[0], Options{Logger: zap.NewNop(), CSSCacheReachable: func() bool { return tc.reachable }})
			if err != nil {
				t.Fatal(err)
			}
			if penalty, fault := in.tracking(func(string) bool { return true }); penalty != tc.penalty || fault != tc.fault {
				t.Errorf("tracking() = %d, %v, want %d, %v", penalty, fault, tc.penalty, tc.fault)
			}
		})
	}
}

// TestOnTransition: every state change an instance carries out reaches
// Options.OnTransition with the state it left.
func TestOnTransition(t *testing.T) {
	c, err := configs.Parse("t.yaml", []byte(`vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, priority: 150, virtual_ips: ["192.0.2.10/24"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var got []Transition
	m, err := New(c.VRRP, Options{Clock: clocktest.NewManual(at), OnTransition: func(tr Transition) { got = append(got, tr) }})
	if err != nil {
		t.Fatal(err)
	}
	in := m.byName["VI_1"]
	ex := &executor{in: in, notify: newNotifier("VI_1", NotifyConfig{}, zap.NewNop()), from: Initialize}
	ex.do([]Action{{Kind: ActionNotify, State: Backup, Priority: 150}, {Kind: ActionNotify, State: Master, Priority: 150}})
	want := []Transition{
		{Instance: "VI_1", From: Initialize, To: Backup, Priority: 150, At: at},
		{Instance: "VI_1", From: Backup, To: Master, Priority: 150, At: at},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("OnTransition saw %+v, want %+v", got, want)
	}
}

// TestManagerRefusesSectionWithoutDefaults: configs applies the defaults,
// once (issue 13); an instance that skipped it is refused, not patched.
func TestManagerRefusesSectionWithoutDefaults(t *testing.T) {
	parse := func() configs.VRRPInstance {
		t.Helper()
		c, err := configs.Parse("lb.yaml", []byte("vrrp:\n  instances:\n    - {name: X, interface: lo, virtual_router_id: 1, priority: 100, virtual_ips: [\"192.0.2.1/32\"]}\n"),
			func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return c.VRRP.Instances[0]
	}
	if _, err := New(configs.VRRP{Instances: []configs.VRRPInstance{parse()}}, Options{}); err != nil {
		t.Fatalf("New(parsed) = %v", err)
	}
	for _, tt := range []struct {
		name  string
		strip func(*configs.VRRPInstance)
	}{
		{"higher_prio_send_advert", func(in *configs.VRRPInstance) { in.HigherPrioSendAdvert = nil }},
		{"notify.timeout", func(in *configs.VRRPInstance) { in.Notify.Timeout = 0 }},
		{"garp.repeat", func(in *configs.VRRPInstance) { in.GARP.Repeat = 0 }},
		{"garp.refresh_repeat", func(in *configs.VRRPInstance) { in.GARP.RefreshRepeat = 0 }},
	} {
		in := parse()
		tt.strip(&in)
		if _, err := New(configs.VRRP{Instances: []configs.VRRPInstance{in}}, Options{}); err == nil || !strings.Contains(err.Error(), "defaults not applied") {
			t.Errorf("New without %s's default = %v, want defaults not applied", tt.name, err)
		}
	}
}
