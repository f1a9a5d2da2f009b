package cron

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// testKey has characters that must be escaped in the query string.
const testKey = "k3y/+&= Zq9w"

// cluster is a set of emulated mosparo nodes on loopback sharing a fake
// clock, with an "up" flag per node standing in for the health checker.
type cluster struct {
	nodes []*mosparoemu.Node
	up    []atomic.Bool
	admin []bool
}

func startCluster(t *testing.T, clock *clocktest.Manual, n int) *cluster {
	t.Helper()
	c := &cluster{up: make([]atomic.Bool, n), admin: make([]bool, n)}
	for i := range n {
		node, err := mosparoemu.Start(mosparoemu.Options{
			Name:    fmt.Sprintf("node%d", i+1),
			CronKey: testKey,
			Clock:   clock,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		c.nodes = append(c.nodes, node)
		c.up[i].Store(true)
	}
	return c
}

// Candidates implements Nodes.
func (c *cluster) Candidates() []Candidate {
	out := make([]Candidate, 0, len(c.nodes))
	for i, n := range c.nodes {
		out = append(out, Candidate{Name: n.Name(), Address: n.Addr(), Admin: c.admin[i], Up: c.up[i].Load()})
	}
	return out
}

// calls returns the cron calls each node received.
func (c *cluster) calls() []int64 {
	out := make([]int64, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Count("cron")
	}
	return out
}

func (c *cluster) total() int64 {
	var s int64
	for _, v := range c.calls() {
		s += v
	}
	return s
}

// flag is a Leader the test flips.
type flag struct{ atomic.Bool }

func (f *flag) IsLeader() bool { return f.Load() }

// countingFlag is a flag that counts the runner's questions: Run asks once
// per pass of its loop.
type countingFlag struct {
	flag
	asked atomic.Int64
}

func (f *countingFlag) IsLeader() bool {
	f.asked.Add(1)
	return f.Load()
}

func cronConfig(interval time.Duration) configs.Cron {
	return configs.Cron{
		Enabled:  true,
		Key:      testKey,
		Interval: configs.Duration(interval),
		Timeout:  configs.Duration(2 * time.Second),
	}
}

// newRunner returns a runner with an observed logger; logs are checked for
// the key when the test ends.
func newRunner(t *testing.T, cfg configs.Cron, opts Options) (*Runner, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	opts.Logger = zap.New(core)
	r, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { assertNoKey(t, logs, r) })
	return r, logs
}

// assertNoKey fails if the key shows up in any log entry or in Status.
func assertNoKey(t *testing.T, logs *observer.ObservedLogs, r *Runner) {
	t.Helper()
	var all strings.Builder
	for _, e := range logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		fmt.Fprintf(&all, "%s %s\n", e.Message, b)
	}
	st, _ := json.Marshal(r.Status())
	all.Write(st)
	for _, form := range []string{"k3y", "Zq9w"} {
		if strings.Contains(all.String(), form) {
			t.Errorf("the key (%q) appears in logs or status:\n%s", form, all.String())
		}
	}
}

// advance moves the clock by step n times, stepping the runners after each
// move, and returns the times at which the cluster's call count grew.
func advance(ctx context.Context, clock *clocktest.Manual, c *cluster, n int, step time.Duration, rs ...*Runner) []time.Time {
	var at []time.Time
	before := c.total()
	for range n {
		now := clock.Advance(step)
		for _, r := range rs {
			r.step(ctx)
		}
		if after := c.total(); after != before {
			for range after - before {
				at = append(at, now)
			}
			before = after
		}
	}
	return at
}

