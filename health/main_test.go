package health

import (
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"github.com/mosparo-lb/mosparo-lb/internal/leaktest"
	"go.uber.org/goleak"
)

// The emulated mosparo nodes are fasthttp servers, whose package-level
// janitors are not ours.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// newClock is the injected clock the tests move by hand.
func newClock() *clocktest.Manual {
	return clocktest.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}
