package discovery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
	"go.uber.org/zap/zaptest"
)

var staticCfg = []configs.Node{{Name: "node1", Address: "10.0.0.11:80", Weight: 100, Admin: true}}

func consulCfg(a *consultest.Agent) *configs.Consul {
	return &configs.Consul{
		Address: a.Addr(), Scheme: "http", Service: "mosparo", AdminTag: "mosparo-admin",
		Wait:       configs.Duration(time.Minute),
		BackoffMin: configs.Duration(5 * time.Millisecond), BackoffMax: configs.Duration(20 * time.Millisecond),
	}
}

type harness struct {
	t     *testing.T
	agent *consultest.Agent
	src   *Source
	clock *clocktest.Observed // the real clock, reporting every wait
	stop  func()              // cancels Run and waits for it; idempotent
}

// run starts the Source's Run and stops it (checking it returned nil) when
// the test ends.
func run(t *testing.T, a *consultest.Agent, cfg *configs.Consul, static []configs.Node) *harness {
	t.Helper()
	clk := clocktest.Observe(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s, err := New(configs.Discovery{Consul: cfg}, static, Options{
		Logger: zaptest.NewLogger(t), HTTPClient: &http.Client{Transport: tr}, Clock: clk, AdminListen: "127.0.0.1:9090", Hostname: "lb-a",
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &harness{t: t, agent: a, src: s, clock: clk, stop: stop}
}

func startAgent(t *testing.T, opts consultest.Options) *consultest.Agent {
	t.Helper()
	a, err := consultest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// until waits, without polling on a timer, for cond: it re-checks whenever
// the node set changes, the Source asks the clock for a wait or the agent
// sees a request (each loop turn does at least one of these).
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		activity := h.agent.Activity()
		if cond() {
			return
		}
		select {
		case <-h.src.Updates():
		case <-h.clock.Waits:
		case <-activity:
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; nodes %s, status %+v", what, show(h.src.Nodes()), h.src.Status())
		}
	}
}

// nodes waits until the merged set renders as want.
func (h *harness) nodes(want string) {
	h.t.Helper()
	h.until("nodes "+want, func() bool { return show(h.src.Nodes()) == want })
}

func (h *harness) register(id, status string, tags ...string) {
	h.t.Helper()
	port := 8050 + int(id[len(id)-1]-'0') // m-1 listens on 8051
	err := h.agent.Register(consultest.Registration{ID: id, Name: "mosparo", Address: "127.0.0.1", Port: port, Tags: tags,
		Check: &consultest.CheckDefinition{CheckID: id + "-ttl", TTL: "1h", Status: status}})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

const st = "node1=10.0.0.11:80/100/admin@static"

func TestStaticOnly(t *testing.T) {
	s, err := New(configs.Discovery{}, staticCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if show(s.Nodes()) != st {
		t.Errorf("Nodes = %s, want %s", show(s.Nodes()), st)
	}
	if got := s.Status(); got.Consul || !got.Healthy || got.StaticNodes != 1 {
		t.Errorf("Status = %+v, want no consul, healthy, 1 static", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestRunOnlyOnce(t *testing.T) {
	s, _ := New(configs.Discovery{}, nil, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("first Run = %v", err)
	}
	if err := s.Run(ctx); err == nil {
		t.Errorf("second Run = nil, want an error")
	}
}

func TestNewRejects(t *testing.T) {
	a := &configs.Consul{Address: "127.0.0.1:8500", Service: "m", Wait: configs.Duration(time.Second), BackoffMin: 1, BackoffMax: 1}
	bad := []struct {
		name string
		cfg  configs.Consul
		opts Options
	}{
		{"no service", configs.Consul{Address: "x:1", Wait: 1, BackoffMin: 1, BackoffMax: 1}, Options{}},
		{"defaults not applied", configs.Consul{Address: "x:1", Service: "m"}, Options{}},
		{"register without check url or admin listen", withRegister(*a, regDefaults(configs.ConsulRegister{Port: 80})), Options{}},
		{"register with admin off", withRegister(*a, regDefaults(configs.ConsulRegister{Port: 80})), Options{AdminListen: "off"}},
		{"register without port", withRegister(*a, regDefaults(configs.ConsulRegister{CheckURL: "http://x/"})), Options{}},
		// configs applies the register defaults (issue 13: once, there).
		{"register without defaults", withRegister(*a, configs.ConsulRegister{Port: 80, CheckURL: "http://x/"}), Options{}},
		{"register timeout not below interval", withRegister(*a, configs.ConsulRegister{Name: "lb", Port: 80, CheckURL: "http://x/",
			CheckInterval: configs.Duration(time.Second), CheckTimeout: configs.Duration(time.Second)}), Options{}},
	}
	for _, tt := range bad {
		if _, err := New(configs.Discovery{Consul: &tt.cfg}, nil, tt.opts); err == nil {
			t.Errorf("New(%s) = nil error, want one", tt.name)
		}
	}
}

// regDefaults fills what configs would, so a row fails for its own reason.
func regDefaults(r configs.ConsulRegister) configs.ConsulRegister {
	r.Name, r.CheckInterval, r.CheckTimeout = "mosparo-lb", configs.Duration(10*time.Second), configs.Duration(2*time.Second)
	return r
}

func withRegister(c configs.Consul, r configs.ConsulRegister) configs.Consul {
	c.Register = &r
	return c
}

// Instances join and leave through register/deregister, check flips and
// maintenance; only all-passing ones are nodes.
func TestConsulJoinAndLeave(t *testing.T) {
	a := startAgent(t, consultest.Options{})
	h := run(t, a, consulCfg(a), staticCfg)
	h.nodes(st)
	h.until("healthy", func() bool { return h.src.Status().Healthy && h.src.Status().LastIndex > 0 })

	h.register("m-1", consultest.Passing, "mosparo-admin")
	h.nodes(st + " m-1=127.0.0.1:8051/100/admin@consul")
	h.register("m-2", "") // FACTS: starts critical
	if err := a.AwaitBlocked(h.ctx(), 1); err != nil {
		t.Fatal(err)
	}
	if got := show(h.src.Nodes()); got != st+" m-1=127.0.0.1:8051/100/admin@consul" {
		t.Errorf("after a critical registration: %s, want m-2 absent", got)
	}
	if err := a.UpdateTTL("m-2-ttl", consultest.Passing, "up"); err != nil {
		t.Fatal(err)
	}
	h.nodes(st + " m-1=127.0.0.1:8051/100/admin@consul m-2=127.0.0.1:8052/100@consul")
	if err := a.UpdateTTL("m-1-ttl", consultest.Warning, "slow"); err != nil {
		t.Fatal(err)
	}
	h.nodes(st + " m-2=127.0.0.1:8052/100@consul")
	if err := a.Maintenance("m-2", true, "drain"); err != nil {
		t.Fatal(err)
	}
	h.nodes(st)
	if err := a.Maintenance("m-2", false, ""); err != nil {
		t.Fatal(err)
	}
	h.nodes(st + " m-2=127.0.0.1:8052/100@consul")
	if err := a.Deregister("m-2"); err != nil {
		t.Fatal(err)
	}
	h.nodes(st)
	if got := h.src.Status(); !got.Healthy || got.ConsulNodes != 0 || got.StaticNodes != 1 || got.LastError != "" {
		t.Errorf("Status = %+v, want healthy, 0 consul nodes, no error", got)
	}
}

// Blocking semantics: every query after the first carries the last index
// and a wait, and with nothing changing there is one query per wait, not a
// loop. The fake's clock decides when a wait is over.
func TestBlockingNoBusyLoop(t *testing.T) {
	clk := clocktest.NewManual(time.Unix(1e9, 0))
	a := startAgent(t, consultest.Options{Clock: clk})
	h := run(t, a, consulCfg(a), staticCfg)
	h.register("m-1", consultest.Passing)
	ctx := h.ctx()
	if err := a.AwaitBlocked(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.nodes(st + " m-1=127.0.0.1:8051/100@consul")
	base := a.CountRequests("/v1/health/service/")
	for i := 1; i <= 3; i++ {
		clk.Advance(time.Minute + time.Minute/16 + time.Millisecond)
		if err := a.AwaitRequests(ctx, "/v1/health/service/", base+i); err != nil {
			t.Fatal(err)
		}
		if err := a.AwaitBlocked(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.CountRequests("/v1/health/service/"); n != base+3 {
		t.Errorf("%d queries over 3 waits, want %d", n-base, 3)
	}
	reqs := a.Requests()
	first := true
	for _, r := range reqs {
		if !strings.HasPrefix(r.Path, "/v1/health/service/") {
			continue
		}
		if r.Path != "/v1/health/service/mosparo" || r.Query.Get("passing") != "1" {
			t.Errorf("query %s?%s, want /v1/health/service/mosparo?passing=1", r.Path, r.Query.Encode())
		}
		if first {
			if r.Query.Has("index") {
				t.Errorf("first query has index %q, want none", r.Query.Get("index"))
			}
			first = false
			continue
		}
		if r.Query.Get("index") == "" || r.Query.Get("index") == "0" || r.Query.Get("wait") != "60000ms" {
			t.Errorf("query ?%s, want a positive index and wait=60000ms", r.Query.Encode())
		}
	}
	if got := h.src.Status().LastIndex; got != a.ServiceIndex("mosparo") {
		t.Errorf("Status.LastIndex = %d, want %d", got, a.ServiceIndex("mosparo"))
	}
	if got := show(h.src.Nodes()); got != st+" m-1=127.0.0.1:8051/100@consul" {
		t.Errorf("same-index returns changed the set: %s", got)
	}
}

// An agent that answers at once, every time, with the same index is still
// queried at most once per backoff_min.
func TestTightLoopIsRateLimited(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("X-Consul-Index", "7")
		w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	clk := clocktest.Observe(nil)
	s := stubSource(t, srv, nil, clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	// The second query may only start after a wait of about backoff_min,
	// which this test never lets pass.
	select {
	case d := <-clk.Waits:
		if d < 59*time.Minute {
			t.Errorf("wait between queries = %s, want about backoff_min (1h)", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rate-limit wait")
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if n != 1 {
		t.Errorf("%d queries, want 1 before the rate-limit wait", n)
	}
}

// The index going backwards (a restarted agent, a restored snapshot) resets
// it: the next query asks without blocking, and the new set is taken.
func TestIndexBackwardsResets(t *testing.T) {
	a := startAgent(t, consultest.Options{})
	h := run(t, a, consulCfg(a), staticCfg)
	for i := 0; i < 5; i++ {
		h.register("m-1", consultest.Passing)
	}
	h.nodes(st + " m-1=127.0.0.1:8051/100@consul")
	ctx := h.ctx()
	if err := a.AwaitBlocked(ctx, 1); err != nil {
		t.Fatal(err)
	}
	high := h.src.Status().LastIndex
	before := a.CountRequests("/v1/health/service/")
	a.Reset()
	h.nodes(st)
	h.register("m-3", consultest.Passing)
	h.nodes(st + " m-3=127.0.0.1:8053/100@consul")
	if err := a.AwaitBlocked(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var indexes []string
	for _, r := range a.Requests() {
		if strings.HasPrefix(r.Path, "/v1/health/service/") {
			indexes = append(indexes, r.Query.Get("index"))
		}
	}
	after := indexes[before:]
	if len(after) < 2 || after[0] != "" || after[len(after)-1] == "" {
		t.Fatalf("indexes after the reset = %q, want a query without index, then blocking ones", after)
	}
	if got := h.src.Status().LastIndex; got >= high {
		t.Errorf("LastIndex = %d, want below the old %d", got, high)
	}
}

// The agent going away keeps the last set and shows in Status; coming back
// refreshes the set at once (a non-blocking query after an outage).
func TestAgentOutageKeepsLastSet(t *testing.T) {
	a := startAgent(t, consultest.Options{})
	h := run(t, a, consulCfg(a), staticCfg)
	h.register("m-1", consultest.Passing)
	h.register("m-2", consultest.Passing)
	want := st + " m-1=127.0.0.1:8051/100@consul m-2=127.0.0.1:8052/100@consul"
	h.nodes(want)
	if err := a.AwaitBlocked(h.ctx(), 1); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	h.until("an unhealthy status", func() bool { return !h.src.Status().Healthy })
	h.until("a few failures", func() bool { return h.src.Status().Failures >= 3 })
	got := h.src.Status()
	if got.LastError == "" || got.LastErrorAt.IsZero() || got.ConsulNodes != 2 {
		t.Errorf("Status during the outage = %+v, want the error and 2 consul nodes kept", got)
	}
	if show(h.src.Nodes()) != want {
		t.Errorf("Nodes during the outage = %s, want the last set %s", show(h.src.Nodes()), want)
	}
	// While it was away one instance failed.
	if err := a.UpdateTTL("m-2-ttl", consultest.Critical, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	h.nodes(st + " m-1=127.0.0.1:8051/100@consul")
	h.until("healthy again", func() bool { return h.src.Status().Healthy })
	if got := h.src.Status(); got.Failures != 0 || got.LastSuccess.Before(got.LastErrorAt) {
		t.Errorf("Status after recovery = %+v, want no failures and a success after the error", got)
	}
}

// The token travels as X-Consul-Token, the datacenter as dc; a wrong token
// is an error in Status.
func TestTokenAndDatacenter(t *testing.T) {
	a := startAgent(t, consultest.Options{Token: "s3cret", Datacenter: "eu1"})
	if err := a.Register(consultest.Registration{ID: "m-1", Name: "mosparo", Address: "10.0.1.1", Port: 80,
		Check: &consultest.CheckDefinition{TTL: "1h", Status: consultest.Passing}}); err != nil {
		t.Fatal(err)
	}
	cfg := consulCfg(a)
	cfg.Token, cfg.Datacenter = "s3cret", "eu1"
	h := run(t, a, cfg, nil)
	h.nodes("m-1=10.0.1.1:80/100@consul")
	for _, r := range a.Requests() {
		if r.Token != "s3cret" || r.Query.Get("dc") != "eu1" || r.Query.Has("token") {
			t.Errorf("request %s?%s token %q, want the token in the header and dc=eu1", r.Path, r.Query.Encode(), r.Token)
		}
	}

	bad := consulCfg(a)
	bad.Token = "wrong"
	h2 := run(t, a, bad, nil)
	h2.until("an error", func() bool { return h2.src.Status().LastError != "" })
	if got := h2.src.Status(); got.Healthy || !strings.Contains(got.LastError, "403") || strings.Contains(got.LastError, "wrong") {
		t.Errorf("Status with a wrong token = %+v, want unhealthy, 403, token not shown", got)
	}

	other := consulCfg(a)
	other.Token, other.Datacenter = "s3cret", "us9"
	h3 := run(t, a, other, nil)
	h3.until("an error", func() bool { return h3.src.Status().LastError != "" })
	if got := h3.src.Status().LastError; !strings.Contains(got, "No path to datacenter") {
		t.Errorf("unknown dc error = %q, want Consul's No path to datacenter", got)
	}
}

func TestTagFilter(t *testing.T) {
	a := startAgent(t, consultest.Options{})
	cfg := consulCfg(a)
	cfg.Tags = []string{"prod", "eu"}
	h := run(t, a, cfg, nil)
	h.register("m-1", consultest.Passing, "prod", "eu")
	h.register("m-2", consultest.Passing, "prod")
	h.register("m-3", consultest.Passing, "eu", "prod", "mosparo-admin")
	h.nodes("m-1=127.0.0.1:8051/100@consul m-3=127.0.0.1:8053/100/admin@consul")
	reqs := a.Requests()
	if got := reqs[len(reqs)-1].Query["tag"]; strings.Join(got, ",") != "prod,eu" {
		t.Errorf("tag params = %q, want prod and eu", got)
	}
}

// A static node and a Consul instance on the same address are one node,
// the static one; the instance shows as skipped in Status.
func TestStaticWinsOnSameAddress(t *testing.T) {
	a := startAgent(t, consultest.Options{})
	h := run(t, a, consulCfg(a), []configs.Node{{Name: "node1", Address: "127.0.0.1:8051", Weight: 100}})
	h.register("m-1", consultest.Passing)
	h.register("m-2", consultest.Passing)
	h.nodes("node1=127.0.0.1:8051/100@static m-2=127.0.0.1:8052/100@consul")
	if got := h.src.Status().Skipped; len(got) != 1 || !strings.Contains(got[0], "m-1") {
		t.Errorf("Status.Skipped = %q, want m-1", got)
	}
}

// Updates signals changes of the set only: an answer with a new index but
// the same nodes (a check's output changed) leaves Updates quiet.
func TestUpdatesOnlyOnChange(t *testing.T) {
	a := startAgent(t, consultest.Options{})
	h := run(t, a, consulCfg(a), nil)
	h.register("m-1", consultest.Passing)
	h.register("m-2", consultest.Passing)
	h.nodes("m-1=127.0.0.1:8051/100@consul m-2=127.0.0.1:8052/100@consul")
	select {
	case <-h.src.Updates():
	default:
	}
	if err := a.UpdateTTL("m-1-ttl", consultest.Passing, "new output"); err != nil {
		t.Fatal(err)
	}
	idx := a.ServiceIndex("mosparo")
	h.until("the new index", func() bool { return h.src.Status().LastIndex == idx })
	if n := len(h.src.Updates()); n != 0 {
		t.Errorf("Updates signalled for an unchanged set")
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 3*time.Second
	for n := 1; n <= 12; n++ {
		want := lo << (n - 1)
		if n > 6 || want > hi {
			want = hi
		}
		for range 50 {
			d := backoff(n, lo, hi)
			if d < lo || d > hi || d > want || d < want/2 {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s] and [lo, hi]", n, d, want/2, want)
			}
		}
	}
}

// A Source built on a reload starts with the Consul nodes its predecessor
// saw, merged with the new static nodes, when it watches the same service.
func TestPreviousSeedsReload(t *testing.T) {
	a := startAgent(t, consultest.Options{})
	h := run(t, a, consulCfg(a), staticCfg)
	h.register("m-1", consultest.Passing)
	h.nodes(st + " m-1=127.0.0.1:8051/100@consul")

	static2 := []configs.Node{{Name: "node9", Address: "10.0.0.19:80", Weight: 5}}
	s2, err := New(configs.Discovery{Consul: consulCfg(a)}, static2, Options{Previous: h.src})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := show(s2.Nodes()), "node9=10.0.0.19:80/5@static m-1=127.0.0.1:8051/100@consul"; got != want {
		t.Errorf("seeded Nodes = %s, want %s", got, want)
	}
	if got := s2.Status(); got.Healthy || got.ConsulNodes != 1 {
		t.Errorf("seeded Status = %+v, want 1 consul node, not yet healthy (no own answer)", got)
	}

	other := consulCfg(a)
	other.Service = "other"
	s3, err := New(configs.Discovery{Consul: other}, static2, Options{Previous: h.src})
	if err != nil {
		t.Fatal(err)
	}
	if got := show(s3.Nodes()); got != "node9=10.0.0.19:80/5@static" {
		t.Errorf("Nodes for another service = %s, want the static node only", got)
	}
}

// An answer without X-Consul-Index cannot be followed by a blocking query;
// it is an error (with backoff), not a tight loop.
func TestAnswerWithoutIndexIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`[]`)) }))
	defer srv.Close()
	clk := clocktest.Observe(nil)
	s := stubSource(t, srv, staticCfg, clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-clk.Waits: // the backoff after the failed query
	case <-time.After(10 * time.Second):
		t.Fatal("no backoff after a failed query")
	}
	got := s.Status()
	cancel()
	<-done
	if got.Healthy || !strings.Contains(got.LastError, "X-Consul-Index") || show(s.Nodes()) != st {
		t.Errorf("Status = %+v, nodes %s; want unhealthy with the index error and the static set", got, show(s.Nodes()))
	}
}

// stubSource is a Source querying srv, a stand-in for the agent, with a
// backoff of an hour: the test's clock decides when a retry may happen.
func stubSource(t *testing.T, srv *httptest.Server, static []configs.Node, clk *clocktest.Observed) *Source {
	t.Helper()
	cfg := &configs.Consul{Address: strings.TrimPrefix(srv.URL, "http://"), Scheme: "http", Service: "m",
		Wait: configs.Duration(time.Minute), BackoffMin: configs.Duration(time.Hour), BackoffMax: configs.Duration(time.Hour)}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s, err := New(configs.Discovery{Consul: cfg}, static, Options{Clock: clk, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
