package vip

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestNotifyArgumentsAndOrder(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNotifier("VI_1", NotifyConfig{Script: script, Master: script + " master-hook", Timeout: 5 * time.Second}, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.run(ctx); close(done) }()
	n.notify(Backup, 150)
	n.notify(Master, 150)
	n.notify(Initialize, 150)
	cancel() // queued hooks still run, in order
	<-done
	b, _ := os.ReadFile(out)
	want := "INSTANCE VI_1 BACKUP 150\nINSTANCE VI_1 MASTER 150\nmaster-hook\nINSTANCE VI_1 STOP 150\n"
	if string(b) != want {
		t.Errorf("hooks wrote\n%s\nwant\n%s", b, want)
	}
}

func TestNotifyTimeoutDoesNotBlock(t *testing.T) {
	script := filepath.Join(t.TempDir(), "slow.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	n := newNotifier("VI_1", NotifyConfig{Script: script, Timeout: 200 * time.Millisecond}, zap.New(core))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.run(ctx); close(done) }()
	start := time.Now()
	for i := 0; i < 3*notifyQueueMax; i++ {
		n.notify(Master, 100) // never blocks, even with a stuck hook
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("notify blocked for %s", d)
	}
	time.Sleep(300 * time.Millisecond)
	n.mu.Lock()
	n.queue = nil
	n.mu.Unlock()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("notifier did not stop")
	}
	var killed bool
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "killed after timeout") {
			killed = true
		}
	}
	if !killed {
		t.Errorf("no timeout logged among %d entries", logs.Len())
	}
}
