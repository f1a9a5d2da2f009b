package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
)

// aaLab is the active-active setup of docs/operations.md: two mosparo-lb
// processes, each MASTER of one VIP and BACKUP of the other, both
// balancing over the same two emulated nodes; a client reaches both VIPs
// (one DNS name with two A records in production).
type aaLab struct {
	t     *testing.T
	lab   *netnstest.Lab
	dir   string
	bin   string
	lbs   map[string]*netnstest.Proc
	vips  map[string]netip.Addr // instance name -> VIP
	owner map[string]string     // instance name -> LB with the higher priority
}

const aaNodes = "10.99.8.21"

func newAALab(t *testing.T) *aaLab {
	netnstest.Require(t)
	a := &aaLab{t: t, lbs: map[string]*netnstest.Proc{},
		vips:  map[string]netip.Addr{"VI_A": netip.MustParseAddr("10.99.8.101"), "VI_B": netip.MustParseAddr("10.99.8.102")},
		owner: map[string]string{"VI_A": "lb1", "VI_B": "lb2"}}
	node := buildNodeBinary(t)
	a.lab, a.dir, a.bin = newTwoLBLab(t, "10.99.8")
	for i, name := range []string{"n1", "n2"} {
		cmd := a.lab.Hosts["nodes"].Command(node, "-addr", fmt.Sprintf("%s:%d", aaNodes, 9001+i), "-name", name,
			"-health-allow-list", "10.99.8.0/24", "-cron-key", "demo-cron-key")
		netnstest.Start(t, cmd)
	}
	return a
}

// config is lb's file: the same on both LBs but for the two priorities,
// which are swapped, and the web cron follows the master of VI_A.
func (a *aaLab) config(lb string) string {
	prio := func(instance string) int {
		if a.owner[instance] == lb {
			return 150
		}
		return 100
	}
	return fmt.Sprintf(`listen: [{address: "%[1]s:80"}, {address: "%[2]s:80"}]
admin: {listen: "127.0.0.1:9090"}
timeouts: {connect: 300ms, request: 3s}
health: {interval: 200ms, timeout: 150ms, fast_interval: 50ms, down_interval: 100ms, rise: 1, fall: 2, slow_start: 0s}
log: {level: info, access_log: false}
shutdown: {grace: 2s}
vrrp:
  instances:
    - {name: VI_A, interface: eth0, virtual_router_id: 61, priority: %[3]d, advert_interval: 200ms, virtual_ips: ["%[1]s/24"]}
    - {name: VI_B, interface: eth0, virtual_router_id: 62, priority: %[4]d, advert_interval: 200ms, virtual_ips: ["%[2]s/24"]}
cron: {enabled: true, key: demo-cron-key, interval: 1s, timeout: 1s, vrrp_instance: VI_A}
nodes:
  - {name: n1, address: "%[5]s:9001"}
  - {name: n2, address: "%[5]s:9002"}
`, a.vips["VI_A"], a.vips["VI_B"], prio("VI_A"), prio("VI_B"), aaNodes)
}

func (a *aaLab) start(lb string) {
	path := filepath.Join(a.dir, lb+".yaml")
	if err := os.WriteFile(path, []byte(a.config(lb)), 0o644); err != nil {
		a.t.Fatal(err)
	}
	a.lbs[lb] = netnstest.Start(a.t, a.lab.Hosts[lb].Command(a.bin, "run", "-config", path))
}

func (a *aaLab) holds(lb, instance string) bool {
	return a.lab.Hosts[lb].HasAddr("eth0", a.vips[instance])
}

// layout waits until each instance's VIP is held by want[instance] and, when
// alone is set, by no other running LB.
func (a *aaLab) layout(within time.Duration, want map[string]string) time.Duration {
	a.t.Helper()
	return netnstest.Eventually(a.t, within, fmt.Sprintf("VIPs held as %v", want), func() bool {
		for in, lb := range want {
			if !a.holds(lb, in) {
				return false
			}
			for other, p := range a.lbs {
				if other != lb && !p.Exited() && a.holds(other, in) {
					return false
				}
			}
		}
		return true
	})
}

