package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// InstanceStatus is one instance's state for /status and logs.
type InstanceStatus struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	VRID      int    `json:"vrid"`
	State     State  `json:"state"`
	// Priority is the configured priority, EffectivePriority the one sent
	// after tracking (see TrackPenalty).
	Priority          int `json:"priority"`
	EffectivePriority int `json:"effective_priority"`
	TrackPenalty      int `json:"track_penalty"`
	// MasterAddress is the current master's primary address as last heard
	// (ours while MASTER), empty when unknown.
	MasterAddress        string    `json:"master_address,omitempty"`
	AdvertInterval       string    `json:"advert_interval"`
	MasterAdvertInterval string    `json:"master_advert_interval"`
	Unicast              bool      `json:"unicast"`
	VIPs                 []string  `json:"vips"`
	Transitions          int       `json:"transitions"`
	LastChange           time.Time `json:"last_change,omitzero"`
	// Version is the VRRP version spoken (2 or 3).
	Version int `json:"version"`
	// OtherVersionAdverts counts adverts of our VRID in the other VRRP
	// version (dropped: a peer speaking the wrong version), AuthFailures
	// version 2 adverts with the wrong auth type or password (dropped).
	OtherVersionAdverts uint64 `json:"other_version_adverts"`
	AuthFailures        uint64 `json:"auth_failures"`
}

// instanceConn is what the runner needs of the advert socket.
type instanceConn interface {
	send(a *Advertisement) error
	recv() (*Advertisement, netip.Addr, error)
	close() error
}

// instance is the thin runner of one virtual router: it owns the socket,
// netlink, GARP and notify side effects and one timer, and feeds a Machine.
type instance struct {
	cfg      configs.VRRPInstance
	vips     []vipAddr
	is6      bool
	peers    []netip.Addr
	unicastS netip.Addr
	mcfg     MachineConfig
	garp     GARPConfig
	notify   NotifyConfig

	opts Options
	log  *zap.Logger
	lim  *rateLimiter

	version  Version
	auth     AuthType
	authData [authDataLen]byte

	m       *Machine // only touched by the Run goroutine
	status  atomic.Pointer[InstanceStatus]
	holding atomic.Bool // VIPs added by us and not removed since

	otherVersion, authFailures atomic.Uint64

	// A reload's handover (handover.go): handover tells this instance to
	// stop without giving anything up, final is the state it stopped in,
	// from is the stopped instance this one continues.
	handover atomic.Bool
	final    atomic.Uint32
	from     *instance

	// An upgrade's handover (upgrade.go): adopted is the state the old
	// process handed over, silent keeps this instance from giving anything
	// up until the old process has let go, started is closed once the
	// first state is taken.
	adopted *HandoverState
	silent  atomic.Bool
	started chan struct{}

	steps atomic.Uint64 // events the run loop handled, for tests to wait on
}

