// Package netnstest builds throw-away network labs for tests that run as
// root: network namespaces, veth pairs into a Linux bridge, processes started
// inside a namespace (a re-executed test binary, keepalived, ping), and
// cleanup that always runs (t.Cleanup), even when a test fails.
//
// Everything is done with the iproute2 `ip` and `bridge` commands, as an
// operator would; FACTS 6 of vrrp/FACTS.md lists the pitfalls handled here
// (processes survive `ip netns del`, zombies pass `kill -0`, DAD delays,
// multicast snooping on bridges).
package netnstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv, set to 1 (CI does), turns every skip of these helpers into a
// failure: on CI a missing root or keepalived must not pass silently.
const RequireEnv = "MOSPARO_LB_REQUIRE_ROOT_TESTS"

func skip(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg + " (" + RequireEnv + "=1)")
	}
	t.Skip(msg)
}

// Require skips t unless it runs as root on Linux with `ip` available.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip(t, "needs iproute2's ip command")
	}
}

// NS is one network namespace.
type NS struct {
	Name string
}

var seq struct {
	sync.Mutex
	n int
}

// uniqueName returns prefix plus a process- and call-unique suffix, so that
// parallel test binaries never collide.
func uniqueName(prefix string) string {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	return fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), n)
}

// NewNS creates a namespace with lo up. Cleanup kills whatever still runs
// inside and deletes it.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	ns := &NS{Name: uniqueName(prefix)}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(ns.destroy)
	ns.MustRun(t, "ip", "link", "set", "lo", "up")
	// IPv6 addresses usable at once: no duplicate address detection.
	ns.MustRun(t, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	return ns
}

// destroy kills every process left in the namespace, then deletes it.
func (ns *NS) destroy() {
	for range 3 {
		out, _ := exec.Command("ip", "netns", "pids", ns.Name).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	exec.Command("ip", "netns", "del", ns.Name).Run()
}

// Command returns cmd prepared to run inside the namespace.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output.
func (ns *NS) Run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns.Name, err, out)
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (ns *NS) MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Proc is a process started in a namespace, in its own process group.
type Proc struct {
	Cmd  *exec.Cmd
	Out  *SyncBuffer
	done chan struct{}
	err  error
}

// SyncBuffer is a bytes.Buffer safe for a writing process and a reading test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts cmd (from Command) with stdout and stderr captured. Cleanup
// kills its whole process group and logs its output when the test failed.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Out: &SyncBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.Out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(cmd.Args, " "), tail(p.Out.String(), 8000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Pid is the process id (`ip netns exec` execs, so it is the real one).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to the whole process group while the leader runs. Once
// it has exited its pid may be reused, so nothing is sent; what is left of
// the group dies with the namespace (NS cleanup kills by namespace).
func (p *Proc) Signal(sig syscall.Signal) {
	if !p.Exited() {
		syscall.Kill(-p.Pid(), sig)
	}
}

// Terminate sends SIGTERM to the process alone (keepalived's parent then
// stops its children itself, as under systemd).
func (p *Proc) Terminate() {
	p.Cmd.Process.Signal(syscall.SIGTERM) // os.Process refuses once waited for
}

// Crash freezes the whole group, then SIGKILLs it: no process gets a chance
// to clean up, and a supervising parent cannot respawn a child (FACTS 6).
func (p *Proc) Crash() {
	p.Signal(syscall.SIGSTOP)
	p.Signal(syscall.SIGKILL)
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to exit and returns its error.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return errors.New("netnstest: process still running")
	}
}

// Host is a namespace with one interface eth0 plugged into the lab's bridge.
type Host struct {
	*NS
	If    string // "eth0"
	Port  string // its bridge port in the switch namespace
	Addrs []netip.Prefix
	MAC   net.HardwareAddr
}

// Addr4 is the host's first IPv4 address.
func (h *Host) Addr4() netip.Addr { return h.first(false) }

// Addr6 is the host's first global IPv6 address.
func (h *Host) Addr6() netip.Addr { return h.first(true) }

