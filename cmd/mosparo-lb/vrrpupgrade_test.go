package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
)

// vrrpUpgradeLab is the HA lab with lb1 a mosparo-lb that can be upgraded
// (PID file, output to a file, so that a new process outliving lb1 does not
// hold a pipe of the test open) and lb2 a real keepalived of lower
// priority for the same virtual router, watched on the wire by tcpdump.
type vrrpUpgradeLab struct {
	*haLab
	pidFile string
	logs    func() string
	ka      *netnstest.Keepalived
	wire    *netnstest.Proc // tcpdump of VRRP in lb2's namespace
}

func newVRRPUpgradeLab(t *testing.T) *vrrpUpgradeLab {
	return newVRRPUpgradeLabPeer(t, 100)
}

// newVRRPUpgradeLabPeer builds the lab with keepalived at peerPrio: below
// lb1's 150 it starts second and stays BACKUP; above, it starts first,
// is MASTER, and lb1 joins as BACKUP.
func newVRRPUpgradeLabPeer(t *testing.T, peerPrio int) *vrrpUpgradeLab {
	netnstest.RequireKeepalived(t)
	if _, err := os.Stat("/usr/bin/tcpdump"); err != nil {
		t.Skip("needs tcpdump to count the adverts on the wire")
	}
	l := &vrrpUpgradeLab{haLab: newHALab(t)}
	// The HA lab's 200 ms adverts and 150 ms health timeouts are for
	// failover times; here a stall of the busy test machine must not look
	// like a dead master or a dead node (Master_Down_Interval 3.6 s).
	r := strings.NewReplacer("advert_interval: 200ms", "advert_interval: "+vrrpUpgradeAdvert.String(),
		"health: {interval: 200ms, timeout: 150ms, fast_interval: 50ms, down_interval: 100ms, rise: 1, fall: 2, slow_start: 0s}",
		"health: {interval: 1s, timeout: 800ms, fast_interval: 500ms, down_interval: 500ms, rise: 1, fall: 3, slow_start: 0s}",
		"connect: 300ms", "connect: 2s")
	l.config["lb1"] = r.Replace(l.config["lb1"])
	if !strings.Contains(l.config["lb1"], "advert_interval: 1s") || !strings.Contains(l.config["lb1"], "timeout: 800ms") {
		t.Fatalf("the HA lab's configuration changed; adapt this lab:\n%s", l.config["lb1"])
	}
	subreaper(t) // the upgraded processes outlive lb1, as under systemd
	l.pidFile = filepath.Join(l.dir, "lb1.pid")
	path := filepath.Join(l.dir, "lb1.yaml")
	if err := os.WriteFile(path, []byte(l.config["lb1"]), 0o644); err != nil {
		t.Fatal(err)
	}
	l.wire = netnstest.Start(t, l.lab.Hosts["lb2"].Command("tcpdump", "-l", "-n", "-tt", "-i", "eth0", "ip proto 112"))
	netnstest.Eventually(t, 10*time.Second, "tcpdump listens", func() bool { return strings.Contains(l.wire.Out.String(), "listening on") })
	startKA := func() {
		l.ka = netnstest.StartKeepalived(t, l.lab.Hosts["lb2"].NS, netnstest.KeepalivedInstance{Name: "VI_1", Interface: "eth0", VRID: 57,
			Priority: peerPrio, AdvertInterval: vrrpUpgradeAdvert, VIPs: []string{haVIP + "/24"}}.Config())
	}
	if peerPrio > 150 {
		startKA()
		netnstest.Eventually(t, 10*time.Second, "keepalived is MASTER", func() bool { return strings.Contains(l.ka.Out.String(), "Entering MASTER STATE") })
	}
	out, logs := logFile(t)
	l.logs = logs
	cmd := l.lab.Hosts["lb1"].Command(l.bin, "run", "-config", path, "-pid-file", l.pidFile, "-upgrade-timeout", "8s")
	cmd.Stdout, cmd.Stderr = out, out
	l.lbs["lb1"] = netnstest.Start(t, cmd)
	t.Cleanup(func() {
		if pid, err := readPIDFile(l.pidFile); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			reap(pid, 10*time.Second)
		}
		if t.Failed() {
			t.Logf("mosparo-lb log:\n%s", logs())
		}
	})
	if peerPrio > 150 {
		netnstest.Eventually(t, 10*time.Second, "lb1 is BACKUP", func() bool { return l.vrrpState() == "BACKUP" })
	} else {
		l.master("lb1", 10*time.Second)
		startKA()
		netnstest.Eventually(t, 10*time.Second, "keepalived is BACKUP", func() bool { return strings.Contains(l.ka.Out.String(), "Entering BACKUP STATE") })
	}
	waitPIDFile(t, l.pidFile, l.lbs["lb1"].Pid(), logs)
	return l
}

