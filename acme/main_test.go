package acme

import (
	"testing"

	"github.com/mosparo-lb/mosparo-lb/internal/leaktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }
