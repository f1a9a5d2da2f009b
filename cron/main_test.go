package cron

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines. fasthttp starts one process-wide
// goroutine that refreshes the Date header the first time any server (here
// the emulated nodes) runs, and never stops it; it is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

// t0 is the start of every test's fake time.
var t0 = time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)

// fakeClock is an injected clock the tests move by hand; the emulated nodes
// share it, so their web-cron schedule follows the same time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}