// vrrpState is lb1's VI_1 state as its /status says ("" when unknown).
func (l *vrrpUpgradeLab) vrrpState() string {
	vrrp, _ := l.status("lb1")["vrrp"].([]any)
	if len(vrrp) != 1 {
		return ""
	}
	s, _ := vrrp[0].(map[string]any)["state"].(string)
	return s
}

// vrrpUpgradeAdvert is the advert interval of both routers of the lab.
const vrrpUpgradeAdvert = time.Second

// upgrade runs `mosparo-lb upgrade` and waits until the old process has
// exited; it returns the new PID.
func (l *vrrpUpgradeLab) upgrade(old int) int {
	l.t.Helper()
	start := time.Now()
	defer func() {
		l.t.Logf("upgrade from pid %d: %s to %s", old, start.Format("15:04:05.000"), time.Now().Format("15:04:05.000"))
	}()
	b, err := l.lab.Hosts["lb1"].Command(l.bin, "upgrade", "-pid-file", l.pidFile, "-timeout", "90s").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "took over") {
		l.t.Fatalf("mosparo-lb upgrade: %v\n%s", err, b)
	}
	next, err := readPIDFile(l.pidFile)
	if err != nil || next == old {
		l.t.Fatalf("pid file after the upgrade = %d, %v; old pid %d", next, err, old)
	}
	if old != l.lbs["lb1"].Pid() && !reap(old, time.Minute) || old == l.lbs["lb1"].Pid() && l.lbs["lb1"].Wait(time.Minute) != nil {
		l.t.Fatalf("the old process %d did not exit cleanly after the upgrade", old)
	}
	return next
}

// advertStats reads tcpdump's record of the adverts from lb1's address:
// how many, how many with priority 0, and the longest gap between two
// (and when it ended).
func (l *vrrpUpgradeLab) advertStats() (n, prio0 int, maxGap time.Duration, gapEnd time.Time) {
	var last float64
	for _, line := range strings.Split(l.wire.Out.String(), "\n") {
		f := strings.Fields(line)
		// 1764969000.123456 IP 10.99.7.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 57, prio 150, intvl 20cs, ...
		if len(f) < 4 || f[2] != "10.99.7.11" || !strings.Contains(line, "vrid 57,") {
			continue
		}
		at, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		n++
		if strings.Contains(line, "prio 0,") {
			prio0++
		}
		if gap := time.Duration((at - last) * float64(time.Second)); last != 0 && gap > maxGap {
			maxGap, gapEnd = gap, time.Unix(0, int64(at*1e9))
		}
		last = at
	}
	return n, prio0, maxGap, gapEnd
}

// timeline samples who holds the VIP until stop is called and returns the
// changes, "+1.234s lb1" per line.
// checkLB1KeptTheVIP checks what the upgrades of the master lb1 must not
// have caused: a priority-0 advert, another VIP holder in the timeline's
// changes, or keepalived becoming MASTER.
func (l *vrrpUpgradeLab) checkLB1KeptTheVIP(t *testing.T, changes []string) {
	t.Helper()
	t.Logf("VIP holder timeline: %s", strings.Join(changes, ", "))
	n, prio0, gap, gapEnd := l.advertStats()
	t.Logf("adverts from lb1 on the wire: %d, priority 0: %d, longest gap %s ending at %s", n, prio0, gap, gapEnd.Format("15:04:05.000"))
	if prio0 != 0 {
		t.Errorf("%d priority-0 adverts from lb1, want 0", prio0)
	}
	if len(changes) != 1 || !strings.HasSuffix(changes[0], " lb1") {
		t.Errorf("VIP holders %v, want lb1 throughout", changes)
	}
	if out := l.ka.Out.String(); strings.Contains(out, "Entering MASTER STATE") {
		t.Errorf("keepalived became MASTER:\n%s", out)
	}
}