func newInstance(c configs.VRRPInstance, opts Options) (*instance, error) {
	if opts.Host == nil {
		opts.Host = realHost{}
	}
	in := &instance{cfg: c, opts: opts, started: make(chan struct{})}
	in.log = opts.Logger.With(zap.String("instance", c.Name), zap.Int("vrid", c.VirtualRouterID))
	in.lim = newRateLimiter(10 * time.Second)
	for _, s := range c.VirtualIPs {
		v, err := configs.ParseVirtualIP(s)
		if err != nil {
			return nil, fmt.Errorf("vip: instance %s: virtual_ips %q: %w", c.Name, s, err)
		}
		dev := v.Dev
		if dev == "" {
			dev = c.Interface
		}
		in.vips = append(in.vips, vipAddr{prefix: v.Prefix, dev: dev, label: v.Label})
	}
	if len(in.vips) == 0 {
		return nil, fmt.Errorf("vip: instance %s has no virtual_ips", c.Name)
	}
	in.is6 = in.vips[0].prefix.Addr().Is6()
	for _, s := range c.UnicastPeers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("vip: instance %s: unicast peer %q: %w", c.Name, s, err)
		}
		in.peers = append(in.peers, a.Unmap())
	}
	if c.UnicastSrcIP != "" {
		a, err := netip.ParseAddr(c.UnicastSrcIP)
		if err != nil {
			return nil, fmt.Errorf("vip: instance %s: unicast_src_ip: %w", c.Name, err)
		}
		in.unicastS = a.Unmap()
	}
	if c.VirtualRouterID < 1 || c.VirtualRouterID > 255 || c.Priority < 1 || c.Priority > 255 {
		return nil, fmt.Errorf("vip: instance %s: virtual_router_id or priority out of range", c.Name)
	}
	if err := in.setVersion(c); err != nil {
		return nil, err
	}
	// configs applies the defaults (issue 13: once, there); a section that
	// did not go through it is refused, not patched up here.
	if c.HigherPrioSendAdvert == nil || c.Notify.Timeout <= 0 || c.GARP.Repeat < 1 || c.GARP.RefreshRepeat < 1 {
		return nil, fmt.Errorf("vip: instance %s: defaults not applied (configs.Parse or configs.Load)", c.Name)
	}
	in.mcfg = MachineConfig{
		Version:              in.version,
		Priority:             uint8(c.Priority),
		AdvertInterval:       ToCentiseconds(c.AdvertInterval.D()).Duration(),
		Preempt:              !c.Nopreempt,
		PreemptDelay:         c.PreemptDelay.D(),
		DownTimerAdverts:     c.DownTimerAdverts,
		LowerPrioNoAdvert:    c.LowerPrioNoAdvert,
		HigherPrioSendAdvert: *c.HigherPrioSendAdvert,
		GARPRefresh:          c.GARP.Refresh.D(),
	}
	if c.GARP.Delay != nil {
		in.mcfg.GARPDelay = c.GARP.Delay.D()
	}
	in.garp = GARPConfig{Repeat: c.GARP.Repeat, Interval: c.GARP.Interval.D(), RefreshRepeat: c.GARP.RefreshRepeat}
	in.notify = NotifyConfig{Script: c.Notify.Script, Master: c.Notify.Master, Backup: c.Notify.Backup,
		Fault: c.Notify.Fault, Stop: c.Notify.Stop, Timeout: c.Notify.Timeout.D()}
	in.m = NewMachine(in.mcfg)
	in.publish()
	return in, nil
}

// setVersion takes the VRRP version and version 2's authentication from c
// (validated by configs; checked again because a bad value here would put
// a router on the wire that no peer understands).
func (in *instance) setVersion(c configs.VRRPInstance) error {
	switch c.Version {
	case 0, 3:
		in.version = Version3
		if c.AuthType != configs.AuthTypeNone || c.AuthPass != "" {
			return fmt.Errorf("vip: instance %s: VRRPv3 has no authentication", c.Name)
		}
		return nil
	case 2:
		in.version = Version2
	default:
		return fmt.Errorf("vip: instance %s: VRRP version %d; want 2 or 3", c.Name, c.Version)
	}
	if in.is6 {
		return fmt.Errorf("vip: instance %s: VRRPv2 speaks IPv4 only", c.Name)
	}
	if d := c.AdvertInterval.D(); d%time.Second != 0 || d < time.Second || d > maxV2Seconds*time.Second {
		return fmt.Errorf("vip: instance %s: VRRPv2 advert interval %s is not 1..255 whole seconds", c.Name, d)
	}
	switch {
	case c.AuthType == configs.AuthTypePass || c.AuthType == configs.AuthTypeNone && c.AuthPass != "":
		if c.AuthPass == "" || len(c.AuthPass) > authDataLen {
			return fmt.Errorf("vip: instance %s: auth_pass must be 1..8 bytes", c.Name)
		}
		in.auth, in.authData = AuthPass, PassData(c.AuthPass)
	case c.AuthType != configs.AuthTypeNone:
		return fmt.Errorf("vip: instance %s: auth_type %q is not supported", c.Name, c.AuthType)
	}
	return nil
}

