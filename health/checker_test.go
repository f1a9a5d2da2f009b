package health

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"go.uber.org/zap/zaptest"
)

// testConfig matches testParams.
func testConfig() configs.Health {
	d := func(s string) configs.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			panic(err)
		}
		return configs.Duration(v)
	}
	zero := configs.Duration(0)
	slow := d("10s")
	fails, pct := 3, 50
	return configs.Health{
		Interval: d("2s"), FastInterval: d("500ms"), DownInterval: d("5s"), Timeout: d("1s"),
		Rise: 2, Fall: 3, Jitter: &zero, SlowStart: &slow,
		Passive: configs.Passive{ConsecutiveFailures: &fails, BaseEjection: d("30s"), MaxEjection: d("100s"), MaxEjectedPercent: &pct},
	}
}

func newTestChecker(t *testing.T, clk *clocktest.Manual, cfg configs.Health, names ...string) *Checker {
	t.Helper()
	c := newChecker(t, cfg, Options{Logger: zaptest.NewLogger(t), Clock: clk, Rand: func(int64) int64 { return 0 }})
	var ts []Target
	for _, n := range names {
		ts = append(ts, Target{Name: n, Address: n + ":80", Weight: 100})
	}
	setTargets(t, c, ts)
	return c
}

// verdict applies one finished check of the node at addr at the clock's
// time, as Run would.
func verdict(t *testing.T, c *Checker, clk *clocktest.Manual, addr string, v State) {
	t.Helper()
	n := c.Node(addr)
	if n == nil {
		t.Fatalf("no node %s", addr)
	}
	now := clk.Now()
	c.apply(probeResult{n: n, v: v, reason: "test " + v.String(), started: now, ended: now})
}

