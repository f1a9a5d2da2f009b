//go:build linux

package vip

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
)

// These tests run real VRRP between network namespaces (as root; skipped
// otherwise): the test binary itself is re-executed inside a namespace as
// the LB (TestMain's helper mode), keepalived 2.2 is the peer in the
// interop tests, and a client namespace pings the VIP. Adverts every 100 ms
// keep every failover well under a second.

var (
	vip4test = netip.MustParseAddr("10.99.0.10")
	vip6test = netip.MustParseAddr("2001:db8:99::10")
)

const testAdvert = 100 * time.Millisecond

// newLab4 is hosts a (10.99.0.11), b (.12) and a client c (.100) on one bridge.
func newLab4(t *testing.T) *netnstest.Lab {
	t.Helper()
	netnstest.Require(t)
	return netnstest.NewLab(t,
		netnstest.HostConfig{Name: "a", Addrs: []string{"10.99.0.11/24", "2001:db8:99::11/64"}},
		netnstest.HostConfig{Name: "b", Addrs: []string{"10.99.0.12/24", "2001:db8:99::12/64"}},
		netnstest.HostConfig{Name: "c", Addrs: []string{"10.99.0.100/24", "2001:db8:99::100/64"}},
	)
}

// lb is the helper process running a Manager in a host's namespace.
type lb struct {
	t         *testing.T
	host      *netnstest.Host
	proc      *netnstest.Proc
	conf      string
	status    string
	unhealthy string
	exhaust   string // created by exhaustFDs
}

// instanceYAML is one vrrp instance; extra lines are appended (6 spaces indent).
func instanceYAML(prio int, vips []string, extra ...string) string {
	return instanceYAMLAdvert(prio, testAdvert, vips, extra...)
}

func instanceYAMLAdvert(prio int, advert time.Duration, vips []string, extra ...string) string {
	q := make([]string, len(vips))
	for i, v := range vips {
		q[i] = fmt.Sprintf("%q", v)
	}
	s := fmt.Sprintf(`admin: {listen: "off"}
vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 51
      priority: %d
      advert_interval: %s
      virtual_ips: [%s]
`, prio, advert, strings.Join(q, ", "))
	for _, e := range extra {
		s += "      " + e + "\n"
	}
	return s
}

func startLB(t *testing.T, h *netnstest.Host, yaml string) *lb {
	t.Helper()
	dir := t.TempDir()
	n := &lb{t: t, host: h, conf: filepath.Join(dir, "lb.yaml"), status: filepath.Join(dir, "status.json"), unhealthy: filepath.Join(dir, "unhealthy"), exhaust: filepath.Join(dir, "exhaust")}
	if err := os.WriteFile(n.conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	n.start()
	return n
}

func (n *lb) start() {
	n.t.Helper()
	os.Remove(n.status)
	os.Remove(n.exhaust)
	cmd := n.host.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelperConfig+"="+n.conf, envHelperStatus+"="+n.status, envHelperUnhealthy+"="+n.unhealthy, envHelperExhaust+"="+n.exhaust)
	n.proc = netnstest.Start(n.t, cmd)
}

func (n *lb) state() string { return n.instanceStatus().State.String() }

// instanceStatus is the helper's last written status of its only instance.
func (n *lb) instanceStatus() InstanceStatus {
	b, err := os.ReadFile(n.status)
	if err != nil {
		return InstanceStatus{}
	}
	var st []InstanceStatus
	if json.Unmarshal(b, &st) != nil || len(st) == 0 {
		return InstanceStatus{}
	}
	return st[0]
}

func (n *lb) waitState(want string, d time.Duration) time.Duration {
	n.t.Helper()
	return netnstest.Eventually(n.t, d, fmt.Sprintf("%s is %q, want %s", n.host.Name, n.state(), want), func() bool { return n.state() == want })
}

func (n *lb) stop() {
	n.t.Helper()
	n.proc.Terminate()
	if err := n.proc.Wait(5 * time.Second); err != nil {
		n.t.Fatalf("helper in %s after SIGTERM: %v", n.host.Name, err)
	}
}

func (n *lb) setHealthy(ok bool) {
	if ok {
		os.Remove(n.unhealthy)
	} else {
		os.WriteFile(n.unhealthy, nil, 0o644)
	}
}

func holds(h *netnstest.Host, vip netip.Addr) func() bool {
	return func() bool { return h.HasAddr("eth0", vip) }
}