// Status is the last published snapshot with the live drop counters.
func (in *instance) Status() InstanceStatus {
	s := *in.status.Load()
	s.OtherVersionAdverts, s.AuthFailures = in.otherVersion.Load(), in.authFailures.Load()
	return s
}

func (in *instance) publish() {
	m := in.m
	s := &InstanceStatus{
		Name: in.cfg.Name, Interface: in.cfg.Interface, VRID: in.cfg.VirtualRouterID,
		State: m.State(), Priority: in.cfg.Priority, EffectivePriority: int(m.Priority()),
		TrackPenalty: m.penalty, AdvertInterval: in.mcfg.AdvertInterval.String(),
		MasterAdvertInterval: m.MasterAdverInterval().String(), Unicast: len(in.peers) > 0, Version: int(in.version),
		Transitions: m.Transitions(), LastChange: m.LastChange(),
	}
	if a := m.MasterAddr(); a.IsValid() {
		s.MasterAddress = a.String()
	}
	for _, v := range in.vips {
		s.VIPs = append(s.VIPs, v.prefix.String())
	}
	in.status.Store(s)
}

type received struct {
	a    *Advertisement
	from netip.Addr
}

// run is the instance's life: clean up stale VIPs, open the socket
// (retrying while the interface or its address is missing), run the state
// machine until ctx ends, then stop gracefully (priority 0, VIPs removed).
func (in *instance) run(ctx context.Context) error {
	host := in.opts.Host
	// The netlink socket is opened first and held until the end: adding
	// VIPs (becoming master) may need more descriptors (ARP and NDP
	// sockets), removing them (FAULT, BACKUP, stop) needs none (issue 13).
	var nl linkSocket
	if err := in.retry(ctx, func() (err error) { nl, err = host.netlink(); return err }); err != nil {
		return nil // ctx ended while waiting
	}
	defer nl.close()
	addrs := nl.addrs(in.vips)
	resume := in.takeFrom()
	stale := addrs
	var transitions int
	if in.from != nil {
		// Keep what the handed-over instance holds and we still serve.
		stale = nl.addrs(in.from.vipsNotIn(in.vips))
		// Its counters continue here: /metrics counters must not fall
		// back to zero on a reload. Its Run has returned (Adopt).
		in.otherVersion.Add(in.from.otherVersion.Load())
		in.authFailures.Add(in.from.authFailures.Load())
		transitions = in.from.m.Transitions()
	}
	in.from = nil
	if in.adopted != nil {
		// The old process still runs and holds what it holds: touch nothing.
		resume = in.adopted.State == Master && in.adopted.Holding
		stale = nl.addrs(nil)
	}
	if err := stale.remove(); err != nil {
		in.log.Warn("removing stale VIPs at start-up", zap.Error(err))
	}
	conn, err := in.open(ctx)
	if err != nil {
		return nil // ctx ended while waiting for the interface
	}
	in.m.transitions += transitions

	notifyCtx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	nt := newNotifier(in.cfg.Name, in.notify, in.log)
	var wg sync.WaitGroup
	wg.Go(func() { nt.run(notifyCtx) })

	ann := host.announcer(in.vips)
	ann.prepare()
	garpReq := make(chan garpJob, 4)
	garpCtx, stopGARP := context.WithCancel(ctx)
	wg.Go(func() { in.garpWorker(garpCtx, ann, garpReq) })

	recvCh := make(chan received, 64)
	readCtx, stopRead := context.WithCancel(ctx)
	wg.Go(func() { in.reader(readCtx, conn, recvCh) })

	deleted := make(chan netip.Addr, 16)
	watchCtx, stopWatch := context.WithCancel(ctx)
	waitWatch, err := addrs.watchDeleted(watchCtx, func(a netip.Addr) {
		select {
		case deleted <- a:
		default:
		}
	}, func(err error) {
		if watchCtx.Err() == nil {
			in.lim.warn(in.log, "netlink", "address watch error", zap.Error(err))
		}
	})
	if err != nil {
		in.log.Warn("cannot watch for deleted VIPs", zap.Error(err))
	}

	ex := &executor{in: in, conn: conn, addrs: addrs, notify: nt, garp: garpReq}
	penalty, fault := in.tracking(nl.linkUp)
	ex.do(in.m.Step(Event{Kind: EventTrack, Penalty: penalty, Fault: fault}, in.now()))
	if resume {
		ex.do(in.m.Step(Event{Kind: EventResume}, in.now()))
		if in.m.State() != Master && in.adopted == nil {
			ex.do([]Action{{Kind: ActionRemoveVIPs}})
		}
	} else {
		ex.do(in.m.Step(Event{Kind: EventStartup}, in.now()))
	}
	in.log.Info("vrrp instance started", zap.String("state", in.m.State().String()),
		zap.Int("priority", int(in.m.Priority())), zap.Stringer("source", in.mcfg.Addr), zap.Bool("unicast", len(in.peers) > 0))

	timer := in.newTimer(time.Hour)
	track := in.newTimer(in.opts.TrackInterval)
	defer track.Stop()
	resetTimer := func() {
		timer.Stop()
		if dl := in.m.Deadline(); !dl.IsZero() {
			timer.Reset(max(dl.Sub(in.now()), 0))
		}
	}
	resetTimer()
	close(in.started) // the first state is taken and the timers run
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case r := <-recvCh:
			if !sameAddrs(r.a.Addresses, in.vips) {
				in.lim.warn(in.log, "addrs:"+r.from.String(), "advert lists other virtual addresses than ours",
					zap.Stringer("from", r.from), zap.Any("addresses", r.a.Addresses))
			}
			if r.a.Priority == 0 && in.m.State() == Backup {
				in.log.Info("backup received priority 0 advert; taking over after skew time", zap.Stringer("from", r.from))
			}
			ex.do(in.m.Step(Event{Kind: EventAdvert, From: r.from, Priority: r.a.Priority, Interval: r.a.MaxAdvertInterval.Duration()}, in.now()))
		case <-timer.Chan():
			ex.do(in.m.Step(Event{Kind: EventTimer}, in.now()))
		case <-track.Chan():
			track.Reset(in.opts.TrackInterval)
			if p, f := in.tracking(nl.linkUp); p != penalty || f != fault {
				in.log.Info("tracking changed", zap.Int("penalty", p), zap.Bool("fault", f))
				penalty, fault = p, f
				ex.do(in.m.Step(Event{Kind: EventTrack, Penalty: p, Fault: f}, in.now()))
			}
		case a := <-deleted:
			if in.m.State() == Master {
				// Put it back and tell the link again (FACTS 3.7).
				in.log.Warn("a VIP was deleted by someone else while master; restoring it", zap.Stringer("vip", a))
				ex.do([]Action{{Kind: ActionAddVIPs}, {Kind: ActionGARP}})
			}
		}
		in.publish()
		resetTimer()
		in.steps.Add(1)
	}
	timer.Stop()
	if in.handover.Load() || in.silent.Load() {
		// The next generation's or process's instance continues, or an old
		// process that did not let go still holds the VIPs: no priority 0,
		// VIPs stay.
		in.final.Store(uint32(in.m.State()))
	} else {
		ex.do(in.m.Step(Event{Kind: EventShutdown}, in.now()))
	}
	in.publish()
	stopWatch()
	stopRead()
	conn.close()
	stopGARP()
	stopNotify()
	wg.Wait()
	if waitWatch != nil {
		waitWatch()
	}
	ann.close()
	in.log.Info("vrrp instance stopped")
	return nil
}