func TestRunnerOneCallPerIntervalOnOneNode(t *testing.T) {
	clock := newClock()
	c := startCluster(t, clock, 3)
	c.admin[1] = true // node2: admin nodes come first
	const interval = 10 * time.Minute
	r, _ := newRunner(t, cronConfig(interval), Options{Clock: clock, Nodes: c, Leader: LeaderFunc(func() bool { return true })})
	ctx := t.Context()

	r.step(ctx)
	at := advance(ctx, clock, c, 40*20, 30*time.Second, r) // 40 intervals, a step every 30s
	if len(at) != 40 {
		t.Fatalf("%d calls in 40 intervals, want 40", len(at))
	}
	for i, a := range at {
		if want := t0.Add(time.Duration(i+1) * interval); !a.Equal(want) {
			t.Errorf("call %d at +%s, want +%s", i, a.Sub(t0), want.Sub(t0))
		}
	}
	if got := c.calls(); got[0] != 0 || got[1] != 40 || got[2] != 0 {
		t.Errorf("calls per node = %v, want [0 40 0]", got)
	}
	// Intervals counted from the end of the call: the node's own schedule
	// (also 10m) is always due, so every call really ran.
	if runs := c.nodes[1].CronRuns(); runs != 40 {
		t.Errorf("node2 ran %d times, want 40 (no 425)", runs)
	}
	st := r.Status()
	if !st.Enabled || !st.Runner || st.Outcome != Done || st.Code != 200 || st.Node != "node2" || st.Calls != 40 || st.Outcomes["done"] != 40 {
		t.Errorf("Status = %+v", st)
	}
	if want := at[len(at)-1].Add(interval); !st.NextRun.Equal(want) {
		t.Errorf("NextRun = %s, want %s", st.NextRun, want)
	}
	if !st.LastSuccess.Equal(at[len(at)-1]) || !st.LastRun.Equal(at[len(at)-1]) {
		t.Errorf("LastRun, LastSuccess = %s, %s, want %s", st.LastRun, st.LastSuccess, at[len(at)-1])
	}
}

func TestRunnerPreferredNode(t *testing.T) {
	clock := newClock()
	c := startCluster(t, clock, 3)
	c.admin[0] = true
	cfg := cronConfig(time.Minute)
	cfg.PreferredNode = "node3"
	r, _ := newRunner(t, cfg, Options{Clock: clock, Nodes: c, Leader: LeaderFunc(func() bool { return true })})
	r.step(t.Context())
	advance(t.Context(), clock, c, 5*6, 10*time.Second, r)
	if got := c.calls(); got[0] != 0 || got[1] != 0 || got[2] != 5 {
		t.Errorf("calls per node = %v, want [0 0 5]", got)
	}
}

func TestRunnerNodeDownMovesNextCall(t *testing.T) {
	clock := newClock()
	c := startCluster(t, clock, 3)
	const interval = time.Minute
	r, logs := newRunner(t, cronConfig(interval), Options{Clock: clock, Nodes: c, Leader: LeaderFunc(func() bool { return true })})
	ctx := t.Context()
	r.step(ctx)
	advance(ctx, clock, c, 3*6, 10*time.Second, r)
	if got := c.calls(); got[0] != 3 || got[1]+got[2] != 0 {
		t.Fatalf("calls per node = %v, want [3 0 0]", got)
	}

	// Health marks node1 down: the next call goes to node2, once.
	c.up[0].Store(false)
	at := advance(ctx, clock, c, 3*6, 10*time.Second, r)
	if got := c.calls(); got[0] != 3 || got[1] != 3 || got[2] != 0 {
		t.Errorf("after node1 down: calls per node = %v, want [3 3 0]", got)
	}
	if len(at) != 3 {
		t.Errorf("%d calls in 3 intervals, want 3", len(at))
	}

	// node2 dies before health notices (still "up"): the connection is
	// refused, nothing reached it, so node3 is called in the same run.
	if err := c.nodes[1].Close(); err != nil {
		t.Fatal(err)
	}
	at = advance(ctx, clock, c, 6, 10*time.Second, r)
	if got := c.calls(); got[2] != 1 || len(at) != 1 {
		t.Errorf("after node2 died: calls per node = %v (%d new), want node3 called once", got, len(at))
	}
	if st := r.Status(); st.Node != "node3" || st.Outcome != Done {
		t.Errorf("Status node, outcome = %s, %s, want node3, done", st.Node, st.Outcome)
	}
	if logs.FilterMessage("web cron node unreachable, trying the next").FilterField(zap.String("node", "node2")).Len() != 1 {
		t.Error("no log about node2 being unreachable")
	}

	// No node up: no call, retried every 10s (min(interval, 10s)), and the
	// call is made as soon as one is up again.
	for i := range c.up {
		c.up[i].Store(false)
	}
	at = advance(ctx, clock, c, 3*6, 10*time.Second, r)
	if len(at) != 0 {
		t.Errorf("%d calls with no node up", len(at))
	}
	st := r.Status()
	if st.Outcome != NoNode || st.Node != "" || st.Outcomes["no_node"] < 2 {
		t.Errorf("Status with no node up = %+v", st)
	}
	if n := logs.FilterMessage("web cron failed").FilterField(zap.Stringer("outcome", NoNode)).Len(); n != 1 {
		t.Errorf("no-node warning logged %d times, want once", n)
	}
	c.up[2].Store(true)
	at = advance(ctx, clock, c, 1, 10*time.Second, r)
	if len(at) != 1 || c.calls()[2] != 2 {
		t.Errorf("node3 back: %d calls, node3 has %d, want one more", len(at), c.calls()[2])
	}

	// Every "up" node refuses connections: nothing reached a node, so the
	// run is retried every 10s, not after an interval, and logged once.
	c.up[0].Store(true)
	for _, n := range c.nodes {
		n.Close()
	}
	calls := r.Status().Calls
	// Due a minute after the last call, then retried at +70s, +80s, +90s.
	advance(ctx, clock, c, 9, 10*time.Second, r)
	st = r.Status()
	if st.Outcome != Unreachable || st.Outcomes["unreachable"] != 4 || st.Calls != calls {
		t.Errorf("all refused: Status = %+v, want 4 unreachable runs and still %d calls", st, calls)
	}
	if n := logs.FilterMessage("web cron failed").FilterField(zap.Stringer("outcome", Unreachable)).Len(); n != 1 {
		t.Errorf("unreachable warning logged %d times, want once", n)
	}
}

