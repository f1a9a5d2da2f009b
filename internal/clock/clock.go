package clock

import "time"

// Clock tells the time and schedules work after a duration. Implementations
// are safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
	// AfterFunc calls f, in its own goroutine or (clocktest.Manual) the
	// advancing one, once d has passed; stop cancels the call and reports
	// whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// System is the real time. The zero value is ready to use.
type System struct{}

// Now is time.Now.
func (System) Now() time.Time { return time.Now() }

// After is time.After.
func (System) After(d time.Duration) <-chan time.Time { return time.After(d) }

// AfterFunc is time.AfterFunc.
func (System) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// OrSystem returns c, or System when c is nil: the default of every
// Options.Clock.
func OrSystem(c Clock) Clock {
	if c == nil {
		return System{}
	}
	return c
}

// Interface guards.
var _ Clock = System{}
