//go:build !race

package mosparoemu

import (
	"testing"
)

func TestHotPathsDoNotAllocate(t *testing.T) {
	n, inc := newDirectNode(t)
	for _, hc := range hotPaths {
		t.Run(hc.name, func(t *testing.T) {
			ctx := hc.ctx()
			run := func() {
				ctx.Response.Reset()
				n.handle(ctx, inc)
			}
			run()
			if got := ctx.Response.StatusCode(); got != hc.status {
				t.Fatalf("status = %d, want %d", got, hc.status)
			}
			if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
				t.Errorf("%s: %.1f allocs per request, want 0", hc.name, allocs)
			}
		})
	}
}