// waitOnly waits until exactly holder has the VIP among hosts.
func waitOnly(t *testing.T, d time.Duration, vip netip.Addr, holder *netnstest.Host, others ...*netnstest.Host) time.Duration {
	t.Helper()
	return netnstest.Eventually(t, d, fmt.Sprintf("only %s should hold %s", holder.Name, vip), func() bool {
		if !holder.HasAddr("eth0", vip) {
			return false
		}
		for _, o := range others {
			if o.HasAddr("eth0", vip) {
				return false
			}
		}
		return true
	})
}

// clientReaches waits until the client's neighbour entry for vip points at
// holder's MAC and a ping gets through.
func clientReaches(t *testing.T, c *netnstest.Host, vip netip.Addr, holder *netnstest.Host, d time.Duration) {
	t.Helper()
	netnstest.Eventually(t, d, fmt.Sprintf("client should reach %s at %s (%s)", vip, holder.Name, holder.MAC), func() bool {
		return c.Ping(vip) == nil && c.NeighMAC(vip) == holder.MAC.String()
	})
}

func TestNetnsElectionFailoverHandover(t *testing.T) {
	l := newLab4(t)
	a, b, c := l.Hosts["a"], l.Hosts["b"], l.Hosts["c"]
	lbA := startLB(t, a, instanceYAML(150, []string{"10.99.0.10/24"}))
	lbB := startLB(t, b, instanceYAML(100, []string{"10.99.0.10/24"}))

	// Election: A (150) wins after its Master_Down_Interval.
	lbA.waitState("MASTER", 3*time.Second)
	lbB.waitState("BACKUP", time.Second)
	waitOnly(t, time.Second, vip4test, a, b)
	clientReaches(t, c, vip4test, a, 2*time.Second)

	// Crash (SIGKILL): A keeps its VIP (FACTS 5 "kill"); B takes over
	// within its Master_Down_Interval and its GARPs move the client.
	lbA.proc.Crash()
	took := netnstest.Eventually(t, 2*time.Second, "B takes over after A's crash", holds(b, vip4test))
	// 500 ms of slack for a loaded CI machine; a backup not adopting the
	// master's interval would need 3.6 s.
	if limit := MasterDownInterval(100, testAdvert, 3) + 500*time.Millisecond; took > limit {
		t.Errorf("takeover after crash took %s, want at most %s", took, limit)
	}
	lbB.waitState("MASTER", time.Second)
	clientReaches(t, c, vip4test, b, 2*time.Second)

	// A comes back: it removes its stale VIP at start-up, then preempts.
	// Its BACKUP wait includes starting the process, which a loaded
	// machine may take seconds for.
	lbA.start()
	lbA.waitState("BACKUP", 10*time.Second)
	lbA.waitState("MASTER", 2*time.Second)
	waitOnly(t, time.Second, vip4test, a, b)
	lbB.waitState("BACKUP", time.Second)
	clientReaches(t, c, vip4test, a, 2*time.Second)

	// Graceful stop: priority 0, B takes over after Skew_Time.
	lbA.stop()
	netnstest.Eventually(t, 2*time.Second, "B takes over after A's graceful stop", holds(b, vip4test))
	wantLog(t, lbB.proc, "backup received priority 0 advert")
	if a.HasAddr("eth0", vip4test) {
		t.Error("A kept the VIP after a graceful stop")
	}
	clientReaches(t, c, vip4test, b, 2*time.Second)
}

func TestNetnsNopreempt(t *testing.T) {
	l := newLab4(t)
	a, b := l.Hosts["a"], l.Hosts["b"]
	lbB := startLB(t, b, instanceYAML(100, []string{"10.99.0.10/24"}))
	lbB.waitState("MASTER", 2*time.Second)
	lbA := startLB(t, a, instanceYAML(150, []string{"10.99.0.10/24"}, "nopreempt: true"))
	lbA.waitState("BACKUP", 2*time.Second)
	// Several Master_Down_Intervals: the higher-priority A stays backup.
	netnstest.Never(t, 1500*time.Millisecond, "A preempted despite nopreempt", holds(a, vip4test))
	if lbB.state() != "MASTER" {
		t.Fatalf("B is %s, want MASTER", lbB.state())
	}
	// It still takes over when B goes away.
	lbB.stop()
	lbA.waitState("MASTER", time.Second)
	waitOnly(t, time.Second, vip4test, a, b)
}

