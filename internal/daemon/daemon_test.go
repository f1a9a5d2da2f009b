package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/leaktest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Options()...)
}

type cluster struct {
	t     *testing.T
	nodes []*mosparoemu.Node
	path  string
	d     *Daemon
	lb    string
	stop  func()
}

func startNodes(t *testing.T, n int) []*mosparoemu.Node {
	t.Helper()
	db := mosparoemu.NewDatabase()
	var out []*mosparoemu.Node
	for i := 0; i < n; i++ {
		node, err := mosparoemu.Start(mosparoemu.Options{Name: fmt.Sprintf("n%d", i+1), Database: db})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		out = append(out, node)
	}
	return out
}

// nodesYAML lists nodes as the nodes: section; admin marks n1 admin: true.
func nodesYAML(nodes []*mosparoemu.Node) string {
	var b strings.Builder
	b.WriteString("nodes:\n")
	for i, n := range nodes {
		fmt.Fprintf(&b, "  - {name: %s, address: %q, admin: %v}\n", n.Name(), n.Addr(), i == 0)
	}
	return b.String()
}

const testBase = `
listen: [{address: "127.0.0.1:0"}]
admin: {listen: "127.0.0.1:0"}
timeouts: {connect: 300ms, request: 3s}
` + fastHealth + `
log: {level: warn, access_log: false}
shutdown: {grace: 3s}
`

// fastHealth finds a dead node quickly; tests about something else use
// calmHealth, which a machine loaded by parallel test binaries cannot fail.
const (
	fastHealth = "health: {interval: 200ms, timeout: 150ms, fast_interval: 50ms, down_interval: 100ms, rise: 1, fall: 2, slow_start: 0s}"
	calmHealth = "health: {interval: 1s, timeout: 900ms, fast_interval: 200ms, down_interval: 500ms, rise: 1, fall: 3, slow_start: 0s}"
)

// calm replaces the test health section with calmHealth.
func calm(yaml string) string { return strings.Replace(yaml, fastHealth, calmHealth, 1) }

func startCluster(t *testing.T, nodes []*mosparoemu.Node, extra string) *cluster {
	t.Helper()
	return startClusterBase(t, testBase, nodes, extra)
}

func startClusterBase(t *testing.T, base string, nodes []*mosparoemu.Node, extra string) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: nodes, path: filepath.Join(t.TempDir(), "lb.yaml")}
	c.write(base + nodesYAML(nodes) + extra)
	logger := zaptest.NewLogger(t)
	d, err := New(context.Background(), Options{Path: c.path, Loggers: &Loggers{Main: logger}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	c.d, c.lb = d, "http://"+d.Addrs()[0]
	var once sync.Once
	c.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(c.stop)
	return c
}

func (c *cluster) write(yaml string) {
	c.t.Helper()
	if err := os.WriteFile(c.path, []byte(yaml), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// do sends one request and returns status and the answering node.
func do(t testing.TB, client *fasthttp.Client, method, url, body string) (int, string, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	if body != "" {
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(body)
	}
	err := client.DoTimeout(req, resp, 5*time.Second)
	return resp.StatusCode(), string(resp.Header.Peek("X-Mosparo-Node")), err
}

// load is client traffic against the LB for the tests that change things
// under it: each of its workers sends up to max requests, what pick says,
// until stop.
type load struct {
	stop          chan struct{}
	wg            sync.WaitGroup
	total, failed atomic.Int64
	first         atomic.Value // the first failure
}

func startLoad(t *testing.T, c *cluster, workers, max int, pick func(worker int) (method, path, body string)) *load {
	l := &load{stop: make(chan struct{})}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			cl := &fasthttp.Client{}
			method, path, body := pick(w)
			for i := 0; i < max; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				code, _, err := do(t, cl, method, c.lb+path, body)
				l.total.Add(1)
				if err != nil || code != 200 {
					l.failed.Add(1)
					l.first.CompareAndSwap(nil, fmt.Sprintf("%s %s = %d, %v", method, path, code, err))
				}
			}
		}()
	}
	return l
}

