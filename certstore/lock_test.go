package certstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
)

// consulPair is a Consul agent with two storages on it, the two LBs.
type consulPair struct {
	lb1, lb2 *Consul
	// kill invalidates a session as the agent does when it forgets it
	// (destroyed, TTL lapsed, node failed): locks go, lock-delay starts.
	kill func(t *testing.T, id string)
	// sessions lists the live sessions.
	sessions func(t *testing.T) []string
}

func consulPairs() []struct {
	name string
	open func(t *testing.T) consulPair
} {
	return []struct {
		name string
		open func(t *testing.T) consulPair
	}{
		{"fake", func(t *testing.T) consulPair {
			a := fakeAgent(t, consultest.Options{})
			return consulPair{
				lb1: newConsul(t, a.Addr(), testOptions()), lb2: newConsul(t, a.Addr(), testOptions()),
				kill: func(t *testing.T, id string) {
					if !a.InvalidateSession(id) {
						t.Fatalf("fake agent has no session %s", id)
					}
				},
				sessions: func(*testing.T) []string { return a.Sessions() },
			}
		}},
		{"real", func(t *testing.T) consulPair {
			addr := consultest.RealAgent(t)
			cl := newClient(t, addr, testOptions())
			return consulPair{
				lb1: newConsul(t, addr, testOptions()), lb2: newConsul(t, addr, testOptions()),
				kill: func(t *testing.T, id string) {
					if _, err := cl.Session().Destroy(id, nil); err != nil {
						t.Fatal(err)
					}
				},
				sessions: func(t *testing.T) []string {
					list, _, err := cl.Session().List(nil)
					if err != nil {
						t.Fatal(err)
					}
					var ids []string
					for _, s := range list {
						ids = append(ids, s.ID)
					}
					return ids
				},
			}
		}},
	}
}

