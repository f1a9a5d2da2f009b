package cron

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/mosparo-lb/mosparo-lb/internal/consulclient"
	"go.uber.org/zap"
)

// maxConsulAnswer bounds one Consul answer: the lock's key and session
// answers are a few hundred bytes.
const maxConsulAnswer = 64 << 10

// ConsulLockOptions configure a ConsulLock. Zero fields take the defaults.
type ConsulLockOptions struct {
	// Address is the Consul agent's host:port (discovery.consul.address,
	// which configs defaults). Required.
	Address string
	// Scheme is http or https; empty is http (consulclient).
	Scheme string
	// Token is the ACL token (X-Consul-Token); needs session:write and
	// key:write on Key. Never logged. Empty falls back to
	// $CONSUL_HTTP_TOKEN, as with every Consul client.
	Token string
	// Datacenter to use; default the agent's.
	Datacenter string
	// Key is the KV key of the lock (cron.consul_lock). Required.
	Key string
	// Holder is stored as the key's value and in the session name, so an
	// operator can see which LB holds the lock (e.g. the host name).
	Holder string
	// TTL of the session, renewed every TTL/2 by the official client.
	// Default 15s; Consul accepts 10s..24h.
	TTL time.Duration
	// LockDelay is how long Consul keeps the key from being acquired after
	// the holder's session is invalidated (not after a clean release), so
	// that a holder which has not noticed its loss yet has stopped calling
	// before a peer takes over. 0 keeps Consul's default of 15s.
	LockDelay time.Duration
	// Retry is the pause before acquiring again after an error or a lost
	// lock. Default 5s.
	Retry time.Duration
	// Client sends the requests; nil is an http.Client with its own
	// transport. Run closes its idle connections when it ends.
	Client *http.Client
	// Logger receives acquisitions, losses and errors; nil logs nothing.
	Logger *zap.Logger
}

// consulLocker is the part of *api.Lock that ConsulLock drives.
type consulLocker interface {
	Lock(stopCh <-chan struct{}) (<-chan struct{}, error)
	Unlock() error
}

// ConsulLock is a Leader held through the official client's api.Lock: a
// session (TTL, lock delay, behaviour release) acquires the KV key, the
// client renews the session and watches the key, and among the LBs that use
// the same key at most one holds it. IsLeader is true from the acquisition
// until the client reports the lock lost (the key changed hands, the
// session was invalidated, or a watch query failed: an LB that cannot reach
// Consul stops being the leader at once). On a clean stop the lock is
// released and the session destroyed, so a peer takes over at once.
type ConsulLock struct {
	opts    ConsulLockOptions
	log     *zap.Logger
	held    atomic.Bool
	running atomic.Bool
}