// open resolves the interface and our source address and opens the socket,
// retrying every second until it works or ctx ends.
func (in *instance) open(ctx context.Context) (instanceConn, error) {
	var conn instanceConn
	err := in.retry(ctx, func() (err error) { conn, err = in.tryOpen(); return err })
	return conn, err
}

// retry calls try every second until it succeeds or ctx ends (then it
// returns ctx's error), logging the first failure and every 60th.
func (in *instance) retry(ctx context.Context, try func() error) error {
	for attempt := 0; ; attempt++ {
		err := try()
		if err == nil {
			return nil
		}
		if attempt == 0 || attempt%60 == 0 {
			in.log.Warn("cannot start VRRP yet; retrying every second", zap.Error(err))
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (in *instance) tryOpen() (instanceConn, error) {
	conn, src, err := in.opts.Host.open(in.cfg.Interface, in.is6, in.vips, connConfig{vrid: uint8(in.cfg.VirtualRouterID),
		src: in.unicastS, peers: in.peers, version: in.version, auth: in.auth, authData: in.authData,
		interval: ToCentiseconds(in.mcfg.AdvertInterval)})
	if err != nil {
		return nil, err
	}
	in.mcfg.Addr = src
	in.m = NewMachine(in.mcfg)
	return conn, nil
}

func (in *instance) reader(ctx context.Context, conn instanceConn, out chan<- received) {
	seenOtherVersion := map[netip.Addr]bool{}
	for {
		a, from, err := conn.recv()
		if err != nil {
			var de *DropError
			if errors.As(err, &de) {
				in.dropped(de, seenOtherVersion)
				continue
			}
			if ctx.Err() == nil {
				in.log.Error("advert socket failed", zap.Error(err))
			}
			return
		}
		select {
		case out <- received{a, from}:
		case <-ctx.Done():
			return
		}
	}
}

// maxOtherVersionSenders bounds the senders remembered for logging once.
const maxOtherVersionSenders = 64

// dropped counts and logs a dropped packet. A router of the other VRRP
// version is logged once per sender (it will keep sending every interval);
// authentication failures with rate limiting like any other drop.
func (in *instance) dropped(de *DropError, seenOtherVersion map[netip.Addr]bool) {
	switch de.Reason {
	case "other VRID", "own advert", "other interface":
		return
	case dropOtherVersion:
		in.otherVersion.Add(1)
		if seenOtherVersion[de.From] || len(seenOtherVersion) >= maxOtherVersionSenders {
			return
		}
		seenOtherVersion[de.From] = true
		in.log.Warn("a router of our VRID speaks the other VRRP version; its adverts are dropped and counted (other_version_adverts), not taken for a peer: set the same version on every router of the group",
			zap.Stringer("from", de.From), zap.Error(de.Err))
		return
	case dropAuth:
		in.authFailures.Add(1)
	}
	in.lim.warn(in.log, "drop:"+de.Reason, "dropped a VRRP packet", zap.Stringer("from", de.From), zap.String("reason", de.Reason), zap.Error(de.Err))
}

// tracking computes the current penalty and fault from the pool, links (as
// linkUp reads them) and the CSS shared cache.
func (in *instance) tracking(linkUp func(name string) bool) (penalty int, fault bool) {
	if !linkUp(in.cfg.Interface) {
		fault = true
	}
	for _, t := range in.cfg.TrackInterfaces {
		if !linkUp(t.Name) {
			if t.Weight == 0 {
				fault = true
			} else {
				penalty += t.Weight
			}
		}
	}
	if in.cfg.TrackPool.Mode != configs.TrackPoolOff && in.opts.PoolHealthy != nil && !in.opts.PoolHealthy() {
		if in.cfg.TrackPool.Mode == configs.TrackPoolFault {
			fault = true
		} else {
			penalty += in.cfg.TrackPool.Weight
		}
	}
	if m := in.cfg.TrackCSSCache.Mode; m != configs.TrackPoolOff && in.opts.CSSCacheReachable != nil && !in.opts.CSSCacheReachable() {
		if m == configs.TrackPoolFault {
			fault = true
		} else {
			penalty += in.cfg.TrackCSSCache.Weight
		}
	}
	return penalty, fault
}

func (in *instance) now() time.Time { return in.opts.Clock.Now() }

type garpJob struct {
	rounds int
}

// garpWorker sends announcements off the state machine's goroutine (a
// paced burst takes Repeat*Interval); a burst stops once the VIPs are gone.
func (in *instance) garpWorker(ctx context.Context, ann announcer, jobs <-chan garpJob) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			if err := ann.announce(ctx, j.rounds, in.garp.Interval, in.holding.Load); err != nil {
				in.lim.warn(in.log, "garp", "gratuitous ARP / NA failed", zap.Error(err))
			}
		}
	}
}

