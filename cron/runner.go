package cron

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"go.uber.org/zap"
)

// Errors New and Run return; callers may branch on them.
var (
	// ErrNoLeader: the cron is enabled but nothing says whether this LB
	// runs it (no Options.Leader and not standalone).
	ErrNoLeader = errors.New("no leader source: set Options.Leader or cron.standalone")
	// ErrNoNodes: Options.Nodes is nil.
	ErrNoNodes = errors.New("no node source: set Options.Nodes")
	// ErrNoKey: neither cron.key nor cron.key_file gives a key.
	ErrNoKey = errors.New("no key: set cron.key or cron.key_file")
	// ErrRunning: Run was called while it is running.
	ErrRunning = errors.New("already running")
)

// Path is mosparo's web-cron route (FACTS 2.4).
const Path = "/cron-jobs/execute"

// Leader says whether this LB is the one that runs the cron: the VRRP
// master of cron.vrrp_instance, or the holder of the Consul lock. It is
// polled, so it must be cheap and safe for concurrent use.
type Leader interface {
	IsLeader() bool
}

// Nodes lists the mosparo nodes with their health. It is called once per
// run; the slice is not kept.
type Nodes interface {
	Candidates() []Candidate
}

// LeaderFunc adapts a function to Leader, e.g.
// cron.LeaderFunc(func() bool { return vips.IsMaster("VI_1") }).
type LeaderFunc func() bool

// IsLeader implements Leader.
func (f LeaderFunc) IsLeader() bool { return f() }

// NodesFunc adapts a function to Nodes.
type NodesFunc func() []Candidate

// Candidates implements Nodes.
func (f NodesFunc) Candidates() []Candidate { return f() }

// Options are the Runner's dependencies. Zero fields take the defaults.
type Options struct {
	// Logger receives calls, outcomes and leadership changes; nil logs
	// nothing. The key is never logged.
	Logger *zap.Logger
	// Clock tells the time of the schedule and of results; nil is
	// clock.System. The poll timer runs in real time.
	Clock clock.Clock
	// Leader decides whether this LB runs the cron; required unless
	// cron.standalone is true (then nil means always).
	Leader Leader
	// LeaderName says in /status what Leader is, such as "vrrp VI_1" or
	// "consul mosparo-lb/cron/leader". Default "standalone" when
	// standalone, else empty.
	LeaderName string
	// Nodes lists the nodes and their health; required when enabled.
	Nodes Nodes
	// Caller sends the calls; nil is HTTPCaller{Dial: Dial}.
	Caller Caller
	// Dial opens connections for the default Caller; nil is a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Poll is how often Run checks leadership when no call is due sooner.
	// Default 1s: a new leader starts counting its first interval at most
	// this late.
	Poll time.Duration
}

// Status is the cron's state for /status and metrics: a copy, safe to keep.
type Status struct {
	// Enabled is cron.enabled.
	Enabled bool `json:"enabled"`
	// Runner is true while this LB is the one that calls the web cron.
	Runner bool `json:"runner"`
	// Leadership is Options.LeaderName.
	Leadership string `json:"leadership,omitempty"`
	// RunnerSince is when this LB last became the runner; zero if never.
	RunnerSince time.Time `json:"runner_since,omitzero"`
	// LastRun is when the last run started; zero before the first.
	LastRun time.Time `json:"last_run,omitzero"`
	// Node is the node the last run called; empty when none was up.
	Node string `json:"node,omitempty"`
	// Code is the node's HTTP status; 0 without an answer.
	Code int `json:"code,omitempty"`
	// Duration is how long the last run took.
	Duration time.Duration `json:"duration_ns"`
	// Outcome of the last run.
	Outcome Outcome `json:"outcome"`
	// Message explains the outcome and, for errors, the fix.
	Message string `json:"message,omitempty"`
	// Error is the transport error of the last run, if any (key redacted).
	Error string `json:"error,omitempty"`
	// LastSuccess is when a run last ended with Done.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// NextRun is when the next run is due; zero unless this LB is the
	// runner.
	NextRun time.Time `json:"next_run,omitzero"`
	// Calls counts requests that reached a node (an answer, a timeout or
	// a broken connection), since start.
	Calls uint64 `json:"calls"`
	// Outcomes counts runs by Outcome name since start, for metrics.
	Outcomes map[string]uint64 `json:"outcomes,omitempty"`
}

