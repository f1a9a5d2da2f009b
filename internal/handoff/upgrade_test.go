package handoff

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the new process of an upgrade: TestMain runs
// runChild when childModeEnv is set.
const (
	childModeEnv = "HANDOFF_TEST_CHILD"
	childAddrEnv = "HANDOFF_TEST_ADDR"
)

func runChild(mode string) int {
	switch mode {
	case "exit":
		return 3
	case "hang":
		time.Sleep(time.Minute)
		return 0
	case "converse", "take-and-die":
		return runConversationChild(mode)
	case "converse-silent":
		if s, err := Inherit(OSProcess()); err == nil {
			s.ReportReady()
		}
		time.Sleep(time.Minute)
		return 0
	case "garbage":
		os.NewFile(uintptr(firstFD+1), "ready").Write([]byte("X"))
		return 0
	}
	s, err := Inherit(OSProcess())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if s.Source() != Upgrade {
		fmt.Fprintln(os.Stderr, "child: source", s.Source())
		return 2
	}
	ln, err := s.Listen("tcp", os.Getenv(childAddrEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if err := s.Unclaimed(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	for _, v := range []string{"MOSPARO_LB_UPGRADE_PARENT", "WATCHDOG_PID"} {
		if _, ok := os.LookupEnv(v); ok {
			fmt.Fprintln(os.Stderr, "child: still set:", v)
			return 2
		}
	}
	if err := s.ReportReady(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ln.(*heldListener).SetDeadline(time.Now().Add(time.Minute))
	c, err := ln.Accept()
	if err != nil {
		return 2
	}
	fmt.Fprintln(c, "child")
	c.Close()
	return 0
}

func startUpgrade(t *testing.T, mode string, timeout time.Duration) (*Sockets, net.Listener, *Child, error) {
	t.Helper()
	s := Empty()
	ln, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	env := append(os.Environ(), childModeEnv+"="+mode, childAddrEnv+"="+ln.Addr().String(),
		"WATCHDOG_PID=1", "LISTEN_PID=1", "LISTEN_FDS=7")
	child, err := s.Upgrade(context.Background(), UpgradeOptions{Path: os.Args[0], Args: []string{"-test.run=^$"},
		Env: env, Stderr: os.Stderr, Timeout: timeout, StopWait: 5 * time.Second})
	return s, ln, child, err
}

func TestUpgradeChildServesTheSameSocket(t *testing.T) {
	_, ln, child, err := startUpgrade(t, "ready", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the parent stops accepting; the socket lives on in the child
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s after the parent closed its listener: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	line, err := bufio.NewReader(c).ReadString('\n')
	if strings.TrimSpace(line) != "child" {
		t.Errorf("answer %q, %v, want the child's", line, err)
	}
	select {
	case <-child.Exited:
	case <-time.After(time.Minute):
		t.Fatal("the child did not exit")
	}
}

func TestUpgradeFailuresKeepTheParent(t *testing.T) {
	tests := []struct {
		mode    string
		timeout time.Duration
		want    string
	}{
		{"exit", time.Minute, "exited (exit status 3)"},
		{"hang", 300 * time.Millisecond, "no ready report within"},
		{"garbage", time.Minute, "unexpected ready report"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			s, ln, child, err := startUpgrade(t, tt.mode, tt.timeout)
			if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), tt.want) || child != nil {
				t.Fatalf("Upgrade with a child that does %q = %v, %v, want ErrNotReady: %s", tt.mode, child, err, tt.want)
			}
			// The parent's listener is untouched and still passed on.
			files, _, herr := s.handover()
			closeFiles(files)
			if herr != nil || len(files) != 1 {
				t.Errorf("handover after a failed upgrade = %d files, %v", len(files), herr)
			}
			c, derr := net.Dial("tcp", ln.Addr().String())
			if derr != nil {
				t.Fatalf("the parent's socket does not accept after a failed upgrade: %v", derr)
			}
			c.Close()
		})
	}
}

func TestUpgradeCancelled(t *testing.T) {
	s := Empty()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Upgrade(ctx, UpgradeOptions{Path: os.Args[0], Args: []string{"-test.run=^$"},
		Env: append(os.Environ(), childModeEnv+"=hang"), Timeout: time.Minute, StopWait: 5 * time.Second})
	if !errors.Is(err, ErrNotReady) || !errors.Is(err, context.Canceled) {
		t.Errorf("Upgrade with a cancelled context = %v, want ErrNotReady and context.Canceled", err)
	}
}

func TestReportReadyWithoutParentIsNoop(t *testing.T) {
	if err := Empty().ReportReady(); err != nil {
		t.Errorf("ReportReady() = %v, want nil", err)
	}
}
