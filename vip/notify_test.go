package vip

import (
	"context"
	"os"
	"path/filepath"
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
	// Blocking would cost a 200ms hook timeout per queued hook beyond the
	// queue, seconds in all: a bound far above a busy machine's noise.
	if d := time.Since(start); d > time.Second {
		t.Errorf("notify blocked for %s", d)
	}
	// The first hook is killed at its timeout: wait for the log saying so.
	for i := 0; logs.FilterMessageSnippet("killed after timeout").Len() == 0; i++ {
		if i == 500 {
			t.Fatal("the stuck hook was not killed within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.mu.Lock()
	n.queue = nil
	n.mu.Unlock()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("notifier did not stop")
	}
}