// TestRunnerAnswers drives every answer of FACTS 6.1: each is reported in
// Status with its code and explanation and waits for the next interval,
// on the same node (no retry on another node).
func TestRunnerAnswers(t *testing.T) {
	tests := []struct {
		name   string
		force  int  // SetCronAnswer
		off    bool // CronDisabled
		health mosparoemu.Health
		key    string
		want   Outcome
		code   int
		level  zapcore.Level
		inText string
	}{
		{name: "200", force: 200, want: Done, code: 200, level: zapcore.InfoLevel},
		{name: "425", force: 425, want: NotDue, code: 425, level: zapcore.InfoLevel},
		{name: "429", force: 429, want: Busy, code: 429, level: zapcore.InfoLevel},
		{name: "400", force: 400, want: KeyMissing, code: 400, level: zapcore.ErrorLevel, inText: "cron.key"},
		{name: "401 real check", key: "wrong", want: BadKey, code: 401, level: zapcore.ErrorLevel, inText: "Administration > Cron jobs"},
		{name: "403 inactive", off: true, want: Inactive, code: 403, level: zapcore.ErrorLevel, inText: "webCronJobActive"},
		{name: "500", force: 500, want: ServerError, code: 500, level: zapcore.WarnLevel, inText: "not retried"},
		{name: "302 not installed", health: mosparoemu.NotConfigured, want: Unexpected, code: 302, level: zapcore.WarnLevel, inText: "/setup/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			c := &cluster{up: make([]atomic.Bool, 2), admin: make([]bool, 2)}
			for i := range 2 {
				n, err := mosparoemu.Start(mosparoemu.Options{Name: fmt.Sprintf("node%d", i+1), CronKey: testKey, CronDisabled: tt.off, Clock: clock})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { n.Close() })
				n.SetCronAnswer(tt.force)
				if tt.health != 0 {
					n.SetHealth(tt.health)
				}
				c.nodes = append(c.nodes, n)
				c.up[i].Store(true)
			}
			cfg := cronConfig(time.Minute)
			if tt.key != "" {
				cfg.Key = tt.key
			}
			r, logs := newRunner(t, cfg, Options{Clock: clock, Nodes: c, Leader: LeaderFunc(func() bool { return true })})
			ctx := t.Context()
			r.step(ctx)
			// 5 intervals stepped every second: 5 calls, all on node1.
			at := advance(ctx, clock, c, 5*60, time.Second, r)
			if got := c.calls(); got[0] != 5 || got[1] != 0 || len(at) != 5 {
				t.Errorf("calls per node = %v, want [5 0]", got)
			}
			for i := 1; i < len(at); i++ {
				if gap := at[i].Sub(at[i-1]); gap != time.Minute {
					t.Errorf("calls %d and %d %s apart, want 1m (not retried hot)", i-1, i, gap)
				}
			}
			st := r.Status()
			if st.Outcome != tt.want || st.Code != tt.code || st.Node != "node1" || st.Message != tt.want.Explain() || st.Calls != 5 {
				t.Errorf("Status = %+v, want outcome %s code %d on node1", st, tt.want, tt.code)
			}
			if tt.inText != "" && !strings.Contains(st.Message, tt.inText) {
				t.Errorf("message %q does not mention %q", st.Message, tt.inText)
			}
			entries := logs.FilterField(zap.Stringer("outcome", tt.want)).All()
			if len(entries) != 5 {
				t.Fatalf("%d log entries for %s, want 5", len(entries), tt.want)
			}
			if e := entries[0]; e.Level != tt.level {
				t.Errorf("logged at %s, want %s", e.Level, tt.level)
			}
			if tt.want.ConfigError() {
				if fix := entries[0].ContextMap()["fix"]; fix != tt.want.Explain() {
					t.Errorf("log fix = %v, want the explanation", fix)
				}
			}
		})
	}
}