func TestNetnsUnicast(t *testing.T) {
	l := newLab4(t)
	a, b, c := l.Hosts["a"], l.Hosts["b"], l.Hosts["c"]
	lbA := startLB(t, a, instanceYAML(150, []string{"10.99.0.10/24"}, "unicast_src_ip: 10.99.0.11", "unicast_peers: [10.99.0.12]"))
	lbB := startLB(t, b, instanceYAML(100, []string{"10.99.0.10/24"}, "unicast_peers: [10.99.0.11]"))
	lbA.waitState("MASTER", 3*time.Second)
	lbB.waitState("BACKUP", time.Second)
	// B stays backup: it does hear A's unicast adverts.
	netnstest.Never(t, 500*time.Millisecond, "B took over although A advertises by unicast", holds(b, vip4test))
	clientReaches(t, c, vip4test, a, 2*time.Second)
	lbA.proc.Crash()
	netnstest.Eventually(t, 2*time.Second, "B takes over after A's crash", holds(b, vip4test))
	clientReaches(t, c, vip4test, b, 2*time.Second)
	lbA.start()
	lbA.waitState("MASTER", 3*time.Second)
	waitOnly(t, time.Second, vip4test, a, b)
	lbA.stop()
	netnstest.Eventually(t, time.Second, "B takes over after A's graceful stop", holds(b, vip4test))
}

func TestNetnsUnicastSourceFilter(t *testing.T) {
	l := newLab4(t)
	a, b := l.Hosts["a"], l.Hosts["b"]
	// A lists a peer that is not B: B's adverts are dropped by A, so A
	// becomes master too (and B yields to A's higher priority).
	lbA := startLB(t, a, instanceYAML(100, []string{"10.99.0.10/24"}, "unicast_peers: [10.99.0.12]"))
	lbB := startLB(t, b, instanceYAML(150, []string{"10.99.0.10/24"}, "unicast_peers: [10.99.0.11]", "unicast_src_ip: 10.99.0.12"))
	lbB.waitState("MASTER", 3*time.Second)
	lbA.waitState("BACKUP", time.Second)
	lbB.stop()
	lbA.waitState("MASTER", 2*time.Second)

	cfg := instanceYAML(150, []string{"10.99.0.10/24"}, "unicast_peers: [10.99.0.99]")
	lbB2 := startLB(t, b, cfg)
	// A's adverts come from 10.99.0.11, not a peer of B: B ignores them and
	// takes over. (Its BACKUP phase lasts one MDI, 0.34 s: too short to
	// observe reliably on a busy machine while the helper starts.)
	lbB2.waitState("MASTER", 4*time.Second)
}

func TestNetnsIPv6(t *testing.T) {
	l := newLab4(t)
	a, b, c := l.Hosts["a"], l.Hosts["b"], l.Hosts["c"]
	lbA := startLB(t, a, instanceYAML(150, []string{"2001:db8:99::10/64"}))
	lbB := startLB(t, b, instanceYAML(100, []string{"2001:db8:99::10/64"}))
	lbA.waitState("MASTER", 3*time.Second)
	lbB.waitState("BACKUP", time.Second)
	waitOnly(t, time.Second, vip6test, a, b)
	clientReaches(t, c, vip6test, a, 2*time.Second)
	lbA.proc.Crash()
	netnstest.Eventually(t, 2*time.Second, "B takes over after A's crash", holds(b, vip6test))
	// B's unsolicited NA (Override) moves the client's neighbour entry.
	clientReaches(t, c, vip6test, b, 2*time.Second)
	lbA.start()
	lbA.waitState("MASTER", 3*time.Second)
	waitOnly(t, time.Second, vip6test, a, b)
	clientReaches(t, c, vip6test, a, 2*time.Second)
	lbA.stop()
	netnstest.Eventually(t, time.Second, "B takes over after A's graceful stop", holds(b, vip6test))
}

