package vip

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// The runner (instance.run) without root: a fake host (advert socket,
// addresses, links, GARP) and a fake clock that drives its timers. The
// netns tests with keepalived cover the real host.

type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	at    time.Time
	armed bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1), at: c.now.Add(d), armed: true}
	c.timers = append(c.timers, t)
	return t
}

// After and AfterFunc complete clock.Clock. The runner makes timers only
// (TimerClock); a call here means it started to wait some other way, which
// the fake clock would not drive, so the test stops at once.
func (c *fakeClock) After(time.Duration) <-chan time.Time {
	panic("vip: the runner waited with After; fakeClock drives only NewTimer")
}

func (c *fakeClock) AfterFunc(time.Duration, func()) func() bool {
	panic("vip: the runner waited with AfterFunc; fakeClock drives only NewTimer")
}

// advance moves the clock by d and fires every timer due; it returns how
// many fired.
func (c *fakeClock) advance(d time.Duration) int {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if t.armed && !t.at.After(c.now) {
			t.armed = false
			due = append(due, t)
		}
	}
	now := c.now
	c.mu.Unlock()
	for _, t := range due {
		t.ch <- now
	}
	return len(due)
}

func (t *fakeTimer) Chan() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	select { // like time.Timer since Go 1.23: no stale value after Stop
	case <-t.ch:
	default:
	}
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	was := t.Stop()
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.at, t.armed = t.c.now.Add(d), true
	return was
}

// fakeHost records what the instance does to the machine.
type fakeHost struct {
	linkDown atomic.Bool
	conn     *fakeConn
	held     atomic.Bool
	adds     atomic.Int32
	removes  atomic.Int32 // remove calls with at least one address
	garps    atomic.Int32
	// netlinkOpen is how many netlink sockets are open now, unheld the
	// address changes made without one (issue 13: the instance holds its
	// socket from start to stop).
	netlinkOpen, unheld atomic.Int32
}

var errClosed = errors.New("fake socket closed")

type fakeConn struct {
	mu     sync.Mutex
	sent   []uint8 // priorities, in order
	in     chan received
	closed chan struct{}
	once   sync.Once
}

func (c *fakeConn) send(a *Advertisement) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, a.Priority)
	return nil
}

func (c *fakeConn) recv() (*Advertisement, netip.Addr, error) {
	select {
	case r := <-c.in:
		return r.a, r.from, nil
	case <-c.closed:
		return nil, netip.Addr{}, errClosed
	}
}

func (c *fakeConn) close() error { c.once.Do(func() { close(c.closed) }); return nil }

func (c *fakeConn) adverts() []uint8 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint8{}, c.sent...)
}

var fakeSrc = netip.MustParseAddr("192.0.2.11")

func (h *fakeHost) open(string, bool, []vipAddr, connConfig) (instanceConn, netip.Addr, error) {
	return h.conn, fakeSrc, nil
}

func (h *fakeHost) netlink() (linkSocket, error) {
	h.netlinkOpen.Add(1)
	return fakeNetlink{h}, nil
}

func (h *fakeHost) announcer([]vipAddr) announcer { return fakeAnnouncer{h} }

type fakeNetlink struct{ h *fakeHost }

func (n fakeNetlink) addrs(vips []vipAddr) addrSet { return &fakeAddrs{h: n.h, n: len(vips)} }
func (n fakeNetlink) linkUp(string) bool           { return !n.h.linkDown.Load() }
func (n fakeNetlink) close() error                 { n.h.netlinkOpen.Add(-1); return nil }

type fakeAddrs struct {
	h *fakeHost
	n int
}

func (a *fakeAddrs) add() error {
	a.checkSocket()
	a.h.adds.Add(1)
	a.h.held.Store(true)
	return nil
}

func (a *fakeAddrs) remove() error {
	a.checkSocket()
	if a.n > 0 {
		a.h.removes.Add(1)
		a.h.held.Store(false)
	}
	return nil
}

func (a *fakeAddrs) checkSocket() {
	if a.h.netlinkOpen.Load() != 1 {
		a.h.unheld.Add(1)
	}
}

func (a *fakeAddrs) watchDeleted(context.Context, func(netip.Addr), func(error)) (func(), error) {
	return func() {}, nil
}

type fakeAnnouncer struct{ h *fakeHost }

func (fakeAnnouncer) prepare() {}
func (a fakeAnnouncer) announce(context.Context, int, time.Duration, func() bool) error {
	a.h.garps.Add(1)
	return nil
}
func (fakeAnnouncer) close() {}

// rig runs one instance on the fakes.
type rig struct {
	t     *testing.T
	in    *instance
	clock *fakeClock
	host  *fakeHost
	stop  context.CancelFunc
	done  chan struct{}
}

var peer = netip.MustParseAddr("192.0.2.12")