func (l *vrrpUpgradeLab) timeline() (stop func() []string) {
	var (
		mu      sync.Mutex
		changes []string
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		last := "?"
		for {
			var who []string
			for _, lb := range []string{"lb1", "lb2"} {
				if l.holdsVIP(lb) {
					who = append(who, lb)
				}
			}
			now := strings.Join(who, "+")
			if now == "" {
				now = "nobody"
			}
			if now != last {
				mu.Lock()
				changes = append(changes, fmt.Sprintf("+%.3fs %s", time.Since(start).Seconds(), now))
				mu.Unlock()
				last = now
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return changes
	}
}

// envForward makes the test binary a forwarder (TestMain): it accepts on a
// Unix socket and connects each connection to a TCP address, from the
// network namespace it runs in.
const envForward = "MOSPARO_LB_TEST_FORWARD" // "unix-path tcp-address"

// forwardMain runs the forwarder until killed. A connection it cannot make
// is closed at once, which the client counts as a failed request.
func forwardMain(spec string) int {
	path, target, ok := strings.Cut(spec, " ")
	if !ok {
		return 2
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return 2
		}
		go func() {
			defer c.Close()
			u, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				fmt.Fprintln(os.Stderr, "forward:", err)
				return
			}
			defer u.Close()
			done := make(chan struct{})
			go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); close(done) }()
			io.Copy(c, u)
			c.(*net.UnixConn).CloseWrite()
			<-done
		}()
	}
}

// nsDialer connects to target from inside the namespace ns: through a
// forwarder (the test binary re-executed there), since a socket belongs to
// the namespace of the thread that makes it and the test's own threads
// must stay where they are.
func nsDialer(t *testing.T, ns *netnstest.NS, target string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "forward.sock")
	cmd := ns.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envForward+"="+path+" "+target)
	netnstest.Start(t, cmd)
	netnstest.Eventually(t, 10*time.Second, "the forwarder listens", func() bool { _, err := os.Stat(path); return err == nil })
	var d net.Dialer
	return func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "unix", path) }
}