// waitRequests waits (bounded) until the load has sent n more requests:
// time measured in the load's own progress, whatever the machine's speed.
func (l *load) waitRequests(t *testing.T, n int64) {
	t.Helper()
	want := l.total.Load() + n
	if !eventually(20*time.Second, func() bool { return l.total.Load() >= want }) {
		t.Fatalf("the load sent %d of %d requests", l.total.Load(), want)
	}
}

// end stops the workers and waits for them.
func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

func getLogin(int) (method, path, body string) { return "GET", "/login", "" }

func TestRouteClassesReachTheirPools(t *testing.T) {
	nodes := startNodes(t, 3)
	c := startCluster(t, nodes, `
edge: {allow_cron_from: ["127.0.0.1"], allow_health_from: ["127.0.0.1"]}
balancing:
  policy: round_robin
  pools: {admin: [n1], setup: [n1], cron: [n1], api: [n2], frontend: [n2, n3], resources: [n3], static: [n3], health: [n2]}
`)
	form := "publicKey=" + mosparoemu.DemoPublicKey + "&pageTitle=t&pageUrl=https%3A%2F%2Fexample.com%2F"
	cl := &fasthttp.Client{}
	for _, tt := range []struct {
		method, path, body string
		want               []string
	}{
		{"GET", "/login", "", []string{"n1"}},
		{"GET", "/project/", "", []string{"n1"}},
		{"GET", "/setup/", "", []string{"n1"}},
		{"GET", "/cron-jobs/execute?key=wrong", "", []string{"n1"}},
		{"POST", "/api/v1/verification/verify", "{}", []string{"n2"}},
		{"GET", "/api/v1/statistic/by-date", "", []string{"n2"}},
		{"POST", "/api/v1/frontend/request-submit-token", form, []string{"n2", "n3"}},
		{"GET", "/resources/" + mosparoemu.DemoUUID + ".css", "", []string{"n3"}},
		{"GET", "/build/mosparo-frontend.js", "", []string{"n3"}},
		{"GET", "/api/v1/health/check", "", []string{"n2"}},
	} {
		seen := map[string]bool{}
		for i := 0; i < 4; i++ {
			code, node, err := do(t, cl, tt.method, c.lb+tt.path, tt.body)
			if err != nil || code == 0 || code >= 500 {
				t.Fatalf("%s %s = %d, %v", tt.method, tt.path, code, err)
			}
			seen[node] = true
		}
		for node := range seen {
			if !contains(tt.want, node) {
				t.Errorf("%s %s reached %s, want only %v", tt.method, tt.path, node, tt.want)
			}
		}
	}
}

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	nodes := startNodes(t, 3)
	base := calm(testBase)
	c := startClusterBase(t, base, nodes[:2], "balancing: {policy: least_conn}\n")
	form := "publicKey=" + mosparoemu.DemoPublicKey + "&pageTitle=t&pageUrl=https%3A%2F%2Fexample.com%2F"
	l := startLoad(t, c, 6, 5000, func(w int) (string, string, string) {
		if w%2 == 1 {
			return "POST", "/api/v1/frontend/request-submit-token", form
		}
		return getLogin(w)
	})
	policies := []string{"round_robin", "weighted", "client_ip_hash", "least_conn"}
	for i := 0; i < 12; i++ {
		l.waitRequests(t, 10) // every reload overlaps requests
		set := nodes[:2+i%2]  // add and remove the third node
		c.write(base + nodesYAML(set) + "balancing: {policy: " + policies[i%len(policies)] + "}\n")
		if err := c.d.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	l.waitRequests(t, 10)
	l.end()
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed across 12 reloads; first: %v", l.failed.Load(), l.total.Load(), l.first.Load())
	}
	if l.total.Load() < 100 {
		t.Errorf("only %d requests ran; the load did not overlap the reloads", l.total.Load())
	}
}