// Runner runs the web cron of one LB: a Machine for the schedule, the node
// choice, and the calls. Create it with New and start it with Run; Status
// is safe to call concurrently.
type Runner struct {
	cfg    configs.Cron // Key cleared: the key lives in target only
	target string       // Path?key=<escaped key>
	secret []string     // forms of the key to scrub from error texts
	log    *zap.Logger
	now    func() time.Time
	leader Leader
	nodes  Nodes
	caller Caller
	poll   time.Duration

	running atomic.Bool

	mu sync.Mutex // guards m and st
	m  *Machine
	st Status
}

// New checks cfg and opts and reads cron.key_file. A disabled cron gives a
// Runner whose Run only waits for its context and whose Status says so.
func New(cfg configs.Cron, opts Options) (*Runner, error) {
	if isNil(opts.Leader) {
		opts.Leader = nil
	}
	if isNil(opts.Nodes) {
		opts.Nodes = nil
	}
	if isNil(opts.Caller) {
		opts.Caller = nil
	}
	r := &Runner{
		log:    opts.Logger,
		now:    clock.OrSystem(opts.Clock).Now,
		leader: opts.Leader,
		nodes:  opts.Nodes,
		caller: opts.Caller,
		poll:   opts.Poll,
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.caller == nil {
		r.caller = HTTPCaller{Dial: opts.Dial}
	}
	if r.poll <= 0 {
		r.poll = time.Second
	}
	r.st = Status{Enabled: cfg.Enabled, Leadership: opts.LeaderName, Outcomes: map[string]uint64{}}
	key := cfg.Key
	cfg.Key = ""
	r.cfg = cfg
	if !cfg.Enabled {
		return r, nil
	}
	if cfg.Interval <= 0 || cfg.Timeout <= 0 {
		return nil, fmt.Errorf("cron: interval and timeout must be positive, got %s and %s", cfg.Interval.D(), cfg.Timeout.D())
	}
	if r.leader == nil {
		if !cfg.Standalone {
			return nil, fmt.Errorf("cron: %w", ErrNoLeader)
		}
		r.leader = LeaderFunc(func() bool { return true })
		if r.st.Leadership == "" {
			r.st.Leadership = string(configs.CronModeStandalone)
		}
	}
	if r.nodes == nil {
		return nil, fmt.Errorf("cron: %w", ErrNoNodes)
	}
	if cfg.KeyFile != "" {
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			// The path error names the file, never its content.
			return nil, fmt.Errorf("cron: key_file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return nil, fmt.Errorf("cron: %w", ErrNoKey)
	}
	escaped := url.QueryEscape(key)
	r.target = Path + "?key=" + escaped
	r.secret = []string{key, escaped}
	r.m = NewMachine(cfg.Interval.D(), retryDelay(cfg.Interval.D()))
	return r, nil
}

// retryDelay is the pause after a run found no node up: short, so the cron
// resumes soon after a node comes back, but not a hot loop.
func retryDelay(interval time.Duration) time.Duration {
	return min(interval, 10*time.Second)
}

// Run makes the calls until ctx is done, then returns nil. A call in
// flight is abandoned at once (the node may go on running it).
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("cron: %w", ErrRunning)
	}
	defer r.running.Store(false)
	if !r.cfg.Enabled {
		<-ctx.Done()
		return nil
	}
	r.log.Info("web cron started", zap.Duration("interval", r.cfg.Interval.D()),
		zap.Duration("timeout", r.cfg.Timeout.D()), zap.String("leadership", r.st.Leadership))
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		t.Reset(r.step(ctx))
	}
}

// Status returns a snapshot.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.st
	s.Outcomes = make(map[string]uint64, len(r.st.Outcomes))
	for k, v := range r.st.Outcomes {
		s.Outcomes[k] = v
	}
	return s
}

// step is one pass of Run: feed leadership and the clock to the machine,
// make the call it asks for, and return how long to sleep.
func (r *Runner) step(ctx context.Context) time.Duration {
	leader := r.leader.IsLeader()
	now := r.now()
	r.mu.Lock()
	if leader != r.m.Leader() {
		if leader {
			r.m.Step(now, EventLeader)
			r.st.RunnerSince = now
			r.log.Info("this LB runs the web cron now", zap.Time("first_run", r.m.Next()))
		} else {
			r.m.Step(now, EventFollower)
			r.log.Info("this LB no longer runs the web cron")
		}
		r.st.Runner = leader
	}
	d := r.m.Step(now, EventTick)
	r.st.NextRun = d.Next
	r.mu.Unlock()
	if d.Call {
		r.run(ctx)
	}
	return r.wait()
}

