package cron

import (
	"context"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
	"go.uber.org/zap/zaptest"
)

// Two locks on one key against a real Consul agent: one holds it, and a
// clean stop hands it to the other at once (a release has no lock delay).
func TestRealConsulLock(t *testing.T) {
	addr := consultest.RealAgent(t)
	start := func(holder string) (*ConsulLock, func()) {
		l, err := NewConsulLock(ConsulLockOptions{Address: addr, Key: "mosparo-lb/cron/leader", Holder: holder,
			TTL: 10 * time.Second, Retry: 100 * time.Millisecond, Logger: zaptest.NewLogger(t).Named(holder)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		return l, func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run of %s did not return", holder)
			}
		}
	}
	a, stopA := start("lb-a")
	eventually(t, "A to hold the lock", a.IsLeader)
	b, stopB := start("lb-b")
	defer stopB()
	for range 20 {
		if b.IsLeader() {
			t.Fatal("B holds the lock A holds")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopA()
	if a.IsLeader() {
		t.Error("A still leader after stop")
	}
	eventually(t, "B to hold the lock after A's release", b.IsLeader)
}
