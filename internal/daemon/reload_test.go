package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// observed is what a reload may change, as an operator sees it.
type observed struct {
	Listen     []string
	Nodes      []string
	Cron       bool
	CSS        bool
	Consul     bool
	Generation int
}

func observe(d *Daemon) observed {
	st := d.Snapshot()
	o := observed{Listen: st.Listen, Generation: st.Reloads.Generation, Cron: st.Cron != nil, CSS: st.CSSCache != nil,
		Consul: st.Discovery.Consul}
	for _, nv := range st.Nodes {
		o.Nodes = append(o.Nodes, nv.Name)
	}
	slices.Sort(o.Nodes)
	return o
}

// redisClients counts the connections Redis has, the asking one included.
func redisClients(t *testing.T, addr string) int {
	t.Helper()
	return strings.Count(cachetest.CLI(t, addr, "CLIENT", "LIST"), "id=")
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// restartSafe are the sections testBase lacks, as the changed file of
// TestReloadAppliesAllOrNothing sets them: every one a reload applies.
const restartSafe = `trusted_proxies: ["10.0.0.0/8"]
strip_client_ip_headers: [X-Client-Address]
limits: {max_body_bytes: 2097152, max_header_bytes: 8192, max_conns_per_node: 64}
rate_limits: {frontend: {rate: 100, burst: 200}}
edge: {allow_health_from: ["127.0.0.1/32"], forwarded_prefix: /mosparo}
compression: {enabled: true, gzip_level: 2}
`

// TestReloadAppliesAllOrNothing changes every section at once (listen,
// nodes, discovery to Consul, balancing, timeouts, health, css_cache with
// its coherence check, cron led by a Consul lock, trusted proxies, limits,
// rate limits, edge, compression, shutdown; vrrp: in cmd/mosparo-lb's
// TestVRRPReloadKeepsTheVIP, which needs network namespaces) and makes
// each build step fail in turn, by a fault or for a real reason (a
// certificate missing, an address in use, admin: or log: changed, which
// are read at start only): each failed reload must
// leave status, node set, cron, CSS cache and listeners exactly as they
// were, release what it bound and start nothing (the Consul agent gets no
// request, Redis no connection); the next good reload applies all of it
// (issue 13, defect 1).
func TestReloadAppliesAllOrNothing(t *testing.T) {
	redis := cachetest.StartRedis(t)
	agent, err := consultest.New(consultest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	nodes := startNodes(t, 3)
	host, port, _ := net.SplitHostPort(nodes[2].Addr())
	pn, _ := strconv.Atoi(port)
	if err := agent.Register(consultest.Registration{ID: "n3", Name: "mosparo", Address: host, Port: pn,
		Check: &consultest.CheckDefinition{CheckID: "n3-ttl", TTL: "1h", Status: "passing"}}); err != nil {
		t.Fatal(err)
	}
	base := calm(testBase)
	c := startClusterBase(t, base, nodes[:2], "balancing: {policy: round_robin}\n")
	p1, p2 := freePort(t), freePort(t)
	changed := func(extraListen string) string {
		b := strings.Replace(base, `listen: [{address: "127.0.0.1:0"}]`,
			fmt.Sprintf(`listen: [{address: "127.0.0.1:0"}, {address: %q}, {address: %q}%s]`, p1, p2, extraListen), 1)
		b = strings.Replace(b, "timeouts: {connect: 300ms, request: 3s}", "timeouts: {connect: 400ms, request: 4s}", 1)
		b = strings.Replace(b, "interval: 1s,", "interval: 2s,", 1)
		b = strings.Replace(b, "shutdown: {grace: 3s}", "shutdown: {grace: 4s}", 1)
		return b + nodesYAML(nodes[1:2]) + "balancing: {policy: least_conn}\n" +
			fmt.Sprintf("discovery: {consul: {address: %q, service: mosparo, wait: 2s, backoff_min: 50ms, backoff_max: 200ms}}\n", agent.Addr()) +
			fmt.Sprintf("css_cache: {backend: redis, url: \"redis://%s/0\", coherence_interval: 2s}\n", redis.Addr) +
			fmt.Sprintf("cron: {enabled: true, key: %q, interval: 1h, consul_lock: mosparo-lb/test/cron}\n", mosparoemu.DemoCronKey) +
			restartSafe
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	before := observe(c.d)
	running := c.d.cur.Load().cfg
	faulted := map[string]bool{}
	cl := &fasthttp.Client{}
	for _, tt := range []struct {
		name   string
		fault  string // build step made to fail
		yaml   string // "" = changed("")
		occupy string // address held by someone else during the reload
		// restart: the file changes a section read only at start-up.
		restart bool
	}{
		{name: "config", fault: "config"},
		{name: "admin and log", fault: "admin and log"},
		{name: "discovery", fault: "discovery"},
		{name: "health", fault: "health"},
		{name: "css_cache", fault: "css_cache"},
		{name: "vrrp", fault: "vrrp"},
		{name: "cron lock", fault: "cron lock"},
		{name: "cron", fault: "cron"},
		{name: "acme", fault: "acme"},
		{name: "runtime", fault: "runtime"},
		{name: "listen", fault: "listen"},
		{name: "certificate file missing", yaml: changed(fmt.Sprintf(`, {address: "127.0.0.1:0", tls: {certificates: [{cert: %q, key: %q}]}}`, missing, missing))},
		{name: "address in use", occupy: p2},
		// Read at start only: changing them with the rest is refused whole.
		{name: "log changed", yaml: strings.Replace(changed(""), "log: {level: warn,", "log: {level: error,", 1), restart: true},
		{name: "admin changed", yaml: strings.Replace(changed(""), `admin: {listen: "127.0.0.1:0"}`, `admin: {listen: "127.0.0.1:0", token: s3cret}`, 1), restart: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := tt.yaml
			if yaml == "" {
				yaml = changed("")
			}
			c.write(yaml)
			injected := errors.New("injected failure")
			fault := func(step string) error {
				if step == tt.fault {
					return injected
				}
				return nil
			}
			c.d.faults.Store(&fault)
			defer c.d.faults.Store(nil)
			if tt.occupy != "" {
				ln, err := net.Listen("tcp", tt.occupy)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			err := c.d.Reload(context.Background())
			if err == nil {
				t.Fatal("Reload = nil, want an error")
			}
			if tt.fault != "" && (!errors.Is(err, injected) || tt.fault != "config" && !strings.HasPrefix(err.Error(), tt.fault+":")) {
				t.Errorf("Reload = %v, want the injected failure of step %s", err, tt.fault)
			}
			if tt.restart != errors.Is(err, ErrRestartOnly) {
				t.Errorf("Reload = %v; want ErrRestartOnly %v", err, tt.restart)
			}
			faulted[tt.fault] = true
			if cur := c.d.cur.Load(); cur.cfg != running {
				t.Error("a failed reload replaced the running configuration")
			}
			if got := observe(c.d); !reflect.DeepEqual(got, before) {
				t.Errorf("a failed reload changed the running state:\n got %+v\nwant %+v", got, before)
			}
			if rl := c.d.Snapshot().Reloads; rl.LastResult != "rejected" || rl.LastError == "" {
				t.Errorf("reload status = %+v, want rejected with the error", rl)
			}
			if tt.occupy != p1 && listening(p1) {
				t.Errorf("%s still listens after the failed reload", p1)
			}
			if code, _, err := do(t, cl, "GET", c.lb+"/login", ""); err != nil || code != 200 {
				t.Errorf("after the failed reload GET = %d, %v", code, err)
			}
			// Nothing of the new generation ran: discovery and the cron
			// lock never asked Consul, the CSS cache never connected.
			if reqs := agent.Requests(); len(reqs) != 0 {
				t.Errorf("the Consul agent got %d requests from a failed reload, first %+v", len(reqs), reqs[0])
			}
			if n := redisClients(t, redis.Addr); n != 1 {
				t.Errorf("Redis has %d clients besides the asking one after a failed reload, want none", n-1)
			}
		})
	}
	c.write(changed(""))
	// The good reload lists the build steps: each must have had its fault.
	var steps []string
	record := func(step string) error { steps = append(steps, step); return nil }
	c.d.faults.Store(&record)
	err = c.d.Reload(context.Background())
	c.d.faults.Store(nil)
	if err != nil {
		t.Fatalf("good reload: %v", err)
	}
	for _, s := range steps {
		if !faulted[s] {
			t.Errorf("build step %q was never made to fail; add it to the table", s)
		}
	}
	// Every section applied: what runs is the file, parsed afresh.
	file, err := configs.Parse(c.path, []byte(changed("")), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.d.cur.Load().cfg; !reflect.DeepEqual(got, file) {
		t.Errorf("after the good reload the running configuration is not the file's:\n got %+v\nwant %+v", got, file)
	}
	if rl := c.d.Snapshot().Reloads; rl.LastResult != "applied" || rl.LastError != "" {
		t.Errorf("reload status = %+v, want applied", rl)
	}
	// Consul's n3 joins once discovery has asked the agent: one more
	// generation of the same configuration.
	want := observed{Listen: append([]string{before.Listen[0]}, p1, p2), Nodes: []string{"n2", "n3"}, Cron: true, CSS: true, Consul: true}
	var got observed
	if !eventually(15*time.Second, func() bool {
		got = observe(c.d)
		want.Generation = got.Generation
		return reflect.DeepEqual(got, want) && got.Generation > before.Generation
	}) {
		t.Fatalf("after the good reload:\n got %+v\nwant %+v", got, want)
	}
	// The new parts run: discovery and the cron lock talk to Consul, the
	// CSS cache to Redis.
	if !eventually(15*time.Second, func() bool {
		return agent.CountRequests("/v1/health/service/mosparo") > 0 && agent.CountRequests("/v1/session/") > 0 && redisClients(t, redis.Addr) >= 2
	}) {
		t.Fatalf("after the good reload: %d health queries, %d session requests, %d Redis clients; want the new parts running",
			agent.CountRequests("/v1/health/service/mosparo"), agent.CountRequests("/v1/session/"), redisClients(t, redis.Addr)-1)
	}
	waitState(t, c, "n3", "up")
	for _, addr := range want.Listen {
		seen := map[string]bool{}
		for i := 0; i < 6; i++ {
			code, node, err := do(t, cl, "GET", "http://"+addr+"/login", "")
			if err != nil || code != 200 {
				t.Fatalf("GET via %s = %d, %v", addr, code, err)
			}
			seen[node] = true
		}
		if seen["n1"] {
			t.Errorf("%s reached the removed n1: %v", addr, seen)
		}
	}
}

// TestDataPlaneFailureStopsTheDaemon: when the public listener stops
// accepting, Run hands the VIP over (VRRP stops first), stops every part
// and returns the failure, so systemd restarts the process instead of it
// running on with nothing serving (issue 13, defect 2). Bound: Run returns
// within shutdown.grace (3s here) of the failure; the test allows 20s.
func TestDataPlaneFailureStopsTheDaemon(t *testing.T) {
	nodes := startNodes(t, 1)
	c := &cluster{t: t, nodes: nodes, path: filepath.Join(t.TempDir(), "lb.yaml")}
	c.write(calm(testBase) + nodesYAML(nodes))
	d, err := New(context.Background(), Options{Path: c.path, Loggers: &Loggers{Main: zaptest.NewLogger(t)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if code, _, err := do(t, &fasthttp.Client{}, "GET", "http://"+d.Addrs()[0]+"/login", ""); err != nil || code != 200 {
		t.Fatalf("GET = %d, %v", code, err)
	}
	start := time.Now()
	breakPublicListener(t, d.Addrs()[0])
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "balancer") {
			t.Errorf("Run = %v, want the listener's failure", err)
		}
		t.Logf("Run returned %s after the listener broke: %v", time.Since(start), err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run still runs 20s after its only listener broke")
	}
}

// breakPublicListener shuts the listening socket on addr down (accept then
// fails with EINVAL), found among this process's descriptors.
func breakPublicListener(t *testing.T, addr string) {
	t.Helper()
	want, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if in4, ok := sa.(*unix.SockaddrInet4); err == nil && ok && netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)) == want {
			if err := unix.Shutdown(fd, unix.SHUT_RDWR); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no listening socket on %s", addr)
}
