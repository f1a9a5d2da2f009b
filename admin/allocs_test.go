//go:build !race

package admin

import (
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/balancer"
)

// Recording a request is on the per-request path: no allocation once the
// (route, code) series exists.
func TestObserveAllocations(t *testing.T) {
	r := NewMetrics(nil).Node("n1")
	r.Observe(balancer.Frontend, 200, time.Millisecond, 0)
	if a := testing.AllocsPerRun(1000, func() { r.Observe(balancer.Frontend, 200, time.Millisecond, 1) }); a != 0 {
		t.Errorf("Observe: %.1f allocs, want 0", a)
	}
}