// Two LBs contend for one lock many times: never both hold it.
func TestLockExclusive(t *testing.T) {
	for _, p := range consulPairs() {
		t.Run(p.name, func(t *testing.T) {
			pair := p.open(t)
			var holders, max, acquired atomic.Int32
			var wg sync.WaitGroup
			for _, lb := range []*Consul{pair.lb1, pair.lb2, pair.lb1, pair.lb2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 5 {
						if err := lb.Lock(t.Context(), "issue_cert_example.com"); err != nil {
							t.Errorf("Lock = %v", err)
							return
						}
						n := holders.Add(1)
						if n > max.Load() {
							max.Store(n)
						}
						acquired.Add(1)
						time.Sleep(time.Millisecond) // let the others try
						holders.Add(-1)
						if err := lb.Unlock(t.Context(), "issue_cert_example.com"); err != nil {
							t.Errorf("Unlock = %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if max.Load() != 1 || acquired.Load() != 20 {
				t.Errorf("at most %d holders at once over %d acquisitions, want 1 over 20", max.Load(), acquired.Load())
			}
			if s := pair.sessions(t); len(s) != 0 {
				t.Errorf("sessions left after every Unlock: %v", s)
			}
		})
	}
}

// A holder whose session the agent invalidates loses the lock: the waiting
// LB gets it (after the lock-delay), the old holder learns it from
// RenewLockLease, and its Unlock still cleans up.
func TestLockSessionInvalidated(t *testing.T) {
	for _, p := range consulPairs() {
		t.Run(p.name, func(t *testing.T) {
			pair := p.open(t)
			ctx := t.Context()
			if err := pair.lb1.Lock(ctx, "x"); err != nil {
				t.Fatal(err)
			}
			if ok, err := pair.lb2.TryLock(ctx, "x"); ok || err != nil {
				t.Fatalf("TryLock(held by the other LB) = %v, %v, want false", ok, err)
			}
			got := make(chan error, 1)
			go func() { got <- pair.lb2.Lock(ctx, "x") }()

			pair.kill(t, heldSession(pair.lb1, "x"))
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("Lock after the holder's session died = %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the waiting LB did not get the lock of a dead session")
			}
			if err := pair.lb1.RenewLockLease(ctx, "x", time.Minute); !errors.Is(err, ErrLockLost) {
				t.Errorf("RenewLockLease of the old holder = %v, want ErrLockLost", err)
			}
			if err := pair.lb2.RenewLockLease(ctx, "x", time.Minute); err != nil {
				t.Errorf("RenewLockLease of the new holder = %v", err)
			}
			if err := pair.lb1.Unlock(ctx, "x"); err != nil {
				t.Errorf("Unlock of a lost lock = %v, want nil", err)
			}
			if ok, err := pair.lb1.TryLock(ctx, "x"); ok || err != nil {
				t.Errorf("TryLock while the other LB holds = %v, %v, want false", ok, err)
			}
			if err := pair.lb2.Unlock(ctx, "x"); err != nil {
				t.Errorf("Unlock = %v", err)
			}
		})
	}
}

// heldSession is the session of a held lock.
func heldSession(c *Consul, name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[name].session
}

// crash stops renewing a held lock and forgets it, as if the LB died.
func crash(t *testing.T, c *Consul, name string) {
	t.Helper()
	c.mu.Lock()
	l := c.held[name]
	delete(c.held, name)
	c.mu.Unlock()
	l.stop()
	<-l.done
}

// A crashed LB's lock expires with its session's TTL (fake agent: on its
// manual clock).
func TestLockTTLLapseFake(t *testing.T) {
	clock := consultest.NewManualClock(time.Unix(1_700_000_000, 0))
	a := fakeAgent(t, consultest.Options{Clock: clock})
	lb1, lb2 := newConsul(t, a.Addr(), testOptions()), newConsul(t, a.Addr(), testOptions())
	ctx := t.Context()
	if err := lb1.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	dead := heldSession(lb1, "x")
	cl := newClient(t, a.Addr(), testOptions())
	crash(t, lb1, "x")
	got := make(chan error, 1)
	go func() { got <- lb2.Lock(ctx, "x") }()
	if err := a.AwaitBlocked(ctx, 1); err != nil { // lb2 waits on the key
		t.Fatal(err)
	}
	// lb2 renews on the real clock; stand in for its renewals on the
	// agent's manual one, as its renewer would every half TTL.
	renew := func() {
		for _, id := range a.Sessions() {
			if id != dead {
				if _, _, err := cl.Session().Renew(id, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	half := testOptions().LockTTL / 2
	for range 2 {
		clock.Advance(half)
		renew()
	}
	// One TTL: within Consul's grace, still held.
	if ok, err := lb1.TryLock(ctx, "x"); ok || err != nil {
		t.Fatalf("TryLock within the TTL's grace = %v, %v, want false", ok, err)
	}
	for range 2 {
		clock.Advance(half)
		renew()
	}
	if slices.Contains(a.Sessions(), dead) {
		t.Fatal("the crashed LB's session outlived twice its TTL")
	}
	clock.Advance(testOptions().LockDelay) // and the lock-delay over
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the lock of a crashed LB did not pass on after its TTL")
	}
	if err := lb2.Unlock(ctx, "x"); err != nil {
		t.Error(err)
	}
}

// The same on a real agent, in real time: up to twice the 10s TTL.
func TestLockTTLLapseReal(t *testing.T) {
	if testing.Short() {
		t.Skip("takes twice Consul's minimum session TTL (20s)")
	}
	addr := consultest.RealAgent(t)
	lb1, lb2 := newConsul(t, addr, testOptions()), newConsul(t, addr, testOptions())
	ctx := t.Context()
	if err := lb1.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	crash(t, lb1, "x")
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := lb2.Lock(wctx, "x"); err != nil {
		t.Fatalf("Lock of a crashed LB's lock = %v", err)
	}
	if err := lb2.Unlock(ctx, "x"); err != nil {
		t.Error(err)
	}
}

func TestUnlockNotHeld(t *testing.T) {
	a := fakeAgent(t, consultest.Options{})
	s := newConsul(t, a.Addr(), testOptions())
	if err := s.Unlock(t.Context(), "never"); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock(never locked) = %v, want ErrNotLocked", err)
	}
	if err := s.RenewLockLease(t.Context(), "never", time.Minute); !errors.Is(err, ErrNotLocked) {
		t.Errorf("RenewLockLease(never locked) = %v, want ErrNotLocked", err)
	}
}

// Close releases what is still held, so the other LB gets it at once.
func TestCloseReleases(t *testing.T) {
	a := fakeAgent(t, consultest.Options{})
	lb1, lb2 := newConsul(t, a.Addr(), testOptions()), newConsul(t, a.Addr(), testOptions())
	ctx := t.Context()
	for _, n := range []string{"a", "b"} {
		if err := lb1.Lock(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := lb1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if ok, err := lb2.TryLock(ctx, n); !ok || err != nil {
			t.Errorf("TryLock(%s) after the holder's Close = %v, %v", n, ok, err)
		}
	}
	if s := a.Sessions(); len(s) != 2 {
		t.Errorf("sessions = %v, want lb2's two", s)
	}
}