// TestRunnerDenied: mosparo's access-denied page (the LB's address is not
// on the web cron allow list, FACTS 6.1 check 1) is told apart from the
// plain "403 Forbidden" of an inactive web cron.
func TestRunnerDenied(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Access denied</title></head><body>...</body></html>")
	}))
	defer srv.Close()
	clock := newClock()
	nodes := NodesFunc(func() []Candidate {
		return []Candidate{{Name: "node1", Address: strings.TrimPrefix(srv.URL, "http://"), Up: true}}
	})
	r, logs := newRunner(t, cronConfig(time.Minute), Options{Clock: clock, Nodes: nodes, Leader: LeaderFunc(func() bool { return true })})
	r.step(t.Context())
	for range 3 * 6 {
		clock.Advance(10 * time.Second)
		r.step(t.Context())
	}
	st := r.Status()
	if calls.Load() != 3 || st.Outcome != Denied || st.Code != 403 || !strings.Contains(st.Message, "allow list") {
		t.Errorf("%d calls, Status = %+v, want 3 calls denied", calls.Load(), st)
	}
	if logs.FilterMessage("web cron refused by mosparo").Len() != 3 {
		t.Error("refusals not logged as errors")
	}
}

func TestRunnerTimeoutNotRetriedElsewhere(t *testing.T) {
	clock := newClock()
	c := startCluster(t, clock, 2)
	c.nodes[0].SetDelay(10 * time.Second) // Close interrupts it
	cfg := cronConfig(time.Minute)
	cfg.Timeout = configs.Duration(200 * time.Millisecond)
	r, _ := newRunner(t, cfg, Options{Clock: clock, Nodes: c, Leader: LeaderFunc(func() bool { return true })})
	ctx := t.Context()
	r.step(ctx)
	at := advance(ctx, clock, c, 2*6, 10*time.Second, r)
	if got := c.calls(); got[0] != 2 || got[1] != 0 || len(at) != 2 {
		t.Errorf("calls per node = %v, want [2 0]", got)
	}
	st := r.Status()
	if st.Outcome != Timeout || st.Code != 0 || st.Error == "" || st.Calls != 2 {
		t.Errorf("Status = %+v, want a timeout", st)
	}
	if !strings.Contains(st.Error, "deadline exceeded") {
		t.Errorf("Error = %q, want the deadline named", st.Error)
	}
}