func drain(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// newChecker is New for a hand-built section: the defaults configs would
// apply fill what the test leaves unset.
func newChecker(t testing.TB, cfg configs.Health, opts Options) *Checker {
	t.Helper()
	c, err := New(cfg.WithDefaults(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setTargets is SetTargets for hand-built targets: one without a weight
// gets the one configs would have given it.
func setTargets(t testing.TB, c *Checker, ts []Target) {
	t.Helper()
	ts = append([]Target(nil), ts...)
	for i := range ts {
		if ts[i].Weight == 0 {
			ts[i].Weight = configs.DefaultNodeWeight
		}
	}
	if err := c.SetTargets(ts); err != nil {
		t.Fatal(err)
	}
}

// TestNoDefaultsRefused: configs applies the defaults, once (issue 13); a
// section or a target that skipped it is refused by New, Reconfigure,
// SetTargets and Check, and a refused change keeps what is in force.
func TestNoDefaultsRefused(t *testing.T) {
	good := configs.Health{}.WithDefaults()
	ok := []Target{{Name: "a", Address: "a:80", Weight: configs.DefaultNodeWeight}}
	for _, tt := range []struct {
		name    string
		cfg     func(*configs.Health)
		targets []Target
		wantErr bool
	}{
		{"defaults applied", func(*configs.Health) {}, ok, false},
		{"zero section", func(h *configs.Health) { *h = configs.Health{} }, ok, true},
		{"no path", func(h *configs.Health) { h.Path = "" }, ok, true},
		{"no interval", func(h *configs.Health) { h.Interval = 0 }, ok, true},
		{"no rise", func(h *configs.Health) { h.Rise = 0 }, ok, true},
		{"no jitter", func(h *configs.Health) { h.Jitter = nil }, ok, true},
		{"no slow_start", func(h *configs.Health) { h.SlowStart = nil }, ok, true},
		{"no passive failures", func(h *configs.Health) { h.Passive.ConsecutiveFailures = nil }, ok, true},
		{"no version.every", func(h *configs.Health) { h.Version.Every = nil }, ok, true},
		// Explicit zeros configs allows: jitter off, slow start off,
		// passive detection off, fingerprints off.
		{"explicit zeros", func(h *configs.Health) {
			zero, off := configs.Duration(0), 0
			h.Jitter, h.SlowStart, h.Passive.ConsecutiveFailures, h.Version.Every = &zero, &zero, &off, &off
		}, ok, false},
		{"weight 0", func(*configs.Health) {}, []Target{{Name: "a", Address: "a:80"}}, true},
		{"negative weight", func(*configs.Health) {}, []Target{{Name: "a", Address: "a:80", Weight: -1}}, true},
		{"weight above max", func(*configs.Health) {}, []Target{{Name: "a", Address: "a:80", Weight: configs.MaxNodeWeight + 1}}, true},
		{"weight 1 and max", func(*configs.Health) {}, []Target{{Name: "a", Address: "a:80", Weight: 1}, {Name: "b", Address: "b:80", Weight: configs.MaxNodeWeight}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.cfg(&cfg)
			err := Check(cfg, tt.targets)
			if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, ErrNoDefaults) {
				t.Fatalf("Check = %v, want error %v (ErrNoDefaults)", err, tt.wantErr)
			}
			c, errNew := New(cfg, Options{})
			cfgRefused := errNew != nil
			// Reconfigure and SetTargets on a checker running the defaults
			// refuse the same and keep what is in force.
			base, _ := New(good, Options{})
			if err := base.SetTargets(ok); err != nil {
				t.Fatal(err)
			}
			before := *base.params()
			errRe := base.Reconfigure(cfg)
			errSet := base.SetTargets(tt.targets)
			if (errRe != nil) != cfgRefused || cfgRefused && *base.params() != before {
				t.Errorf("Reconfigure = %v, New = %v: want the same verdict and the old params kept", errRe, errNew)
			}
			if targetsRefused := err != nil && !cfgRefused; (errSet != nil) != targetsRefused {
				t.Errorf("SetTargets = %v, want error %v", errSet, targetsRefused)
			}
			if errSet != nil && (len(base.Snapshot()) != 1 || base.Node("a:80") == nil || base.Node("a:80").weight.Load() != configs.DefaultNodeWeight) {
				t.Errorf("refused SetTargets changed the node set: %+v", base.Snapshot())
			}
			if !cfgRefused && c == nil {
				t.Error("New returned nil without an error")
			}
		})
	}
}

// TestWithDefaultsParams: the defaults configs gives an empty section are
// what the machine runs with.
func TestWithDefaultsParams(t *testing.T) {
	c := newChecker(t, configs.Health{}, Options{})
	p := *c.params()
	if p.path != configs.DefaultHealthPath || p.interval != 2*time.Second || p.fast != 500*time.Millisecond ||
		p.down != 2*time.Second || p.timeout != time.Second || p.rise != 2 || p.fall != 2 ||
		p.jitter != 200*time.Millisecond || p.slowStart != 30*time.Second || p.failures != 5 ||
		p.baseEject != 30*time.Second || p.maxEject != 5*time.Minute || p.maxEjectPct != 50 || p.trustBypassed {
		t.Errorf("New(defaults of an empty section) params = %+v", p)
	}
}

func TestInitialStates(t *testing.T) {
	clk := newClock()
	c := newTestChecker(t, clk, testConfig(), "a", "b")
	a, b := c.Node("a:80"), c.Node("b:80")
	if a.State() != Up || b.State() != Up || !c.PoolHealthy() {
		t.Fatalf("at LB start: a %v b %v healthy %v; want up up true", a.State(), b.State(), c.PoolHealthy())
	}
	if w := a.Weight(clk.Now().UnixNano()); w != 100 {
		t.Errorf("no slow start at LB start: weight %d, want 100", w)
	}
	// The first bad answer of a node up from the start is believed.
	verdict(t, c, clk, "a:80", Down)
	if a.State() != Down {
		t.Errorf("first bad answer: a %v, want down", a.State())
	}
	verdict(t, c, clk, "b:80", Up)

	// A node added while b serves starts down, and its first good answer
	// brings it up with a slow-start ramp.
	clk.Advance(time.Second)
	setTargets(t, c, []Target{{Name: "a", Address: "a:80"}, {Name: "b", Address: "b:80"}, {Name: "c", Address: "c:80", Weight: 50}})
	cn := c.Node("c:80")
	if cn.State() != Down {
		t.Fatalf("node added while others serve: %v, want down", cn.State())
	}
	if c.Node("a:80") != a || c.Node("b:80") != b {
		t.Error("SetTargets replaced the *Node of an unchanged address")
	}
	clk.Advance(time.Second)
	verdict(t, c, clk, "c:80", Up)
	if cn.State() != Up {
		t.Fatalf("after first good answer: %v, want up", cn.State())
	}
	if w := cn.Weight(clk.Now().Add(5 * time.Second).UnixNano()); w != 25 {
		t.Errorf("weight half-way through slow start = %d, want 25", w)
	}
	if w := a.Weight(clk.Now().UnixNano()); w != 100 {
		t.Errorf("weight 0 in Target: %d, want the default 100", w)
	}

	// When no kept node is up, a new node starts up: nothing to lose.
	verdict(t, c, clk, "b:80", Down)
	for range 3 {
		verdict(t, c, clk, "b:80", Down)
		verdict(t, c, clk, "c:80", Down)
	}
	if c.PoolHealthy() {
		t.Fatal("pool healthy with every node down")
	}
	setTargets(t, c, []Target{{Name: "b", Address: "b:80"}, {Name: "d", Address: "d:80"}})
	if s := c.Node("d:80").State(); s != Up || !c.PoolHealthy() {
		t.Errorf("node added to a dead pool: %v healthy %v, want up true", s, c.PoolHealthy())
	}
	if c.Node("a:80") != nil {
		t.Error("removed node still returned by Node")
	}
}

func TestSetTargetsRemovedAndRepeated(t *testing.T) {
	clk := newClock()
	c := newTestChecker(t, clk, testConfig(), "a", "b")
	a := c.Node("a:80")
	jobs, _ := c.due(clk.Now(), nil)
	if len(jobs) != 2 {
		t.Fatalf("due at start = %d jobs, want 2 (new nodes are probed at once)", len(jobs))
	}
	setTargets(t, c, []Target{{Name: "b", Address: "b:80"}, {Name: "b2", Address: "b:80"}})
	if got := len(c.Snapshot()); got != 1 {
		t.Errorf("repeated address: %d nodes, want 1", got)
	}
	// A result for a removed node and the removed node's Observe are ignored.
	c.apply(probeResult{n: a, v: Down, started: clk.Now(), ended: clk.Now()})
	for range 10 {
		a.Observe(ServerError, clk.Now().UnixNano())
	}
	if a.State() != Up {
		t.Errorf("removed node changed state to %v", a.State())
	}
	// Re-adding the address makes a new node, which a stale result does not touch.
	setTargets(t, c, []Target{{Name: "a", Address: "a:80"}, {Name: "b", Address: "b:80"}})
	if c.Node("a:80") == a {
		t.Error("re-added address reuses the removed *Node")
	}
}

func TestSchedule(t *testing.T) {
	clk := newClock()
	cfg := testConfig() // interval 2s, fast 500ms, down 5s, rise 2, fall 3
	c := newTestChecker(t, clk, cfg, "a")
	n := c.Node("a:80")
	// run performs one check if due at the clock's time and returns the
	// delay until the next one.
	run := func(v State) time.Duration {
		t.Helper()
		now := clk.Now()
		jobs, _ := c.due(now, nil)
		if len(jobs) != 1 {
			t.Fatalf("at %v: %d jobs due, want 1", now.Sub(t0), len(jobs))
		}
		if again, _ := c.due(now, nil); len(again) != 0 {
			t.Fatal("a check in flight was handed out twice")
		}
		c.apply(probeResult{n: jobs[0].n, v: v, started: now, ended: now.Add(30 * time.Millisecond)})
		c.mu.Lock()
		next := n.m.nextProbe
		c.mu.Unlock()
		if jobs, due := c.due(next.Add(-time.Nanosecond), nil); len(jobs) != 0 || !due.Equal(next) {
			t.Fatalf("just before the next check: %d jobs, next %v; want 0, %v", len(jobs), due, next)
		}
		clk.Advance(next.Sub(now))
		return next.Sub(now)
	}
	steps := []struct {
		v         State
		wantDelay time.Duration
		wantState State
	}{
		{Up, 2 * time.Second, Up},             // first answer: steady
		{Down, 500 * time.Millisecond, Up},    // failing: fast
		{Down, 500 * time.Millisecond, Up},    // still failing
		{Down, 5 * time.Second, Down},         // fell: down interval
		{Down, 5 * time.Second, Down},         // settled down
		{Up, 500 * time.Millisecond, Down},    // recovering: fast
		{Up, 2 * time.Second, Up},             // rose: interval
		{Draining, 2 * time.Second, Draining}, // mosparo update: steady
	}
	for i, s := range steps {
		if got := run(s.v); got != s.wantDelay {
			t.Errorf("step %d (%v): delay %v, want %v", i, s.v, got, s.wantDelay)
		}
		if n.State() != s.wantState {
			t.Errorf("step %d (%v): state %v, want %v", i, s.v, n.State(), s.wantState)
		}
	}
}

func TestScheduleJitterBounds(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	j := configs.Duration(300 * time.Millisecond)
	cfg.Jitter = &j
	for _, r := range []int64{0, int64(150 * time.Millisecond), int64(300*time.Millisecond) - 1} {
		c := newChecker(t, cfg, Options{Clock: clk, Rand: func(n int64) int64 { return r }})
		setTargets(t, c, []Target{{Name: "a", Address: "a:80"}})
		verdict(t, c, clk, "a:80", Up)
		n := c.Node("a:80")
		c.mu.Lock()
		d := n.m.nextProbe.Sub(clk.Now())
		c.mu.Unlock()
		if d != 2*time.Second-time.Duration(r) {
			t.Errorf("rand %d: next check in %v, want %v", r, d, 2*time.Second-time.Duration(r))
		}
	}
}

func TestOperatorStates(t *testing.T) {
	clk := newClock()
	c := newTestChecker(t, clk, testConfig(), "a", "b")
	a := c.Node("a:80")
	drain(c.Changed())
	if err := c.SetOperatorState("a", Maintenance); err != nil {
		t.Fatal(err)
	}
	if a.State() != Maintenance || a.Operator() != Maintenance || !drain(c.Changed()) {
		t.Errorf("maintenance: state %v operator %v", a.State(), a.Operator())
	}
	// Checks go on underneath without changing what the balancer sees.
	for range 3 {
		verdict(t, c, clk, "a:80", Down)
	}
	if a.State() != Maintenance {
		t.Errorf("maintenance node after bad checks: %v", a.State())
	}
	// A reload that renames the node keeps its operator state (by address).
	setTargets(t, c, []Target{{Name: "renamed", Address: "a:80"}, {Name: "b", Address: "b:80"}})
	if a.State() != Maintenance {
		t.Errorf("after SetTargets: %v, want maintenance", a.State())
	}
	if err := c.SetOperatorState("a", Up); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("old name: err %v, want ErrUnknownNode", err)
	}
	// Ready shows the checks' verdict: down, so no ramp yet.
	if err := c.SetOperatorState("renamed", Up); err != nil {
		t.Fatal(err)
	}
	if a.State() != Down || a.Operator() != Up {
		t.Errorf("ready after failed checks: state %v operator %v, want down up", a.State(), a.Operator())
	}
	verdict(t, c, clk, "a:80", Up)
	verdict(t, c, clk, "a:80", Up)
	if a.State() != Up {
		t.Fatalf("after rise: %v", a.State())
	}
	// Operator drain.
	if err := c.SetOperatorState("renamed", Draining); err != nil {
		t.Fatal(err)
	}
	setTargets(t, c, []Target{{Name: "renamed", Address: "a:80"}, {Name: "b", Address: "b:80"}})
	if a.State() != Draining || a.Operator() != Draining {
		t.Errorf("operator drain after reload: state %v operator %v", a.State(), a.Operator())
	}
	// Ready from drain back to up ramps.
	clk.Advance(time.Second)
	if err := c.SetOperatorState("renamed", Up); err != nil {
		t.Fatal(err)
	}
	if w := a.Weight(clk.Now().UnixNano()); w != 1 {
		t.Errorf("weight right after ready = %d, want 1 (slow start)", w)
	}
	for _, bad := range []State{Down, Setup, 0, 77} {
		if err := c.SetOperatorState("renamed", bad); !errors.Is(err, ErrOperatorState) {
			t.Errorf("SetOperatorState(%v) = %v, want ErrOperatorState", bad, err)
		}
	}
}

func TestPoolHealthyAndChanged(t *testing.T) {
	clk := newClock()
	c := newTestChecker(t, clk, testConfig(), "a")
	drain(c.Changed())
	verdict(t, c, clk, "a:80", Up)
	if drain(c.Changed()) {
		t.Error("Changed signalled without a change")
	}
	verdict(t, c, clk, "a:80", Draining)
	if !drain(c.Changed()) || c.PoolHealthy() {
		t.Errorf("up -> draining: changed not signalled or pool still healthy")
	}
	verdict(t, c, clk, "a:80", Setup)
	verdict(t, c, clk, "a:80", Up)
	if !drain(c.Changed()) || !c.PoolHealthy() {
		t.Error("back up: no signal or pool not healthy")
	}
	if drain(c.Changed()) {
		t.Error("signals did not coalesce")
	}
}

func TestSnapshot(t *testing.T) {
	clk := newClock()
	c := newTestChecker(t, clk, testConfig(), "a", "b")
	n := c.Node("a:80")
	start := clk.Now()
	c.apply(probeResult{n: n, v: Down, reason: "HTTP 404 ...", started: start, ended: start.Add(12 * time.Millisecond)})
	n.Observe(ServerError, start.UnixNano())
	s := c.Snapshot()
	if len(s) != 2 || s[0].Name != "a" || s[1].Name != "b" {
		t.Fatalf("Snapshot order/names = %+v", s)
	}
	got := s[0]
	if got.State != Down || got.Health != Down || got.Reason != "HTTP 404 ..." || got.CheckLatency != 12*time.Millisecond ||
		!got.LastCheck.Equal(start.Add(12*time.Millisecond)) || got.ConsecutiveFail != 1 || got.PassiveFailures != 1 ||
		got.Weight != 100 || got.SlowStart != 1 || got.Address != "a:80" {
		t.Errorf("Snapshot()[0] = %+v", got)
	}
	if want := start.Add(5 * time.Second); !got.NextCheck.Equal(want) {
		t.Errorf("NextCheck = %v, want %v", got.NextCheck, want)
	}
	if s[1].Reason != "not checked yet" || !s[1].LastCheck.IsZero() {
		t.Errorf("unchecked node: %+v", s[1])
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name":"a"`, `"state":"down"`, `"health":"down"`, `"check_latency_ns":12000000`, `"consecutive_fail":1`, `"slow_start_progress":1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	for _, absent := range []string{`"operator"`, `"ejected_until"`} {
		if strings.Contains(string(b), absent) {
			t.Errorf("JSON %s has %s, which is unset", b, absent)
		}
	}
}

func TestReconfigureKeepsState(t *testing.T) {
	clk := newClock()
	c := newTestChecker(t, clk, testConfig(), "a", "b", "c")
	a := c.Node("a:80")
	verdict(t, c, clk, "a:80", Up)
	verdict(t, c, clk, "b:80", Up)
	if err := c.SetOperatorState("b", Maintenance); err != nil {
		t.Fatal(err)
	}
	a.Observe(ServerError, clk.Now().UnixNano())
	a.Observe(ServerError, clk.Now().UnixNano())

	cfg := testConfig()
	cfg.Interval = configs.Duration(10 * time.Second)
	one := 1
	cfg.Passive.ConsecutiveFailures = &one
	if err := c.Reconfigure(cfg.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	if c.Node("a:80") != a || a.State() != Up || c.Node("b:80").State() != Maintenance {
		t.Fatalf("after Reconfigure: a %v b %v", a.State(), c.Node("b:80").State())
	}
	if a.fails.Load() != 0 {
		t.Errorf("passive count not reset: %d", a.fails.Load())
	}
	// The new threshold is in force: one failure ejects.
	a.Observe(ConnectFailure, clk.Now().UnixNano())
	if a.State() != Down {
		t.Errorf("after one failure with consecutive_failures 1: %v", a.State())
	}
	verdict(t, c, clk, "a:80", Up)
	c.mu.Lock()
	d := a.m.nextProbe.Sub(clk.Now())
	c.mu.Unlock()
	if d != 10*time.Second {
		t.Errorf("next check in %v, want the new interval 10s", d)
	}
}

// TestOnChange: the hook sees each change of the effective state once,
// with what caused it (the status page's event list), and nothing else.
func TestOnChange(t *testing.T) {
	clk := newClock()
	var got []Change
	cfg := testConfig()
	c := newChecker(t, cfg, Options{Logger: zaptest.NewLogger(t), Clock: clk, Rand: func(int64) int64 { return 0 },
		OnChange: func(ch Change) { got = append(got, ch) }})
	setTargets(t, c, []Target{{Name: "a", Address: "a:80"}, {Name: "b", Address: "b:80"}, {Name: "c", Address: "c:80"}})
	for _, x := range []string{"a:80", "b:80", "c:80"} {
		verdict(t, c, clk, x, Up) // already up: no change
	}
	if err := c.SetOperatorState("b", Draining); err != nil {
		t.Fatal(err)
	}
	if err := c.SetOperatorState("b", Draining); err != nil { // no change the second time
		t.Fatal(err)
	}
	a := c.Node("a:80")
	for range 3 {
		a.Observe(ServerError, clk.Now().UnixNano())
	}
	want := []Change{
		{Node: "b", Address: "b:80", From: Up, To: Draining, Reason: "test up", Operator: Draining, At: clk.Now()},
		{Node: "a", Address: "a:80", From: Up, To: Down, Reason: "test up", Ejected: true, At: clk.Now()},
	}
	if len(got) != len(want) {
		t.Fatalf("OnChange saw %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if g.At.Equal(want[i].At) {
			g.At = want[i].At // the passive path rebuilds the time from nanoseconds
		}
		if g != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