// wait is the time until the next due call, at most one poll period.
func (r *Runner) wait() time.Duration {
	r.mu.Lock()
	next := r.m.Next()
	r.mu.Unlock()
	if next.IsZero() {
		return r.poll
	}
	return max(0, min(next.Sub(r.now()), r.poll))
}

// result is one run, for Status and the log.
type result struct {
	node     Candidate
	start    time.Time
	duration time.Duration
	code     int
	outcome  Outcome
	err      error
}

// run makes the one call the machine asked for and reports its end.
func (r *Runner) run(ctx context.Context) {
	res := result{start: r.now()}
	cands := Choose(r.nodes.Candidates(), r.cfg.PreferredNode)
	res.outcome = NoNode
	for i, c := range cands {
		res.node = c
		res.code, res.outcome, res.err = r.call(ctx, c)
		if res.outcome != Unreachable || ctx.Err() != nil || i == len(cands)-1 {
			break
		}
		// Nothing reached that node, so another may run the jobs now.
		r.log.Warn("web cron node unreachable, trying the next", zap.String("node", c.Name), zap.Error(res.err))
	}
	end := r.now()
	res.duration = end.Sub(res.start)
	ev := EventDone
	if res.outcome == NoNode || res.outcome == Unreachable {
		// No node got the call: nothing can be running, so retry soon.
		ev = EventNoNode
	}
	r.mu.Lock()
	d := r.m.Step(end, ev)
	prev := r.st.Outcome
	r.record(res, d.Next)
	r.mu.Unlock()
	if ctx.Err() == nil {
		r.logResult(res, prev)
	}
}

// call sends the request to one node and classifies the answer.
func (r *Runner) call(ctx context.Context, c Candidate) (int, Outcome, error) {
	host := cmp.Or(r.cfg.Host, c.Host, c.Address)
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout.D())
	defer cancel()
	code, body, err := r.caller.Call(cctx, c.Address, host, r.target)
	if err != nil {
		err = r.redact(err)
		var ne net.Error
		switch {
		case errors.Is(err, ErrConnect):
			return 0, Unreachable, err
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
			errors.As(err, &ne) && ne.Timeout():
			return 0, Timeout, err
		}
		return 0, Failed, err
	}
	return code, classify(code, body), nil
}

// record puts a run into Status; r.mu is held.
func (r *Runner) record(res result, next time.Time) {
	s := &r.st
	s.LastRun = res.start
	s.Node = res.node.Name
	s.Code = res.code
	s.Duration = res.duration
	s.Outcome = res.outcome
	s.Message = res.outcome.Explain()
	s.Error = ""
	if res.err != nil {
		s.Error = res.err.Error()
	}
	if res.outcome == Done {
		s.LastSuccess = res.start.Add(res.duration)
	}
	if res.outcome != NoNode && res.outcome != Unreachable {
		s.Calls++
	}
	s.Outcomes[res.outcome.String()]++
	s.NextRun = next
}

// logResult logs a run: errors with their fix, fine outcomes at info, and
// "no node up" or "none reachable" only when it starts, not at every retry.
func (r *Runner) logResult(res result, prev Outcome) {
	fields := []zap.Field{
		zap.String("node", res.node.Name),
		zap.Int("code", res.code),
		zap.Duration("duration", res.duration),
		zap.Stringer("outcome", res.outcome),
	}
	if res.err != nil {
		fields = append(fields, zap.Error(res.err))
	}
	switch o := res.outcome; {
	case o.OK():
		r.log.Info("web cron called", fields...)
	case (o == NoNode || o == Unreachable) && o == prev:
		// Retried every few seconds: log when it starts, not every time.
		r.log.Debug("web cron still waits for a node", fields...)
	case o.ConfigError():
		r.log.Error("web cron refused by mosparo", append(fields, zap.String("fix", o.Explain()))...)
	default:
		r.log.Warn("web cron failed", append(fields, zap.String("hint", o.Explain()))...)
	}
}

// redact removes the key from an error text (a custom Caller might quote
// the URL); the error chain is kept for errors.Is.
func (r *Runner) redact(err error) error {
	msg := err.Error()
	clean := msg
	for _, s := range r.secret {
		clean = strings.ReplaceAll(clean, s, "REDACTED")
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// isNil reports whether an interface holds nothing or a nil pointer, func
// or map, so a typed nil from the wiring (a nil *ConsulLock) counts as
// unset instead of panicking at the first call.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Interface, reflect.Slice, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// Interface guards.
var (
	_ Leader = LeaderFunc(nil)
	_ Nodes  = NodesFunc(nil)
)
