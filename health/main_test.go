package health

import (
	"sync"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/leaktest"
	"go.uber.org/goleak"
)

// The emulated mosparo nodes are fasthttp servers, whose package-level
// janitors are not ours.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// fakeClock is an injected clock the tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

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