// NewConsulLock checks opts; start the lock with Run.
func NewConsulLock(opts ConsulLockOptions) (*ConsulLock, error) {
	if opts.Key == "" || strings.HasPrefix(opts.Key, "/") {
		return nil, fmt.Errorf("cron: consul lock key %q must be set and not start with /", opts.Key)
	}
	if opts.Address == "" {
		// configs defaults discovery.consul.address (issue 13: defaults
		// once, there).
		return nil, errors.New("cron: consul lock without an agent address")
	}
	if opts.TTL <= 0 {
		opts.TTL = 15 * time.Second
	}
	if opts.Retry <= 0 {
		opts.Retry = 5 * time.Second
	}
	if opts.Client == nil {
		// An own transport, so Run can close its idle connections on stop
		// without touching anybody else's.
		opts.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if opts.Holder == "" {
		opts.Holder = "mosparo-lb"
	}
	l := &ConsulLock{opts: opts, log: opts.Logger}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	return l, nil
}

// IsLeader implements Leader.
func (l *ConsulLock) IsLeader() bool { return l.held.Load() }

// Run holds or waits for the lock until ctx is done, then releases it and
// returns nil.
func (l *ConsulLock) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return fmt.Errorf("cron: consul lock: %w", ErrRunning)
	}
	defer l.running.Store(false)
	defer l.opts.Client.CloseIdleConnections()
	// api.Lock's queries take no context: every request is bound to reqs,
	// which ends after the release on stop, so a query blocked in Consul
	// cannot keep Run from returning.
	reqs, endReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer endReqs()
	cl, err := consulclient.New(consulclient.Config{Address: l.opts.Address, Scheme: l.opts.Scheme, Datacenter: l.opts.Datacenter,
		Token: l.opts.Token, HTTPClient: l.opts.Client, MaxAnswer: maxConsulAnswer, Requests: reqs})
	if err != nil {
		return fmt.Errorf("cron: consul lock: %w", err)
	}
	// cleanup is not bound to reqs: it destroys a session after a stop
	// ended the requests of a wait for the key.
	cleanup, err := consulclient.New(consulclient.Config{Address: l.opts.Address, Scheme: l.opts.Scheme, Datacenter: l.opts.Datacenter,
		Token: l.opts.Token, HTTPClient: l.opts.Client, MaxAnswer: maxConsulAnswer})
	if err != nil {
		return fmt.Errorf("cron: consul lock: %w", err)
	}
	failing := false
	for ctx.Err() == nil {
		err := l.session(ctx, cl, cleanup, endReqs)
		if err != nil && ctx.Err() == nil {
			// One log line per failing streak, not one per retry.
			if !failing {
				l.log.Warn("consul lock unavailable; not running the web cron", zap.String("key", l.opts.Key), zap.Error(lockError(err)))
			}
			failing = true
		} else if err == nil {
			failing = false
		}
		t := time.NewTimer(l.opts.Retry)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// session creates a session (TTL, lock delay, behaviour release), renews it
// while it holds or waits for the lock, and destroys it before returning,
// so a clean stop leaves nothing behind in Consul.
func (l *ConsulLock) session(ctx context.Context, cl, cleanup *api.Client, endReqs context.CancelFunc) error {
	sessions := cl.Session()
	id, _, err := sessions.Create(&api.SessionEntry{Name: "mosparo-lb cron: " + l.opts.Holder, TTL: l.opts.TTL.String(),
		LockDelay: l.opts.LockDelay, Behavior: api.SessionBehaviorRelease}, nil)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	done, renewed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(renewed)
		// On done it destroys the session; on its own it returns when the
		// session could not be renewed within its TTL.
		_ = sessions.RenewPeriodic(l.opts.TTL.String(), id, nil, done)
	}()
	defer func() {
		close(done)
		<-renewed
		if ctx.Err() != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_, _ = cleanup.Session().Destroy(id, (&api.WriteOptions{}).WithContext(dctx))
		}
	}()
	lock, err := cl.LockOpts(&api.LockOptions{Key: l.opts.Key, Value: []byte(l.opts.Holder), Session: id, LockWaitTime: l.opts.TTL})
	if err != nil {
		return err
	}
	return l.hold(ctx, lock, renewed, endReqs)
}

// hold acquires the lock (waiting for it as long as a peer holds it), keeps
// it until it is lost or ctx ends, and releases it. It returns nil when the
// lock was held and lost or released, an error when it was never held.
func (l *ConsulLock) hold(ctx context.Context, lock consulLocker, expired <-chan struct{}, endReqs context.CancelFunc) error {
	stop := make(chan struct{})
	var acquired atomic.Bool
	unhook := context.AfterFunc(ctx, func() {
		close(stop)
		// A wait for the key blocked in Consul ends now; a held lock is
		// released below first.
		if !acquired.Load() {
			endReqs()
		}
	})
	defer unhook()
	lost, err := lock.Lock(stop)
	if err != nil || lost == nil {
		return err
	}
	acquired.Store(true)
	l.setHeld(true)
	select {
	case <-lost:
		l.setHeld(false)
		_ = lock.Unlock() // the key is no longer ours
		return nil
	case <-expired:
		// Not renewed within the TTL: Consul has invalidated the session.
		l.setHeld(false)
		_ = lock.Unlock()
		return nil
	case <-ctx.Done():
	}
	l.setHeld(false)
	released := make(chan error, 1)
	go func() { released <- lock.Unlock() }()
	select {
	case err = <-released:
		if err != nil {
			l.log.Warn("consul lock release failed", zap.Error(lockError(err)))
		}
	case <-time.After(2 * time.Second):
		l.log.Warn("consul lock release timed out; the session expires by its TTL")
		endReqs()
		<-released
	}
	return nil
}

// lockError adds the way out to the one error an operator must act on.
func lockError(err error) error {
	if errors.Is(err, api.ErrLockConflict) {
		return fmt.Errorf("%w (the key exists and is not a lock: delete it, e.g. one left by mosparo-lb before 2026-12)", err)
	}
	return consulclient.Error("lock", err)
}

// setHeld records the state and logs changes only.
func (l *ConsulLock) setHeld(v bool) {
	if l.held.Swap(v) == v {
		return
	}
	if v {
		l.log.Info("consul lock acquired; this LB runs the web cron", zap.String("key", l.opts.Key))
	} else {
		l.log.Info("consul lock lost or released", zap.String("key", l.opts.Key))
	}
}

// Interface guards.
var (
	_ Leader       = (*ConsulLock)(nil)
	_ consulLocker = (*api.Lock)(nil)
)
