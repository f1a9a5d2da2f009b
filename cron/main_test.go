package cron

import (
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
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

// newClock is an injected clock the tests move by hand; the emulated nodes
// share it, so their web-cron schedule follows the same time.
func newClock() *clocktest.Manual { return clocktest.NewManual(t0) }