func TestRunnerHostAndRequest(t *testing.T) {
	clock := newClock()
	c := startCluster(t, clock, 1)
	var got struct{ address, host, target string }
	rec := callerFunc(func(ctx context.Context, address, host, target string) (int, []byte, error) {
		got.address, got.host, got.target = address, host, target
		return HTTPCaller{}.Call(ctx, address, host, target)
	})
	nodes := NodesFunc(func() []Candidate {
		cs := c.Candidates()
		cs[0].Host = "node-host.example"
		return cs
	})
	tests := []struct{ cfgHost, want string }{{"", "node-host.example"}, {"mosparo.example.com", "mosparo.example.com"}}
	for _, tt := range tests {
		c.nodes[0].Reset() // a fresh node schedule: the call runs
		cfg := cronConfig(time.Minute)
		cfg.Host = tt.cfgHost
		r, _ := newRunner(t, cfg, Options{Clock: clock, Nodes: nodes, Caller: rec, Leader: LeaderFunc(func() bool { return true })})
		r.step(t.Context())
		clock.Advance(time.Minute)
		r.step(t.Context())
		if got.host != tt.want || got.address != c.nodes[0].Addr() {
			t.Errorf("cron.host %q: called %s with Host %q, want %s with %q", tt.cfgHost, got.address, got.host, c.nodes[0].Addr(), tt.want)
		}
		if want := "/cron-jobs/execute?key=k3y%2F%2B%26%3D+Zq9w"; got.target != want {
			t.Errorf("target = %q, want %q", got.target, want)
		}
		if st := r.Status(); st.Outcome != Done {
			t.Errorf("outcome = %s, want done (escaped key accepted)", st.Outcome)
		}
	}
}

// callerFunc adapts a function to Caller.
type callerFunc func(ctx context.Context, address, host, target string) (int, []byte, error)

func (f callerFunc) Call(ctx context.Context, address, host, target string) (int, []byte, error) {
	return f(ctx, address, host, target)
}

func TestRunnerRedactsKeyInErrors(t *testing.T) {
	clock := newClock()
	c := startCluster(t, clock, 1)
	leaky := callerFunc(func(ctx context.Context, address, host, target string) (int, []byte, error) {
		return 0, nil, fmt.Errorf("get http://%s%s: %w", address, target, context.DeadlineExceeded)
	})
	r, logs := newRunner(t, cronConfig(time.Minute), Options{Clock: clock, Nodes: c, Caller: leaky, Leader: LeaderFunc(func() bool { return true })})
	r.step(t.Context())
	clock.Advance(time.Minute)
	r.step(t.Context())
	st := r.Status()
	if st.Outcome != Timeout || !strings.Contains(st.Error, "key=REDACTED") {
		t.Errorf("Status outcome, error = %s, %q, want timeout with key=REDACTED", st.Outcome, st.Error)
	}
	if logs.FilterField(zap.Stringer("outcome", Timeout)).Len() != 1 {
		t.Error("timeout not logged")
	}
	// assertNoKey (cleanup) checks logs and Status.
}

