package clocktest

import (
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/clock"
)

// Observed is a clock that reports the duration of every wait started
// through After or AfterFunc on Waits (dropped when nobody reads and its
// buffer is full, so it never blocks the component). Time itself comes
// from the wrapped clock. Create it with Observe.
type Observed struct {
	clock.Clock
	// Waits receives each wait's duration once it is scheduled.
	Waits chan time.Duration
}

// Observe wraps c (nil: clock.System) with a buffer of 1024 waits.
func Observe(c clock.Clock) *Observed {
	return &Observed{Clock: clock.OrSystem(c), Waits: make(chan time.Duration, 1024)}
}

// After waits on the wrapped clock, then reports d. Scheduling first means
// a test that advances a manual clock on the report cannot pass the wait by.
func (c *Observed) After(d time.Duration) <-chan time.Time {
	ch := c.Clock.After(d)
	c.report(d)
	return ch
}

// AfterFunc schedules f on the wrapped clock, then reports d (see After).
func (c *Observed) AfterFunc(d time.Duration, f func()) func() bool {
	stop := c.Clock.AfterFunc(d, f)
	c.report(d)
	return stop
}

func (c *Observed) report(d time.Duration) {
	select {
	case c.Waits <- d:
	default:
	}
}

// Interface guards.
var _ clock.Clock = (*Observed)(nil)
