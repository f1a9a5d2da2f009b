package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
)

// haLab is two mosparo-lb processes sharing a VIP in network namespaces,
// two emulated mosparo nodes in a third, and a client in a fourth.
type haLab struct {
	t      *testing.T
	lab    *netnstest.Lab
	dir    string // world-readable: lb2 runs as uid 65534
	bin    string
	node   string // mosparo-node binary
	vip    netip.Addr
	lbs    map[string]*netnstest.Proc
	nodes  map[string]*netnstest.Proc
	config map[string]string
}

const (
	haVIP   = "10.99.7.100"
	haNodes = "10.99.7.21"
)

func buildNodeBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mosparo-node")
	if out, err := exec.Command("go", "build", "-o", bin, "../mosparo-node").CombinedOutput(); err != nil {
		t.Fatalf("go build mosparo-node: %v\n%s", err, out)
	}
	return bin
}

// newTwoLBLab is the network of the HA tests on subnet/24 (such as
// "10.99.7"): hosts lb1 (.11), lb2 (.12), nodes (.21) and client (.31), and
// the mosparo-lb binary built into dir, which is world-readable because lb2
// runs as uid 65534.
func newTwoLBLab(t *testing.T, subnet string) (lab *netnstest.Lab, dir, bin string) {
	t.Helper()
	netnstest.Require(t)
	dir = capsWorldReadableDir(t)
	bin = filepath.Join(dir, "mosparo-lb")
	capsGoBuild(t, bin, ".")
	lab = netnstest.NewLab(t,
		netnstest.HostConfig{Name: "lb1", Addrs: []string{subnet + ".11/24"}},
		netnstest.HostConfig{Name: "lb2", Addrs: []string{subnet + ".12/24"}},
		netnstest.HostConfig{Name: "nodes", Addrs: []string{subnet + ".21/24"}},
		netnstest.HostConfig{Name: "client", Addrs: []string{subnet + ".31/24"}},
	)
	return lab, dir, bin
}

func newHALab(t *testing.T) *haLab {
	netnstest.Require(t)
	h := &haLab{t: t, node: buildNodeBinary(t), vip: netip.MustParseAddr(haVIP),
		lbs: map[string]*netnstest.Proc{}, nodes: map[string]*netnstest.Proc{}, config: map[string]string{}}
	h.lab, h.dir, h.bin = newTwoLBLab(t, "10.99.7")
	// lb1 balances over n1 only, lb2 over both: killing n1 leaves lb1
	// without a node that can serve, which must hand the VIP to lb2.
	h.config["lb1"] = h.lbConfig(150, "n1")
	h.config["lb2"] = h.lbConfig(100, "n1", "n2")
	for i, name := range []string{"n1", "n2"} {
		h.startNode(name, 9001+i)
	}
	return h
}

func (h *haLab) lbConfig(prio int, nodes ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `listen: [{address: "%s:80"}]
admin: {listen: "127.0.0.1:9090"}
timeouts: {connect: 300ms, request: 3s}
health: {interval: 200ms, timeout: 150ms, fast_interval: 50ms, down_interval: 100ms, rise: 1, fall: 2, slow_start: 0s}
log: {level: info, access_log: false}
shutdown: {grace: 2s}
vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 57, priority: %d, advert_interval: 200ms, virtual_ips: ["%s/24"]}
cron: {enabled: true, key: demo-cron-key, interval: 1s, timeout: 1s, vrrp_instance: VI_1}
nodes:
`, haVIP, prio, haVIP)
	for _, n := range nodes {
		port := map[string]int{"n1": 9001, "n2": 9002}[n]
		fmt.Fprintf(&b, "  - {name: %s, address: \"%s:%d\"}\n", n, haNodes, port)
	}
	return b.String()
}

