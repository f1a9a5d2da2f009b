package health

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"go.uber.org/zap/zaptest"
)

// blockingClient answers nothing until the probe's context ends.
type blockingClient struct{ calls atomic.Int64 }

func (b *blockingClient) Get(ctx context.Context, address, host, path string) (int, []byte, error) {
	b.calls.Add(1)
	<-ctx.Done()
	return 0, nil, ctx.Err()
}

// TestRunStopsAndRestarts: cancelling Run while probes hang returns
// promptly, leaves no goroutine behind (goleak in TestMain), and a later
// Run probes the same nodes again.
func TestRunStopsAndRestarts(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = configs.Duration(time.Hour) // only the cancel can end a probe
	client := &blockingClient{}
	c := newChecker(t, cfg, Options{Logger: zaptest.NewLogger(t), Client: client})
	setTargets(t, c, []Target{{Name: "a", Address: "a:80"}, {Name: "b", Address: "b:80"}})
	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				t.Errorf("Run = %v", err)
			}
		}()
		deadline := time.Now().Add(5 * time.Second)
		for client.calls.Load() < int64(2*round) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d probes started, want %d", round, client.calls.Load(), 2*round)
			}
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		cancel()
		wg.Wait()
		if el := time.Since(start); el > time.Second {
			t.Errorf("round %d: Run took %v to stop", round, el)
		}
	}
}
