package handoff

import (
	"os"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/internal/leaktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	goleak.VerifyTestMain(m, leaktest.Options()...)
}