func (h *haLab) startNode(name string, port int) {
	ns := h.lab.Hosts["nodes"]
	cmd := ns.Command(h.node, "-addr", fmt.Sprintf("%s:%d", haNodes, port), "-name", name,
		"-health-allow-list", "10.99.7.0/24", "-cron-key", "demo-cron-key")
	h.nodes[name] = netnstest.Start(h.t, cmd)
}

// startLB runs lb1 as root and lb2 the way configs/mosparo-lb.service does:
// as uid 65534 with only CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE,
// which must be enough for VRRP (raw sockets, netlink addresses, GARP) and
// for binding port 80 on a VIP it does not hold yet.
func (h *haLab) startLB(name string) {
	path := filepath.Join(h.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(h.config[name]), 0o644); err != nil {
		h.t.Fatal(err)
	}
	args := []string{h.bin, "run", "-config", path}
	if name == "lb2" {
		args = append([]string{"--reuid=" + nobodyID, "--regid=" + nobodyID, "--clear-groups",
			"--inh-caps=-all," + capsForSetpriv, "--ambient-caps=-all," + capsForSetpriv,
			"--bounding-set=-all," + capsForSetpriv, "--"}, args...)
		h.lbs[name] = netnstest.Start(h.t, h.lab.Hosts[name].Command("setpriv", args...))
		return
	}
	h.lbs[name] = netnstest.Start(h.t, h.lab.Hosts[name].Command(args[0], args[1:]...))
}

func (h *haLab) holdsVIP(lb string) bool { return h.lab.Hosts[lb].HasAddr("eth0", h.vip) }

// master waits until exactly want holds the VIP and returns how long it took.
func (h *haLab) master(want string, within time.Duration) time.Duration {
	h.t.Helper()
	other := map[string]string{"lb1": "lb2", "lb2": "lb1"}[want]
	return netnstest.Eventually(h.t, within, want+" holds the VIP alone", func() bool {
		return h.holdsVIP(want) && !h.holdsVIP(other)
	})
}

// takesOver waits until want holds the VIP; a crashed peer's namespace
// still carries it (nothing ran to remove it, as on a frozen host).
func (h *haLab) takesOver(want string, within time.Duration) time.Duration {
	h.t.Helper()
	return netnstest.Eventually(h.t, within, want+" holds the VIP", func() bool { return h.holdsVIP(want) })
}

// status is the /status of one LB, read inside its namespace.
func (h *haLab) status(lb string) map[string]any {
	out, err := h.lab.Hosts[lb].Run("curl", "-s", "-m", "2", "http://127.0.0.1:9090/status")
	if err != nil {
		return nil
	}
	var st map[string]any
	if json.Unmarshal([]byte(out), &st) != nil {
		return nil
	}
	return st
}

// cronRunner reports whether lb's /status says it runs the web cron.
func (h *haLab) cronRunner(lb string) bool {
	c, _ := h.status(lb)["cron"].(map[string]any)
	r, _ := c["runner"].(bool)
	return r
}

// cronCalls is how many web-cron calls lb has made (0 when unknown).
func (h *haLab) cronCalls(lb string) float64 {
	st := h.status(lb)
	if c, ok := st["cron"].(map[string]any); ok {
		v, _ := c["calls"].(float64)
		return v
	}
	return 0
}

// get fetches a path through the VIP from the client namespace.
func (h *haLab) get(path string) (int, error) {
	out, err := h.lab.Hosts["client"].Run("curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}", "http://"+haVIP+path)
	if err != nil {
		return 0, err
	}
	var code int
	fmt.Sscan(out, &code)
	return code, nil
}

