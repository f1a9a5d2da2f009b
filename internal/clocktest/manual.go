package clocktest

import (
	"sort"
	"sync"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/clock"
)

// Manual only moves when Advance is called, so tests decide exactly when a
// timer fires. Create it with NewManual; it is safe for concurrent use.
type Manual struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers map[int]manualTimer
}

type manualTimer struct {
	at  time.Time
	seq int
	f   func()
}

// NewManual returns a clock standing at start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start, timers: map[int]manualTimer{}}
}

// Now returns the clock's current time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f for d after the current time; f runs inside the
// Advance that reaches it.
func (c *Manual) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	id := c.seq
	c.timers[id] = manualTimer{at: c.now.Add(d), seq: id, f: f}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.timers[id]
		delete(c.timers, id)
		return ok
	}
}

// After returns a channel that receives the clock's time once an Advance
// reaches d from now. The channel is buffered: Advance never blocks on it.
func (c *Manual) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.AfterFunc(d, func() { ch <- c.Now() })
	return ch
}

// Advance moves the clock forward by d and runs every function that became
// due, in due order, synchronously in the caller's goroutine (so their
// effect is visible when Advance returns). It returns the new time.
func (c *Manual) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []manualTimer
	for id, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
			delete(c.timers, id)
		}
	}
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if due[i].at.Equal(due[j].at) {
			return due[i].seq < due[j].seq
		}
		return due[i].at.Before(due[j].at)
	})
	for _, t := range due {
		t.f()
	}
	return now
}

// Pending reports how many scheduled functions have not run yet.
func (c *Manual) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Interface guards.
var _ clock.Clock = (*Manual)(nil)