func newRig(t *testing.T, linkDown bool, adopt *HandoverState) *rig {
	t.Helper()
	c, err := configs.Parse("t.yaml", []byte(`vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, priority: 100, advert_interval: 1s, virtual_ips: ["192.0.2.100/24"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, clock: &fakeClock{now: time.Unix(1_700_000_000, 0)}, done: make(chan struct{}),
		host: &fakeHost{conn: &fakeConn{in: make(chan received), closed: make(chan struct{})}}}
	r.host.linkDown.Store(linkDown)
	m, err := New(c.VRRP, Options{Clock: r.clock, Host: r.host, TrackInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if adopt != nil {
		m.AdoptStates([]HandoverState{*adopt})
	}
	r.in = m.instances[0]
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { defer close(r.done); r.in.run(ctx) }()
	t.Cleanup(r.shutdown)
	select {
	case <-r.in.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the instance did not start")
	}
	return r
}

// wait waits (bounded) until the run loop has handled more than n events.
func (r *rig) wait(n uint64) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); r.in.steps.Load() < n; {
		if time.Now().After(deadline) {
			r.t.Fatalf("the run loop handled %d events, want %d", r.in.steps.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// advance moves the clock and waits until the loop took every timer that fired.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	n := r.in.steps.Load()
	r.wait(n + uint64(r.clock.advance(d)))
}

// advert delivers an advert of priority prio from the peer and waits until
// the loop handled it.
func (r *rig) advert(prio uint8) {
	r.t.Helper()
	n := r.in.steps.Load()
	r.host.conn.in <- received{a: &Advertisement{Version: Version3, VRID: 51, Priority: prio, MaxAdvertInterval: 100,
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}, from: peer}
	r.wait(n + 1)
}

func (r *rig) shutdown() {
	r.stop()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Fatal("run did not return")
	}
}

// TestInstanceRun drives the runner through its transitions with fake
// adverts and a fake clock, then stops it, and checks the state, what went
// on the wire (advert priorities in order) and the addresses.
func TestInstanceRun(t *testing.T) {
	const long = 10 * time.Second // beyond Master_Down_Interval (3s + skew)
	tests := []struct {
		name     string
		linkDown bool
		adopt    *HandoverState
		script   func(r *rig)
		commit   bool
		state    State // before the stop
		adverts  []uint8
		held     bool // after the stop
		removes  int32
	}{
		{name: "alone: backup, master after Master_Down_Interval, priority 0 at stop",
			script: func(r *rig) { r.advance(long) }, state: Master, adverts: []uint8{100, 0}, removes: 2},
		{name: "a higher priority master keeps it backup",
			script: func(r *rig) {
				for i := 0; i < 5; i++ {
					r.advert(200)
					r.advance(time.Second)
				}
			}, state: Backup, adverts: nil, removes: 1},
		{name: "master preempted by a higher priority: advert, then backup without VIPs",
			script: func(r *rig) { r.advance(long); r.advert(200) }, state: Backup, adverts: []uint8{100, 100}, removes: 2},
		{name: "master answers a lower priority at once",
			script: func(r *rig) { r.advance(long); r.advert(50) }, state: Master, adverts: []uint8{100, 100, 0}, removes: 2},
		{name: "master sends periodic adverts",
			script: func(r *rig) { r.advance(long); r.advance(time.Second); r.advance(time.Second) }, state: Master, adverts: []uint8{100, 100, 100, 0}, removes: 2},
		{name: "backup takes over after Skew_Time on priority 0",
			script: func(r *rig) { r.advert(200); r.advert(0); r.advance(time.Second) }, state: Master, adverts: []uint8{100, 0}, removes: 2},
		{name: "link down: FAULT, nothing sent", linkDown: true,
			script: func(r *rig) { r.advance(long) }, state: Fault, adverts: nil, removes: 1},
		{name: "adopted master resumes at once, removes nothing, stops silently",
			adopt:  &HandoverState{Interface: "eth0", VRID: 51, State: Master, Holding: true},
			script: func(r *rig) {}, state: Master, adverts: []uint8{100}, held: true, removes: 0},
		{name: "adopted master, committed, stops as usual",
			adopt:  &HandoverState{Interface: "eth0", VRID: 51, State: Master, Holding: true},
			script: func(r *rig) {}, commit: true, state: Master, adverts: []uint8{100, 0}, removes: 1},
		{name: "adopted backup starts as a new backup without removing anything",
			adopt:  &HandoverState{Interface: "eth0", VRID: 51, State: Backup},
			script: func(r *rig) { r.advert(200) }, state: Backup, adverts: nil, removes: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.linkDown, tt.adopt)
			tt.script(r)
			if got := r.in.Status().State; got != tt.state {
				t.Errorf("state = %s, want %s", got, tt.state)
			}
			if tt.commit {
				r.in.silent.Store(false)
			}
			if got := r.host.netlinkOpen.Load(); got != 1 {
				t.Errorf("netlink sockets open while running = %d, want 1", got)
			}
			r.shutdown()
			if got := r.host.netlinkOpen.Load(); got != 0 {
				t.Errorf("netlink sockets open after the stop = %d, want 0", got)
			}
			if got := r.host.unheld.Load(); got != 0 {
				t.Errorf("address changes without the instance's netlink socket = %d, want 0", got)
			}
			if got := r.host.conn.adverts(); !reflect.DeepEqual(got, tt.adverts) && !(len(got) == 0 && len(tt.adverts) == 0) {
				t.Errorf("adverts sent with priorities %v, want %v", got, tt.adverts)
			}
			if got := r.host.held.Load(); got != tt.held {
				t.Errorf("VIPs held after the stop = %v, want %v", got, tt.held)
			}
			if got := r.host.removes.Load(); got != tt.removes {
				t.Errorf("VIP removals = %d, want %d (a stale clean-up at start counts)", got, tt.removes)
			}
		})
	}
}