// TestTwoLBsShareAVIP drives two real mosparo-lb processes, the second one
// unprivileged with the systemd unit's three capabilities: election, the
// web cron on the master only, crash failover, preemption, tracking-driven
// handover when one LB loses all its nodes, and a graceful handover.
func TestTwoLBsShareAVIP(t *testing.T) {
	h := newHALab(t)
	h.startLB("lb1")
	h.startLB("lb2")
	h.master("lb1", 5*time.Second)
	// `ip netns exec` and setpriv exec in place: the pid is mosparo-lb's.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.lbs["lb2"].Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t"+nobodyID+"\t") || capsField(string(status), "CapEff") != capsMask {
		t.Fatalf("lb2 does not run as uid %s with exactly the three capabilities:\n%s", nobodyID, status)
	}
	if code, err := h.get("/robots.txt"); code != 200 {
		t.Fatalf("client through the VIP = %d, %v", code, err)
	}

	// The web cron runs on the master only.
	netnstest.Eventually(t, 6*time.Second, "lb1 calls the web cron", func() bool { return h.cronCalls("lb1") >= 2 })
	if n := h.cronCalls("lb2"); n != 0 {
		t.Errorf("the backup made %v web-cron calls, want 0", n)
	}
	// The VRRP and cron families of /metrics follow (issue 7).
	metrics, err := h.lab.Hosts["lb1"].Run("curl", "-s", "-m", "2", "http://127.0.0.1:9090/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`mosparo_lb_vrrp_state{instance="VI_1",state="MASTER"} 1`, `mosparo_lb_vrrp_transitions_total{instance="VI_1"}`,
		`mosparo_lb_vrrp_priority{instance="VI_1"} 150`, `mosparo_lb_cron_runs_total{outcome=`, `mosparo_lb_pool_healthy 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("lb1 /metrics lacks %s", want)
		}
	}

	// Crash: lb2 takes over and starts the cron.
	h.lbs["lb1"].Crash()
	took := h.takesOver("lb2", 5*time.Second)
	t.Logf("crash failover: lb2 holds the VIP %s after SIGKILL", took)
	netnstest.Eventually(t, 3*time.Second, "the client reaches the VIP again", func() bool {
		code, _ := h.get("/robots.txt")
		return code == 200
	})
	netnstest.Eventually(t, 6*time.Second, "lb2 calls the web cron after the failover", func() bool { return h.cronCalls("lb2") >= 1 })

	// lb1 comes back (removing its stale VIP first) and preempts with its
	// higher priority; lb2 stops calling.
	h.startLB("lb1")
	h.master("lb1", 5*time.Second)
	netnstest.Eventually(t, 5*time.Second, "lb2 no longer runs the web cron", func() bool { return !h.cronRunner("lb2") })
	was := h.cronCalls("lb2")
	// A window of two of lb1's calls, the first one interval after it won.
	netnstest.Eventually(t, 10*time.Second, "lb1 calls the web cron twice", func() bool { return h.cronCalls("lb1") >= 2 })
	if now := h.cronCalls("lb2"); now != was {
		t.Errorf("lb2 kept calling the web cron as backup: %v -> %v", was, now)
	}

	// Tracking: lb1 loses its only node, so lb2 (which still has n2) takes the VIP.
	h.nodes["n1"].Crash()
	took = h.master("lb2", 5*time.Second)
	t.Logf("tracking handover: lb2 holds the VIP %s after lb1's last node died", took)
	netnstest.Eventually(t, 3*time.Second, "the client is served through lb2", func() bool {
		code, _ := h.get("/robots.txt")
		return code == 200
	})

	// n1 back: lb1 preempts again; then a graceful stop hands over quickly.
	h.startNode("n1", 9001)
	h.master("lb1", 5*time.Second)
	start := time.Now()
	h.lbs["lb1"].Signal(syscall.SIGTERM)
	// A priority-0 advert makes it about Skew_Time; the bound is a hang
	// guard only (a loaded machine makes it late, STYLE: no tight bounds).
	h.master("lb2", 10*time.Second)
	t.Logf("graceful handover: lb2 holds the VIP %s after SIGTERM", time.Since(start))
	if err := h.lbs["lb1"].Wait(5 * time.Second); err != nil {
		t.Errorf("lb1 after SIGTERM: %v", err)
	}
}
