package vip

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
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
	if len(st) != 2 || st[0].Name != "VI_1" || st[0].State != "INIT" || st[0].EffectivePriority != 150 ||
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