func (h *Host) first(is6 bool) netip.Addr {
	for _, p := range h.Addrs {
		if p.Addr().Is6() == is6 {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// HostConfig describes a host of a Lab.
type HostConfig struct {
	Name  string   // short, used in namespace names
	Addrs []string // CIDRs for eth0, e.g. 10.99.0.11/24, 2001:db8::11/64
}

// Lab is a switch namespace with a bridge (STP and multicast snooping off)
// and hosts plugged into it.
type Lab struct {
	Switch *NS
	Bridge string
	Hosts  map[string]*Host
}

// NewLab builds the lab; everything is removed at cleanup.
func NewLab(t testing.TB, hosts ...HostConfig) *Lab {
	t.Helper()
	l := &Lab{Switch: NewNS(t, "sw"), Bridge: "br0", Hosts: map[string]*Host{}}
	l.Switch.MustRun(t, "ip", "link", "add", l.Bridge, "type", "bridge", "stp_state", "0", "mcast_snooping", "0", "forward_delay", "0")
	l.Switch.MustRun(t, "ip", "link", "set", l.Bridge, "up")
	for i, hc := range hosts {
		h := &Host{NS: NewNS(t, hc.Name), If: "eth0", Port: fmt.Sprintf("p%d", i)}
		// Both ends created directly inside their namespaces (FACTS 5).
		if out, err := exec.Command("ip", "link", "add", "eth0", "netns", h.Name, "type", "veth", "peer", "name", h.Port, "netns", l.Switch.Name).CombinedOutput(); err != nil {
			t.Fatalf("veth for %s: %v: %s", hc.Name, err, out)
		}
		l.Switch.MustRun(t, "ip", "link", "set", h.Port, "master", l.Bridge, "up")
		for _, a := range hc.Addrs {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				t.Fatalf("host %s address %q: %v", hc.Name, a, err)
			}
			h.Addrs = append(h.Addrs, p)
			h.MustRun(t, "ip", "addr", "add", a, "dev", "eth0")
		}
		h.MustRun(t, "ip", "link", "set", "eth0", "up")
		mac := strings.TrimSpace(h.MustRun(t, "cat", "/sys/class/net/eth0/address"))
		h.MAC, _ = net.ParseMAC(mac)
		l.Hosts[hc.Name] = h
	}
	return l
}

// Isolate makes the bridge ports of the named hosts unable to reach each
// other while everyone else still reaches them (bridge port isolation): a
// split brain with the clients still connected to both sides.
func (l *Lab) Isolate(t testing.TB, on bool, hosts ...string) {
	t.Helper()
	v := "off"
	if on {
		v = "on"
	}
	for _, h := range hosts {
		l.Switch.MustRun(t, "bridge", "link", "set", "dev", l.Hosts[h].Port, "isolated", v)
	}
}

// HasAddr reports whether addr is configured on dev in ns.
func (ns *NS) HasAddr(dev string, addr netip.Addr) bool {
	out, err := ns.Run("ip", "-o", "addr", "show", "dev", dev)
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr() == addr {
			return true
		}
	}
	return false
}

// NeighMAC is ns's neighbour-table MAC for addr ("" when none).
func (ns *NS) NeighMAC(addr netip.Addr) string {
	out, _ := ns.Run("ip", "neigh", "show", addr.String())
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1]
		}
	}
	return ""
}

// Ping sends one echo request to addr with a short timeout.
func (ns *NS) Ping(addr netip.Addr) error {
	_, err := ns.Run("ping", "-c", "1", "-W", "1", addr.String())
	return err
}

// Eventually polls cond every 10 ms until it holds or d has passed, and
// returns how long it took.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Never fails t when cond holds at any poll during d.
func Never(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			t.Fatalf("%s", what)
		}
	}
}

// Keepalived is a keepalived daemon (VRRP subsystem only) inside a namespace.
type Keepalived struct {
	*Proc
	Conf string
}

// KeepalivedPath is the binary the helpers start (Debian's package).
const KeepalivedPath = "/usr/sbin/keepalived"

// RequireKeepalived skips t when keepalived is not installed.
func RequireKeepalived(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(KeepalivedPath); err != nil {
		skip(t, "needs keepalived (apt-get install keepalived)")
	}
}

// StartKeepalived writes conf and runs keepalived in the foreground in ns,
// logging to the console, with its own pid files.
func StartKeepalived(t testing.TB, ns *NS, conf string) *Keepalived {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(KeepalivedPath, "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
		"--use-file", path, "--pid", filepath.Join(dir, "keepalived.pid"), "--vrrp_pid", filepath.Join(dir, "vrrp.pid"),
		"--checkers_pid", filepath.Join(dir, "checkers.pid"))
	return &Keepalived{Proc: Start(t, cmd), Conf: path}
}

// KeepalivedInstance renders one vrrp_instance plus global_defs.
type KeepalivedInstance struct {
	Name           string
	Interface      string
	VRID           int
	Priority       int
	AdvertInterval time.Duration
	VIPs           []string
	UnicastSrc     string
	UnicastPeers   []string
	Nopreempt      bool

	// Version is vrrp_version, 2 or 3; 0 means 3.
	Version int
	// AuthPass, when set, adds authentication { auth_type PASS } (version 2).
	AuthPass string
}

// Config renders a whole keepalived.conf for k.
func (k KeepalivedInstance) Config() string {
	var b strings.Builder
	version := k.Version
	if version == 0 {
		version = 3
	}
	fmt.Fprintf(&b, "global_defs {\n  vrrp_version %d\n  router_id %s\n  script_user root\n}\n", version, k.Name)
	fmt.Fprintf(&b, "vrrp_instance %s {\n  state BACKUP\n  interface %s\n  virtual_router_id %d\n  priority %d\n  advert_int %s\n",
		k.Name, k.Interface, k.VRID, k.Priority, strconv.FormatFloat(k.AdvertInterval.Seconds(), 'f', -1, 64))
	if k.Nopreempt {
		b.WriteString("  nopreempt\n")
	}
	if k.AuthPass != "" {
		fmt.Fprintf(&b, "  authentication {\n    auth_type PASS\n    auth_pass %s\n  }\n", k.AuthPass)
	}
	if k.UnicastSrc != "" {
		fmt.Fprintf(&b, "  unicast_src_ip %s\n", k.UnicastSrc)
	}
	if len(k.UnicastPeers) > 0 {
		b.WriteString("  unicast_peer {\n")
		for _, p := range k.UnicastPeers {
			fmt.Fprintf(&b, "    %s\n", p)
		}
		b.WriteString("  }\n")
	}
	b.WriteString("  virtual_ipaddress {\n")
	for _, v := range k.VIPs {
		fmt.Fprintf(&b, "    %s\n", v)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}
