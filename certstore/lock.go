package certstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/internal/consulclient"
)

// ErrLockLost is the error of RenewLockLease when Consul invalidated the
// lock's session (TTL lapsed, agent restarted, operator destroyed it):
// another LB may hold the lock now.
var ErrLockLost = errors.New("certstore: lock lost")

// ErrNotLocked is the error of Unlock for a name this storage does not hold.
var ErrNotLocked = errors.New("certstore: lock not held")

// lock is one held lock: its session, kept alive by a renewer goroutine
// until Unlock stops it.
type lock struct {
	name, key string
	session   string
	lost      atomic.Bool
	stop      context.CancelFunc
	done      chan struct{} // closed when the renewer returned
}

// lockValue is what a lock key holds, for operators reading KV.
type lockValue struct {
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
}

// Lock takes the named lock, waiting until its holder releases it or its
// holder's session dies, or until ctx is done.
func (c *Consul) Lock(ctx context.Context, name string) error {
	l, err := c.open(ctx, name)
	if err != nil {
		return err
	}
	var index uint64
	for {
		ok, err := c.acquire(ctx, l)
		if err != nil && c.gone(ctx, l) {
			// Our own session died while we waited (agent restarted,
			// renewals failed): wait on with a new one.
			c.log.Warn("lock wait session lost; opening another", zap.String("lock", name))
			c.abandon(ctx, l)
			if err := sleep(ctx, c.opts.LockRetry); err != nil {
				return err
			}
			if l, err = c.open(ctx, name); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			c.abandon(ctx, l)
			return err
		}
		if ok {
			c.keep(l)
			return nil
		}
		if err := c.await(ctx, l.key, &index); err != nil {
			c.abandon(ctx, l)
			return err
		}
	}
}

// TryLock takes the named lock if it is free now.
func (c *Consul) TryLock(ctx context.Context, name string) (bool, error) {
	l, err := c.open(ctx, name)
	if err != nil {
		return false, err
	}
	ok, err := c.acquire(ctx, l)
	if err != nil || !ok {
		c.abandon(ctx, l)
		return false, err
	}
	c.keep(l)
	return true, nil
}

// Unlock releases the named lock and destroys its session. A lock whose
// session Consul already invalidated is released too; that is logged.
func (c *Consul) Unlock(ctx context.Context, name string) error {
	c.mu.Lock()
	l, ok := c.held[name]
	delete(c.held, name)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotLocked, name)
	}
	l.stop()
	<-l.done
	if l.lost.Load() {
		c.log.Warn("lock was lost before unlock", zap.String("lock", name))
	} else if _, _, err := c.kv.Release(&api.KVPair{Key: l.key, Session: l.session}, writeOpts(ctx)); err != nil {
		// Destroying the session below frees it as well, after the lock-delay.
		c.log.Warn("lock release failed", zap.String("lock", name), zap.Error(err))
	}
	if _, err := c.sess.Destroy(l.session, writeOpts(ctx)); err != nil {
		if l.lost.Load() {
			return nil
		}
		return consulclient.Error("session destroy", err)
	}
	return nil
}

// RenewLockLease reports whether the lock is still held: its session is
// renewed all the time it is held, so leaseDuration is not needed.
func (c *Consul) RenewLockLease(ctx context.Context, name string, leaseDuration time.Duration) error {
	c.mu.Lock()
	l, ok := c.held[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotLocked, name)
	}
	if l.lost.Load() {
		return fmt.Errorf("%w: %q", ErrLockLost, name)
	}
	e, _, err := c.sess.Renew(l.session, writeOpts(ctx))
	if err != nil {
		return consulclient.Error("session renew", err)
	}
	if e == nil {
		l.lost.Store(true)
		return fmt.Errorf("%w: %q", ErrLockLost, name)
	}
	return nil
}