func TestNetnsTrackingHandover(t *testing.T) {
	l := newLab4(t)
	a, b, c := l.Hosts["a"], l.Hosts["b"], l.Hosts["c"]
	lbA := startLB(t, a, instanceYAML(150, []string{"10.99.0.10/24"}))
	lbB := startLB(t, b, instanceYAML(100, []string{"10.99.0.10/24"}))
	lbA.waitState("MASTER", 3*time.Second)
	lbB.waitState("BACKUP", time.Second)

	// A loses all its nodes: priority 150-253 -> 1, B preempts it.
	lbA.setHealthy(false)
	waitOnly(t, 2*time.Second, vip4test, b, a)
	lbA.waitState("BACKUP", time.Second)
	clientReaches(t, c, vip4test, b, 2*time.Second)

	// Nodes back: A preempts again.
	lbA.setHealthy(true)
	waitOnly(t, 2*time.Second, vip4test, a, b)
	lbA.stop()

	// track_pool mode fault: FAULT drops the VIP at once.
	lbA2 := startLB(t, a, instanceYAML(150, []string{"10.99.0.10/24"}, "track_pool: {mode: fault}"))
	lbA2.waitState("MASTER", 3*time.Second)
	lbA2.setHealthy(false)
	lbA2.waitState("FAULT", time.Second)
	waitOnly(t, time.Second, vip4test, b, a)
	lbA2.setHealthy(true)
	lbA2.waitState("MASTER", 2*time.Second)
}

func TestNetnsSplitBrainHeals(t *testing.T) {
	l := newLab4(t)
	a, b, c := l.Hosts["a"], l.Hosts["b"], l.Hosts["c"]
	lbA := startLB(t, a, instanceYAML(150, []string{"10.99.0.10/24"}))
	lbB := startLB(t, b, instanceYAML(100, []string{"10.99.0.10/24"}))
	lbA.waitState("MASTER", 3*time.Second)
	lbB.waitState("BACKUP", time.Second)
	clientReaches(t, c, vip4test, a, 2*time.Second)

	// A and B can no longer hear each other; the client still reaches both.
	l.Isolate(t, true, "a", "b")
	lbB.waitState("MASTER", 2*time.Second)
	if lbA.state() != "MASTER" {
		t.Fatalf("A is %s, want MASTER (split brain)", lbA.state())
	}
	clientReaches(t, c, vip4test, b, 2*time.Second) // B's takeover GARPs won the client

	// Heal: B hears the higher A and yields; A hears the lower B and
	// answers with an advert plus GARPs, which bring the client back.
	l.Isolate(t, false, "a", "b")
	waitOnly(t, time.Second, vip4test, a, b)
	lbB.waitState("BACKUP", time.Second)
	clientReaches(t, c, vip4test, a, time.Second)
}

func TestNetnsVIPDeletedIsRestored(t *testing.T) {
	l := newLab4(t)
	a := l.Hosts["a"]
	lbA := startLB(t, a, instanceYAML(150, []string{"10.99.0.10/24 label eth0:vip", "10.99.0.20/32"}))
	lbA.waitState("MASTER", 3*time.Second)
	if out := a.MustRun(t, "ip", "-o", "addr", "show", "label", "eth0:vip"); !strings.Contains(out, "10.99.0.10/24") {
		t.Fatalf("label not set: %q", out)
	}
	a.MustRun(t, "ip", "addr", "del", "10.99.0.20/32", "dev", "eth0")
	netnstest.Eventually(t, time.Second, "the deleted VIP is put back", holds(a, netip.MustParseAddr("10.99.0.20")))
	lbA.stop()
	if holds(a, vip4test)() || holds(a, netip.MustParseAddr("10.99.0.20"))() {
		t.Error("VIPs left after a graceful stop")
	}
}

// TestNetnsKeepalivedInterop runs keepalived 2.2 as the peer in both roles,
// in multicast and unicast mode: each side accepts the other's adverts (no
// takeover while the other is master), and failover works both ways.
func TestNetnsKeepalivedInterop(t *testing.T) {
	netnstest.Require(t)
	netnstest.RequireKeepalived(t)
	for _, unicast := range []bool{false, true} {
		for _, kaMaster := range []bool{true, false} {
			name := fmt.Sprintf("unicast=%v/keepalived_master=%v", unicast, kaMaster)
			t.Run(name, func(t *testing.T) {
				keepalivedInterop(t, interopCase{unicast: unicast, kaMaster: kaMaster, version: 3, advert: testAdvert})
			})
		}
	}
}

// interopCase is one keepalived interop run: the VRRP version, its PASS
// password (version 2, "" = none) and the advert interval of both sides.
type interopCase struct {
	unicast, kaMaster bool
	version           int
	authPass          string
	advert            time.Duration
}

