package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
	"github.com/mosparo-lb/mosparo-lb/vip"
	"go.uber.org/zap/zaptest"
)

// envInNetns, set by TestReleaseVRRP for its own re-execution inside a
// network namespace, makes the test run its body there (VRRP adds its VIP
// to an interface, which must not be the host's).
const envInNetns = "MOSPARO_LB_DAEMON_TEST_NETNS"

const (
	releaseIface = "vr0"
	releaseVIP   = "10.98.1.100"
)

// TestReleaseVRRP is the old process's side of a binary upgrade's VRRP
// handover: ReleaseVRRP refuses, releasing nothing, an answer in which the
// new process is not master of an instance this one is master of
// (ErrNotTakenOver: the upgrade must not go on, and a stop then hands the
// VIP over as usual); it refuses a malformed answer (vip.ErrHandover); an
// answer that took the master over releases it, so a stop keeps the VIP for
// the successor; ReclaimVRRP undoes that. Run as root in a namespace of
// its own, with the veth vr0.
func TestReleaseVRRP(t *testing.T) {
	if os.Getenv(envInNetns) == "" {
		netnstest.Require(t)
		ns := netnstest.NewNS(t, "rel")
		// A veth pair: both ends up, so vr0 has carrier (VRRP tracks it).
		ns.MustRun(t, "ip", "link", "add", releaseIface, "type", "veth", "peer", "name", "vr1")
		ns.MustRun(t, "ip", "addr", "add", "10.98.1.1/24", "dev", releaseIface)
		ns.MustRun(t, "ip", "link", "set", "vr1", "up")
		ns.MustRun(t, "ip", "link", "set", releaseIface, "up")
		cmd := ns.Command(os.Args[0], "-test.run=^TestReleaseVRRP$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), envInNetns+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in the namespace: %v\n%s", err, out)
		}
		t.Logf("in the namespace:\n%s", out)
		return
	}
	nodes := startNodes(t, 1)
	path := filepath.Join(t.TempDir(), "lb.yaml")
	cfg := calm(testBase) + nodesYAML(nodes) + fmt.Sprintf(`vrrp:
  instances:
    - {name: VI_1, interface: %s, virtual_router_id: 61, priority: 100, advert_interval: 100ms, virtual_ips: ["%s/24"]}
`, releaseIface, releaseVIP)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// run starts a daemon, waits until it is master and holds the VIP,
	// applies act, stops it and reports whether the VIP outlived it.
	run := func(t *testing.T, act func(d *Daemon)) (kept bool) {
		t.Helper()
		d, err := New(context.Background(), Options{Path: path, Loggers: &Loggers{Main: zaptest.NewLogger(t)}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		stopped := false
		stop := func() {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		}
		defer func() {
			if !stopped {
				stop()
			}
		}()
		if !eventually(20*time.Second, func() bool {
			st := d.Snapshot().VRRP
			return len(st) == 1 && st[0].State == vip.Master && holdsVIP(t)
		}) {
			t.Fatalf("never master with the VIP: %+v", d.Snapshot().VRRP)
		}
		act(d)
		stop()
		return holdsVIP(t)
	}
	answer := func(t *testing.T, s vip.State) []byte {
		t.Helper()
		b, err := vip.EncodeHandover([]vip.HandoverState{{Name: "VI_1", Interface: releaseIface, VRID: 61, State: s, Holding: s == vip.Master}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dropVIP := func() {
		if holdsVIP(t) {
			if out, err := exec.Command("ip", "addr", "del", releaseVIP+"/24", "dev", releaseIface).CombinedOutput(); err != nil {
				t.Fatalf("ip addr del: %v: %s", err, out)
			}
		}
	}

	t.Run("not taken over", func(t *testing.T) {
		kept := run(t, func(d *Daemon) {
			for _, s := range []vip.State{vip.Backup, vip.Fault, vip.Initialize} {
				took, err := d.ReleaseVRRP(answer(t, s))
				if !errors.Is(err, ErrNotTakenOver) || took != nil {
					t.Errorf("ReleaseVRRP(new process %s) = %v, %v; want nil, ErrNotTakenOver", s, took, err)
				}
			}
		})
		if kept {
			t.Error("after a refused release the stopped daemon left its VIP behind; want it handed over as usual")
		}
		dropVIP()
	})
	t.Run("malformed answer", func(t *testing.T) {
		kept := run(t, func(d *Daemon) {
			for _, b := range []string{"", "{", `[{"interface":"","vrid":61,"state":"MASTER"}]`, `[{"interface":"vr0","vrid":0}]`} {
				if took, err := d.ReleaseVRRP([]byte(b)); !errors.Is(err, vip.ErrHandover) || took != nil {
					t.Errorf("ReleaseVRRP(%q) = %v, %v; want nil, vip.ErrHandover", b, took, err)
				}
			}
		})
		if kept {
			t.Error("after malformed answers the stopped daemon left its VIP behind")
		}
		dropVIP()
	})
	t.Run("taken over", func(t *testing.T) {
		kept := run(t, func(d *Daemon) {
			took, err := d.ReleaseVRRP(answer(t, vip.Master))
			if err != nil || len(took) != 1 {
				t.Errorf("ReleaseVRRP(new process master) = %v, %v; want the instance released", took, err)
			}
		})
		if !kept {
			t.Error("a released instance removed its VIP when it stopped; the successor holds it")
		}
		dropVIP()
	})
	t.Run("reclaimed", func(t *testing.T) {
		kept := run(t, func(d *Daemon) {
			if _, err := d.ReleaseVRRP(answer(t, vip.Master)); err != nil {
				t.Fatal(err)
			}
			d.ReclaimVRRP()
		})
		if kept {
			t.Error("a reclaimed instance left its VIP behind when it stopped")
		}
		dropVIP()
	})
}

// holdsVIP reports whether releaseIface carries releaseVIP.
func holdsVIP(t *testing.T) bool {
	t.Helper()
	ifi, err := net.InterfaceByName(releaseIface)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.String() == releaseVIP {
			return true
		}
	}
	return false
}