// TestRunnerLeadershipFlip runs two LBs' runners against the same nodes,
// moving leadership between them at many points; across both, exactly one
// call per interval reaches exactly one node, and only the leader calls.
func TestRunnerLeadershipFlip(t *testing.T) {
	clock := newClock()
	c := startCluster(t, clock, 2)
	const interval = 10 * time.Minute
	var la, lb flag
	a, _ := newRunner(t, cronConfig(interval), Options{Clock: clock, Nodes: c, Leader: &la, LeaderName: "test A"})
	b, _ := newRunner(t, cronConfig(interval), Options{Clock: clock, Nodes: c, Leader: &lb, LeaderName: "test B"})
	ctx := t.Context()
	la.Store(true)
	a.step(ctx)
	b.step(ctx)

	var at []time.Time
	var callsA, callsB uint64
	for i, phase := range []time.Duration{0, 30 * time.Second, 5 * time.Minute, 9*time.Minute + 30*time.Second, 10 * time.Minute} {
		// Three intervals on the current leader, then flip at the phase.
		at = append(at, advance(ctx, clock, c, int((3*interval+phase)/(30*time.Second)), 30*time.Second, a, b)...)
		stA, stB := a.Status(), b.Status()
		if stA.Runner == stB.Runner {
			t.Fatalf("flip %d: runner flags A=%v B=%v", i, stA.Runner, stB.Runner)
		}
		if stA.Calls < callsA || stB.Calls < callsB {
			t.Fatal("counters went back")
		}
		if la.Load() && stB.Calls != callsB || lb.Load() && stA.Calls != callsA {
			t.Errorf("flip %d: the follower called (A %d->%d, B %d->%d)", i, callsA, stA.Calls, callsB, stB.Calls)
		}
		callsA, callsB = stA.Calls, stB.Calls
		la.Store(!la.Load())
		lb.Store(!lb.Load())
	}
	at = append(at, advance(ctx, clock, c, int(3*interval/(30*time.Second)), 30*time.Second, a, b)...)

	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < interval {
			t.Errorf("calls %d and %d only %s apart (double run)", i-1, i, gap)
		}
	}
	stA, stB := a.Status(), b.Status()
	if total := c.total(); int64(stA.Calls+stB.Calls) != total || int(total) != len(at) {
		t.Errorf("A %d + B %d calls, nodes saw %d", stA.Calls, stB.Calls, total)
	}
	if stA.Calls == 0 || stB.Calls == 0 {
		t.Errorf("calls A %d, B %d: both should have run the cron", stA.Calls, stB.Calls)
	}
	if got := c.calls(); got[1] != 0 {
		t.Errorf("calls per node = %v: both LBs must choose node1", got)
	}
	if len(at) < 14 {
		t.Errorf("%d calls over ~20 intervals with 5 takeovers, want at least 14", len(at))
	}
	if stB.Runner && !stB.NextRun.After(stB.RunnerSince) || stA.Leadership != "test A" {
		t.Errorf("status B = %+v", stB)
	}
}

// TestRunnerRun runs the real loop on the real clock with short intervals:
// calls happen, only while leader, and Run returns on cancel.
func TestRunnerRun(t *testing.T) {
	const interval, poll = 100 * time.Millisecond, 10 * time.Millisecond
	c := startCluster(t, clocktest.NewManual(time.Now()), 2)
	var leader countingFlag
	leader.Store(true)
	r, _ := newRunner(t, cronConfig(interval), Options{Nodes: c, Leader: &leader, Poll: poll})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	eventually(t, "3 calls", func() bool { return c.total() >= 3 })
	if err := r.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	leader.Store(false)
	// The loop noticed (a call in flight was counted when it arrived).
	eventually(t, "the runner to step down", func() bool { return !r.Status().Runner })
	n := c.total()
	// No call follows, shown by the loop's own passes instead of a sleep:
	// a follower waits a full poll between passes (timers never fire
	// early), so 2*interval/poll more passes span two intervals, in which
	// a runner that ignored leadership would have called.
	asked := leader.asked.Load()
	eventually(t, "two intervals of follower passes", func() bool {
		return leader.asked.Load() >= asked+int64(2*interval/poll)
	})
	if got := c.total(); got != n {
		t.Errorf("%d calls after losing leadership", got-n)
	}
	if r.Status().Runner {
		t.Error("Status.Runner true after losing leadership")
	}

	// A call in flight is abandoned on cancel: Run returns long before
	// the nodes would answer.
	for _, node := range c.nodes {
		node.SetDelay(time.Minute)
	}
	leader.Store(true)
	eventually(t, "a call in flight", func() bool { return c.total() > n })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still runs 30s after cancel, with a call the node answers after a minute")
	}
}