// executor carries out a Machine's actions in order.
type executor struct {
	in     *instance
	conn   instanceConn
	addrs  addrSet
	notify *notifier
	garp   chan<- garpJob
	from   State
}

func (ex *executor) do(acts []Action) {
	in := ex.in
	for _, a := range acts {
		switch a.Kind {
		case ActionSendAdvert:
			adv := &Advertisement{Version: in.version, VRID: uint8(in.cfg.VirtualRouterID), Priority: a.Priority,
				MaxAdvertInterval: ToCentiseconds(in.mcfg.AdvertInterval), AuthType: in.auth, AuthData: in.authData}
			for _, v := range in.vips {
				adv.Addresses = append(adv.Addresses, v.prefix.Addr())
			}
			if err := ex.conn.send(adv); err != nil {
				in.lim.warn(in.log, "send", "sending advert failed", zap.Error(err))
			}
		case ActionAddVIPs:
			in.holding.Store(true)
			if err := ex.addrs.add(); err != nil {
				in.log.Error("adding VIPs failed", zap.Error(err))
			}
		case ActionRemoveVIPs:
			in.holding.Store(false)
			if err := ex.addrs.remove(); err != nil {
				in.log.Error("removing VIPs failed", zap.Error(err))
			}
		case ActionGARP:
			rounds := in.garp.Repeat
			if a.Refresh {
				rounds = in.garp.RefreshRepeat
			}
			select {
			case ex.garp <- garpJob{rounds: rounds}:
			default:
				in.lim.warn(in.log, "garpq", "GARP queue full; burst skipped")
			}
		case ActionNotify:
			fields := []zap.Field{zap.String("from", ex.from.String()), zap.String("to", a.State.String()), zap.Int("priority", int(a.Priority))}
			if ma := in.m.MasterAddr(); ma.IsValid() {
				fields = append(fields, zap.Stringer("master", ma))
			}
			in.log.Info("vrrp state change", fields...)
			if in.opts.OnTransition != nil {
				in.opts.OnTransition(Transition{Instance: in.cfg.Name, From: ex.from, To: a.State, Priority: a.Priority, At: in.now()})
			}
			ex.from = a.State
			ex.notify.notify(a.State, a.Priority)
		}
	}
	in.publish()
}

func sameAddrs(got []netip.Addr, vips []vipAddr) bool {
	if len(got) != len(vips) {
		return false
	}
	for _, v := range vips {
		if !slices.Contains(got, v.prefix.Addr()) {
			return false
		}
	}
	return true
}

// rateLimiter lets one log line per key through per period and counts the rest.
type rateLimiter struct {
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
	quiet  map[string]int
}

func newRateLimiter(period time.Duration) *rateLimiter {
	return &rateLimiter{period: period, last: map[string]time.Time{}, quiet: map[string]int{}}
}

func (r *rateLimiter) warn(log *zap.Logger, key, msg string, fields ...zap.Field) {
	r.mu.Lock()
	now := time.Now()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.period {
		r.quiet[key]++
		r.mu.Unlock()
		return
	}
	n := r.quiet[key]
	r.last[key], r.quiet[key] = now, 0
	r.mu.Unlock()
	if n > 0 {
		fields = append(fields, zap.Int("suppressed", n))
	}
	log.Warn(msg, fields...)
}