// served fetches /robots.txt through one VIP from the client and returns
// the node that answered ("" when the request failed or the LB answered).
func (a *aaLab) served(instance string) string {
	out, err := a.lab.Hosts["client"].Run("curl", "-s", "-m", "2", "-D", "-", "-o", "/dev/null", "http://"+a.vips[instance].String()+"/robots.txt")
	if err != nil || !strings.HasPrefix(out, "HTTP/1.1 200") {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.ToLower(line), "x-mosparo-node:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// bothServe waits until a node answers through each VIP.
func (a *aaLab) bothServe(within time.Duration) {
	a.t.Helper()
	for _, in := range []string{"VI_A", "VI_B"} {
		netnstest.Eventually(a.t, within, "a node answers through "+in, func() bool { return a.served(in) != "" })
	}
}

// cronCalls reads lb's web-cron call count from its /status (0 if unknown).
func (a *aaLab) cronCalls(lb string) float64 {
	h := haLab{lab: a.lab}
	return h.cronCalls(lb)
}

// TestActiveActive drives two real mosparo-lb processes, each MASTER of one
// VIP and BACKUP of the other (docs/operations.md, "Active-active"): both
// VIPs serve; when one LB crashes the other holds and serves both; when it
// comes back it preempts its own VIP again; and the web cron runs from one
// LB only throughout, the master of cron.vrrp_instance.
func TestActiveActive(t *testing.T) {
	a := newAALab(t)
	a.start("lb1")
	a.start("lb2")
	took := a.layout(10*time.Second, map[string]string{"VI_A": "lb1", "VI_B": "lb2"})
	t.Logf("election: lb1 holds VI_A and lb2 VI_B after %s", took)
	a.bothServe(5 * time.Second)

	// The cron follows VI_A's master: lb1 calls, lb2 never does.
	netnstest.Eventually(t, 10*time.Second, "lb1 calls the web cron", func() bool { return a.cronCalls("lb1") >= 2 })
	if n := a.cronCalls("lb2"); n != 0 {
		t.Errorf("lb2 (BACKUP of VI_A) made %v web-cron calls, want 0", n)
	}

	// lb1 crashes without any chance to clean up: lb2 holds both VIPs and
	// serves both, and takes over the cron.
	a.lbs["lb1"].Crash()
	took = netnstest.Eventually(t, 10*time.Second, "lb2 holds both VIPs", func() bool { return a.holds("lb2", "VI_A") && a.holds("lb2", "VI_B") })
	t.Logf("crash failover: lb2 holds both VIPs %s after SIGKILL", took)
	a.bothServe(5 * time.Second)
	netnstest.Eventually(t, 10*time.Second, "lb2 calls the web cron after the failover", func() bool { return a.cronCalls("lb2") >= 1 })

	// lb1 comes back and preempts VI_A only; the cron moves back with it.
	a.start("lb1")
	took = a.layout(10*time.Second, map[string]string{"VI_A": "lb1", "VI_B": "lb2"})
	t.Logf("preemption: lb1 holds VI_A again %s after its restart", took)
	a.bothServe(5 * time.Second)
	// lb2 sees it lost VI_A at its next poll (cron's Options.Poll, 1s);
	// then its count must stand still while lb1 calls.
	h := haLab{t: t, lab: a.lab}
	netnstest.Eventually(t, 5*time.Second, "lb2 no longer runs the web cron", func() bool { return !h.cronRunner("lb2") })
	was := a.cronCalls("lb2")
	netnstest.Eventually(t, 10*time.Second, "lb1 calls the web cron twice after preempting", func() bool { return a.cronCalls("lb1") >= 2 })
	if now := a.cronCalls("lb2"); now != was {
		t.Errorf("lb2 kept calling the web cron after lb1 took VI_A back: %v -> %v", was, now)
	}
	if !a.holds("lb2", "VI_B") || a.holds("lb1", "VI_B") {
		t.Error("VI_B moved during lb1's return; only VI_A should have")
	}
	// The status page's event list on lb2 tells the story of VI_A.
	if got := a.vrrpEvents("lb2", "VI_A"); !strings.Contains(got, "BACKUP->MASTER") || !strings.HasSuffix(got, "MASTER->BACKUP") {
		t.Errorf("lb2's VI_A events = %q, want it to have taken VI_A over and given it back", got)
	}
}

// vrrpEvents lists the transitions of instance in lb's /status events,
// oldest first, as "FROM->TO FROM->TO".
func (a *aaLab) vrrpEvents(lb, instance string) string {
	h := haLab{lab: a.lab}
	evs, _ := h.status(lb)["events"].([]any)
	var out []string
	for _, e := range evs {
		ev, _ := e.(map[string]any)
		if ev["kind"] == "vrrp" && ev["subject"] == instance {
			out = append([]string{fmt.Sprintf("%v->%v", ev["from"], ev["to"])}, out...)
		}
	}
	return strings.Join(out, " ")
}