func TestRunnerDisabled(t *testing.T) {
	r, err := New(configs.Cron{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Errorf("Run = %v", err)
	}
	if st := r.Status(); st.Enabled || st.Runner {
		t.Errorf("Status = %+v", st)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := NodesFunc(func() []Candidate { return nil })
	leader := LeaderFunc(func() bool { return false })
	with := func(f func(*configs.Cron)) configs.Cron {
		c := cronConfig(time.Minute)
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  configs.Cron
		opts Options
		want error
	}{
		{"ok", cronConfig(time.Minute), Options{Nodes: nodes, Leader: leader}, nil},
		{"standalone needs no leader", with(func(c *configs.Cron) { c.Standalone = true }), Options{Nodes: nodes}, nil},
		{"no leader", cronConfig(time.Minute), Options{Nodes: nodes}, ErrNoLeader},
		{"no nodes", cronConfig(time.Minute), Options{Leader: leader}, ErrNoNodes},
		{"typed nil leader", cronConfig(time.Minute), Options{Nodes: nodes, Leader: (*ConsulLock)(nil)}, ErrNoLeader},
		{"nil func nodes", cronConfig(time.Minute), Options{Leader: leader, Nodes: NodesFunc(nil)}, ErrNoNodes},
		{"no key", with(func(c *configs.Cron) { c.Key = "" }), Options{Nodes: nodes, Leader: leader}, ErrNoKey},
		{"key file", with(func(c *configs.Cron) { c.Key, c.KeyFile = "", keyFile }), Options{Nodes: nodes, Leader: leader}, nil},
		{"missing key file", with(func(c *configs.Cron) { c.Key, c.KeyFile = "", filepath.Join(dir, "nope") }), Options{Nodes: nodes, Leader: leader}, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "cron: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if err == nil && tt.cfg.KeyFile != "" && r.target != "/cron-jobs/execute?key=from-file" {
				t.Errorf("target = %q, want the trimmed key from the file", r.target)
			}
		})
	}
	r, _ := New(with(func(c *configs.Cron) { c.Standalone = true }), Options{Nodes: nodes})
	if st := r.Status(); st.Leadership != "standalone" {
		t.Errorf("Leadership = %q, want standalone", st.Leadership)
	}
}

func TestStatusJSON(t *testing.T) {
	st := Status{Enabled: true, Runner: true, Outcome: BadKey, Code: 401, Node: "node1", Outcomes: map[string]uint64{"bad_key": 1}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"enabled":true,"runner":true,"node":"node1","code":401,"duration_ns":0,"outcome":"bad_key","calls":0,"outcomes":{"bad_key":1}}`
	if string(b) != want {
		t.Errorf("json = %s\nwant   %s", b, want)
	}
}

// TestRunnerRunFailover is the two-LB shape of the netns VRRP test, on the
// real clock with Run: only the leader calls; after a failover the new
// leader calls and the old one stops.
func TestRunnerRunFailover(t *testing.T) {
	c := startCluster(t, clocktest.NewManual(time.Now()), 2)
	var la, lb flag
	cfg := cronConfig(100 * time.Millisecond)
	a, _ := newRunner(t, cfg, Options{Nodes: c, Leader: &la, Poll: 10 * time.Millisecond})
	b, _ := newRunner(t, cfg, Options{Nodes: c, Leader: &lb, Poll: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 2)
	go func() { errs <- a.Run(ctx) }()
	go func() { errs <- b.Run(ctx) }()
	stop := func() {
		cancel()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("Run = %v", err)
			}
		}
	}
	defer func() {
		if ctx.Err() == nil {
			stop()
		}
	}()

	la.Store(true)
	eventually(t, "A to call twice", func() bool { return a.Status().Calls >= 2 })
	if n := b.Status().Calls; n != 0 {
		t.Fatalf("follower B made %d calls", n)
	}
	// Failover: A loses the VIP, B gets it.
	la.Store(false)
	lb.Store(true)
	eventually(t, "B to call twice", func() bool { return b.Status().Calls >= 2 })
	stopped := a.Status().Calls
	// A window of three of B's intervals, measured in B's calls.
	calledB := b.Status().Calls
	eventually(t, "B to call three more times", func() bool { return b.Status().Calls >= calledB+3 })
	if n := a.Status().Calls; n != stopped {
		t.Errorf("old leader A made %d calls after the failover", n-stopped)
	}
	if st := a.Status(); st.Runner || !st.NextRun.IsZero() {
		t.Errorf("A status after failover: runner %v, next run %s", st.Runner, st.NextRun)
	}
	stop()
	if total := c.total(); total != int64(a.Status().Calls+b.Status().Calls) {
		t.Errorf("nodes saw %d calls, runners made %d", total, a.Status().Calls+b.Status().Calls)
	}
}