func keepalivedInterop(t *testing.T, tc interopCase) {
	l := newLab4(t)
	a, b, c := l.Hosts["a"], l.Hosts["b"], l.Hosts["c"]
	// a runs keepalived, b runs our LB.
	kaPrio, lbPrio := 100, 150
	if tc.kaMaster {
		kaPrio, lbPrio = 150, 100
	}
	ka := netnstest.KeepalivedInstance{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: kaPrio,
		AdvertInterval: tc.advert, VIPs: []string{"10.99.0.10/24"}, Version: tc.version, AuthPass: tc.authPass}
	extra := []string{fmt.Sprintf("version: %d", tc.version)}
	if tc.authPass != "" {
		extra = append(extra, fmt.Sprintf("auth_pass: %q", tc.authPass))
	}
	if tc.unicast {
		ka.UnicastSrc, ka.UnicastPeers = "10.99.0.11", []string{"10.99.0.12"}
		extra = append(extra, "unicast_peers: [10.99.0.11]")
	}
	// Bounds: the backup's (priority 100) Master_Down_Interval and
	// Skew_Time, plus generous slack for a loaded machine.
	mdi, skew := MasterDownInterval(100, tc.advert, 3), SkewTime(100, tc.advert)
	if tc.version == 2 {
		skew = SkewTimeV2(100)
	}
	slack := max(tc.advert, 500*time.Millisecond)
	startKA := func() *netnstest.Keepalived { return netnstest.StartKeepalived(t, a.NS, ka.Config()) }
	kproc := startKA()
	lbB := startLB(t, b, instanceYAMLAdvert(lbPrio, tc.advert, []string{"10.99.0.10/24"}, extra...))

	master, backup := b, a
	if tc.kaMaster {
		master, backup = a, b
	}
	t.Logf("elected %s in %s", master.Name, waitOnly(t, 2*mdi+4*slack, vip4test, master, backup))
	// Stable: the backup accepts the master's adverts for several MDIs.
	netnstest.Never(t, 2*mdi, "the backup took over: it does not accept the master's adverts", holds(backup, vip4test))
	cstart := time.Now()
	clientReaches(t, c, vip4test, master, 2*time.Second)
	t.Logf("client reaches master in %s", time.Since(cstart))

	// Crash the master; the other takes over within its
	// Master_Down_Interval and the client follows.
	crash := func() {
		if tc.kaMaster {
			kproc.Crash()
		} else {
			lbB.proc.Crash()
		}
	}
	restart := func() {
		if tc.kaMaster {
			kproc = startKA()
		} else {
			lbB.start()
		}
	}
	crash()
	took := netnstest.Eventually(t, mdi+4*slack, backup.Name+" takes over after the master's crash", holds(backup, vip4test))
	t.Logf("takeover after crash in %s (Master_Down_Interval %s)", took, mdi)
	if took > mdi+2*slack {
		t.Errorf("takeover after crash took %s, want at most Master_Down_Interval %s + %s", took, mdi, 2*slack)
	}
	clientReaches(t, c, vip4test, backup, 2*time.Second)

	// The master comes back, removes its stale VIP and preempts.
	restart()
	t.Logf("preempted after restart in %s", waitOnly(t, 2*mdi+4*slack, vip4test, master, backup))
	cstart = time.Now()
	clientReaches(t, c, vip4test, master, 2*time.Second)
	t.Logf("client reaches master in %s", time.Since(cstart))

	// Graceful stop: each side sends priority 0 and understands the other's.
	if tc.kaMaster {
		kproc.Terminate()
	} else {
		lbB.stop()
	}
	took = netnstest.Eventually(t, skew+4*slack, backup.Name+" takes over after a graceful stop", holds(backup, vip4test))
	t.Logf("takeover after graceful stop in %s (Skew_Time %s)", took, skew)
	if took > skew+2*slack {
		t.Errorf("takeover after graceful stop took %s, want at most Skew_Time %s + %s", took, skew, 2*slack)
	}
	if tc.kaMaster {
		wantLog(t, lbB.proc, "backup received priority 0 advert")
	} else {
		wantLog(t, kproc.Proc, "Backup received priority 0 advertisement")
	}
	clientReaches(t, c, vip4test, backup, 2*time.Second)
}

// wantLog waits briefly for msg in p's output.
func wantLog(t *testing.T, p *netnstest.Proc, msg string) {
	t.Helper()
	netnstest.Eventually(t, 2*time.Second, fmt.Sprintf("log %q", msg), func() bool { return strings.Contains(p.Out.String(), msg) })
}