// TestUpgradeWithVRRPUnderLoad: the master of a virtual router whose backup
// is a real keepalived is upgraded twice (`mosparo-lb upgrade`) while a
// client in its own namespace sends requests through the VIP. The new
// process adopts the instance as MASTER and advertises at once, the old one
// stops advertising without priority 0 once the new one runs it: no
// request fails, keepalived never leaves BACKUP, no priority-0 advert is on
// the wire and the VIP never leaves lb1.
func TestUpgradeWithVRRPUnderLoad(t *testing.T) {
	l := newVRRPUpgradeLab(t)
	stopTimeline := l.timeline()
	load := startLoadVia(t, haVIP+":80", 4, 100000, nsDialer(t, l.lab.Hosts["client"].NS, haVIP+":80"))
	load.waitSent(t, 200)
	pid := l.lbs["lb1"].Pid()
	for i := 0; i < 2; i++ {
		pid = l.upgrade(pid)
		load.waitSent(t, 300)
	}
	// Longer than Master_Down_Interval (3 × 1s + skew): a missing advert
	// would have made keepalived master by now.
	time.Sleep(4 * time.Second)
	load.report(t)
	l.checkLB1KeptTheVIP(t, stopTimeline())
	logs := l.logs()
	if c := strings.Count(logs, "upgrade: the old process let go of its VRRP instances"); c != 2 {
		t.Errorf("%d new processes logged the committed handover, want 2", c)
	}
	if got := l.vrrpState(); got != "MASTER" {
		t.Errorf("the upgraded process's VI_1 is %q, want MASTER", got)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if !reap(pid, time.Minute) {
		t.Errorf("the last process %d did not exit on SIGTERM", pid)
	}
	// Its ordinary stop hands the VIP over with priority 0.
	netnstest.Eventually(t, 5*time.Second, "keepalived takes over after the LB stopped", func() bool {
		return strings.Contains(l.ka.Out.String(), "Entering MASTER STATE")
	})
}

// TestUpgradeWithVRRPFailureKeepsTheVIP: the new binary cannot open the
// VRRP socket (it runs without CAP_NET_RAW), so it never becomes master of
// what it was handed. The old process keeps the VIP, advertises throughout
// and serves; after the upgrade timeout it stops the new process, which
// gives up nothing, and says so. With the binary fixed, the next upgrade
// succeeds.
func TestUpgradeWithVRRPFailureKeepsTheVIP(t *testing.T) {
	l := newVRRPUpgradeLab(t)
	real := l.bin + ".real"
	if err := os.Link(l.bin, real); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(l.dir, "broken")
	script := "#!/bin/sh\nexec setpriv --bounding-set=-net_raw -- " + real + " \"$@\"\n"
	if err := os.WriteFile(broken, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, l.bin); err != nil {
		t.Fatal(err)
	}
	stopTimeline := l.timeline()
	load := startLoadVia(t, haVIP+":80", 4, 100000, nsDialer(t, l.lab.Hosts["client"].NS, haVIP+":80"))
	load.waitSent(t, 200)
	first := l.lbs["lb1"].Pid()
	b, err := l.lab.Hosts["lb1"].Command(real, "upgrade", "-pid-file", l.pidFile, "-timeout", "12s").CombinedOutput()
	if err == nil {
		t.Fatalf("mosparo-lb upgrade with a broken binary succeeded:\n%s", b)
	}
	const failed = "upgrade failed; this process keeps serving and keeps its VRRP instances"
	waitLog(t, l.logs, failed)
	for _, line := range strings.Split(l.logs(), "\n") {
		if strings.Contains(line, failed) {
			t.Logf("lb1 says: %s", line)
		}
	}
	load.waitSent(t, 300)
	if l.lbs["lb1"].Exited() {
		t.Fatal("lb1 exited after the failed upgrade")
	}
	if pid, err := readPIDFile(l.pidFile); err != nil || pid != first {
		t.Errorf("pid file after the failed upgrade = %d, %v, want %d", pid, err, first)
	}

	// The binary fixed, the upgrade goes through.
	if err := os.Rename(real, l.bin); err != nil {
		t.Fatal(err)
	}
	pid := l.upgrade(first)
	load.waitSent(t, 300)
	time.Sleep(4 * time.Second)
	load.report(t)
	l.checkLB1KeptTheVIP(t, stopTimeline())
	syscall.Kill(pid, syscall.SIGTERM)
	reap(pid, time.Minute)
}

// TestUpgradeWithVRRPAsBackup: an LB that is BACKUP (keepalived has the
// higher priority and the VIP) is upgraded; the new process starts the
// instance as a new BACKUP, the VIP stays with keepalived, which never
// leaves MASTER, and lb1 never adds it.
func TestUpgradeWithVRRPAsBackup(t *testing.T) {
	l := newVRRPUpgradeLabPeer(t, 200)
	stopTimeline := l.timeline()
	pid := l.upgrade(l.lbs["lb1"].Pid())
	// Longer than lb1's Master_Down_Interval: a new backup that did not
	// hear the master would have taken over by now.
	time.Sleep(4 * time.Second)
	changes := stopTimeline()
	t.Logf("VIP holder timeline: %s", strings.Join(changes, ", "))
	if len(changes) != 1 || !strings.HasSuffix(changes[0], " lb2") {
		t.Errorf("VIP holders %v, want keepalived (lb2) throughout", changes)
	}
	if got := l.vrrpState(); got != "BACKUP" {
		t.Errorf("the upgraded process's VI_1 is %q, want BACKUP", got)
	}
	out := l.ka.Out.String()
	if _, after, _ := strings.Cut(out, "Entering MASTER STATE"); strings.Count(out, "Entering MASTER STATE") != 1 || strings.Contains(after, "Entering BACKUP STATE") {
		t.Errorf("keepalived left MASTER during the upgrade:\n%s", out)
	}
	if n, _, _, _ := l.advertStats(); n != 0 {
		t.Errorf("lb1 sent %d adverts as backup, want 0", n)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	reap(pid, time.Minute)
}
