package certstore

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/mosparo-lb/mosparo-lb/internal/leaktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(leaktest.Options(),
		// certmagic.FileStorage (the reference the conformance table runs
		// against) refreshes each lock file in a goroutine of its own that
		// sleeps and notices a release only at its next wake-up.
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	)...)
}