func TestBadReloadKeepsServing(t *testing.T) {
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, "")
	c.write(testBase + nodesYAML(nodes) + "balancing: {policy: fastest}\n")
	err := c.d.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "balancing.policy") {
		t.Fatalf("Reload = %v, want an error naming balancing.policy", err)
	}
	if !strings.Contains(err.Error(), "lb.yaml:") {
		t.Errorf("error %q does not name the file and line", err)
	}
	code, _, err := do(t, &fasthttp.Client{}, "GET", c.lb+"/login", "")
	if err != nil || code != 200 {
		t.Errorf("after a bad reload GET = %d, %v; want 200 from the old config", code, err)
	}
	if rl := c.d.Snapshot().Reloads; rl.LastError == "" {
		t.Error("status does not show the rejected reload")
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, "")
	nodes[0].SetDelay(500 * time.Millisecond)
	res := make(chan int, 1)
	go func() {
		code, _, _ := do(t, &fasthttp.Client{}, "GET", c.lb+"/login", "")
		res <- code
	}()
	if !eventually(5*time.Second, func() bool { return nodes[0].Requests("GET", "/login") == 1 }) {
		t.Fatal("the request never reached the node")
	}
	start := time.Now()
	c.stop()
	if code := <-res; code != 200 {
		t.Errorf("in-flight request during shutdown = %d, want 200", code)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("shutdown took %s with one 500ms request in flight", took)
	}
	if _, _, err := do(t, &fasthttp.Client{}, "GET", c.lb+"/login", ""); err == nil {
		t.Error("the LB still accepts after shutdown")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// statusJSON is d's /status document as the admin API serves it.
func statusJSON(t *testing.T, d *Daemon) string {
	t.Helper()
	b, err := json.Marshal(d.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestListenOptionHandsOverSockets: Options.Listen provides the public and
// admin sockets (bound already, as systemd's or an upgraded process's are,
// so binding them again would fail) and the daemon serves on them.
func TestListenOptionHandsOverSockets(t *testing.T) {
	nodes := startNodes(t, 1)
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handed := map[string]net.Listener{pub.Addr().String(): pub, adm.Addr().String(): adm}
	var mu sync.Mutex
	listen := func(network, address string) (net.Listener, error) {
		mu.Lock()
		defer mu.Unlock()
		ln := handed[address]
		if ln == nil || network != "tcp" {
			return nil, fmt.Errorf("no socket for %s %s", network, address)
		}
		delete(handed, address)
		return ln, nil
	}
	base := strings.Replace(testBase, `listen: [{address: "127.0.0.1:0"}]`, fmt.Sprintf("listen: [{address: %q}]", pub.Addr()), 1)
	base = strings.Replace(base, `admin: {listen: "127.0.0.1:0"}`, fmt.Sprintf("admin: {listen: %q}", adm.Addr()), 1)
	path := filepath.Join(t.TempDir(), "lb.yaml")
	if err := os.WriteFile(path, []byte(calm(base)+nodesYAML(nodes)), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), Options{Path: path, Loggers: &Loggers{Main: zaptest.NewLogger(t)}, Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if len(handed) != 0 {
		t.Errorf("sockets not taken: %v", handed)
	}
	if code, _, err := do(t, &fasthttp.Client{}, "GET", "http://"+pub.Addr().String()+"/login", ""); err != nil || code != 200 {
		t.Errorf("GET on the handed-over public socket = %d, %v", code, err)
	}
	if d.AdminAddr() != adm.Addr().String() {
		t.Errorf("admin serves on %s, want the handed-over %s", d.AdminAddr(), adm.Addr())
	}
	if resp, err := http.Get("http://" + adm.Addr().String() + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /healthz on the handed-over admin socket = %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