// Close releases every lock this storage still holds.
func (c *Consul) Close(ctx context.Context) error {
	c.mu.Lock()
	names := make([]string, 0, len(c.held))
	for n := range c.held {
		names = append(names, n)
	}
	c.mu.Unlock()
	var errs []error
	for _, n := range names {
		if err := c.Unlock(ctx, n); err != nil && !errors.Is(err, ErrNotLocked) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// open creates the session a lock attempt runs under and starts renewing
// it, since waiting for the lock may outlast the TTL.
func (c *Consul) open(ctx context.Context, name string) (*lock, error) {
	enc, err := encodeKey(name)
	if err != nil {
		return nil, fmt.Errorf("%w: lock %q", err, consulclient.Printable(name))
	}
	id, _, err := c.sess.Create(&api.SessionEntry{
		Name: "mosparo-lb certstore " + c.opts.Holder,
		TTL:  c.opts.LockTTL.String(),
		// A crashed holder's lock key goes with its session.
		Behavior:  api.SessionBehaviorDelete,
		LockDelay: c.opts.LockDelay,
	}, writeOpts(ctx))
	if err != nil {
		return nil, consulclient.Error("session create", err)
	}
	if id == "" {
		return nil, fmt.Errorf("%w: session without an ID", ErrBadAnswer)
	}
	rctx, stop := context.WithCancel(context.Background())
	l := &lock{name: name, key: c.locks + enc, session: id, stop: stop, done: make(chan struct{})}
	go c.renew(rctx, l)
	return l, nil
}

// acquire tries once to take l's key for its session.
func (c *Consul) acquire(ctx context.Context, l *lock) (bool, error) {
	if l.lost.Load() {
		return false, fmt.Errorf("%w: session of %q invalidated while waiting", ErrLockLost, l.name)
	}
	v, _ := json.Marshal(lockValue{Holder: c.opts.Holder, Acquired: time.Now().UTC()})
	ok, _, err := c.kv.Acquire(&api.KVPair{Key: l.key, Value: v, Session: l.session}, writeOpts(ctx))
	if err != nil {
		return false, consulclient.Error("kv acquire", err)
	}
	return ok, nil
}

// await returns when the lock key may be free: after a change of the key
// (blocking query from *index), or after LockRetry when it is free but
// was refused (lock-delay).
func (c *Consul) await(ctx context.Context, key string, index *uint64) error {
	q := &api.QueryOptions{WaitIndex: *index, WaitTime: c.opts.LockWait}
	p, meta, err := c.kv.Get(key, q.WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Back off as below rather than spin on a failing agent.
		c.log.Warn("lock wait failed", zap.String("key", key), zap.Error(err))
		*index = 0
		return sleep(ctx, c.opts.LockRetry)
	}
	// An index that went backwards (agent restarted, snapshot restored) or
	// is 0 must not be waited on (FACTS.md: never block on index 0).
	if meta.LastIndex < *index || meta.LastIndex == 0 {
		*index = 0
	} else {
		*index = meta.LastIndex
	}
	if p == nil || p.Session == "" {
		return sleep(ctx, c.opts.LockRetry)
	}
	return nil
}

// gone reports whether Consul no longer knows l's session.
func (c *Consul) gone(ctx context.Context, l *lock) bool {
	if l.lost.Load() {
		return true
	}
	e, _, err := c.sess.Info(l.session, queryOpts(ctx))
	return err == nil && e == nil
}

// keep records a held lock.
func (c *Consul) keep(l *lock) {
	c.mu.Lock()
	c.held[l.name] = l
	c.mu.Unlock()
	c.log.Info("lock acquired", zap.String("lock", l.name))
}

// abandon ends a failed lock attempt: its renewer and its session.
func (c *Consul) abandon(ctx context.Context, l *lock) {
	l.stop()
	<-l.done
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.LockRetry+5*time.Second)
	defer cancel()
	if _, err := c.sess.Destroy(l.session, writeOpts(dctx)); err != nil {
		// It expires after its TTL anyway.
		c.log.Warn("session destroy failed", zap.String("lock", l.name), zap.Error(err))
	}
}

// renew keeps l's session alive every half TTL until ctx ends, and marks
// the lock lost when Consul no longer knows the session.
func (c *Consul) renew(ctx context.Context, l *lock) {
	defer close(l.done)
	t := time.NewTicker(c.opts.LockTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e, _, err := c.sess.Renew(l.session, writeOpts(ctx))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// The next tick tries again; the TTL's grace covers one miss.
			c.log.Warn("lock session renewal failed", zap.String("lock", l.name), zap.Error(err))
		case e == nil:
			l.lost.Store(true)
			c.log.Error("lock lost: consul invalidated its session", zap.String("lock", l.name))
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
