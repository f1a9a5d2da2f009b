package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notifySocket opens a real unixgram socket the way systemd does and
// points $NOTIFY_SOCKET at it.
func notifySocket(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %q: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

// notification reads one datagram, failing the test after a bounded wait.
func notification(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyMessages(t *testing.T) {
	for kind, name := range map[string]string{
		"path":     filepath.Join(t.TempDir(), "notify.sock"),
		"abstract": fmt.Sprintf("@mosparo-lb-notify-test-%d", os.Getpid()),
	} {
		t.Run(kind, func(t *testing.T) {
			c := notifySocket(t, name)
			for _, tt := range []struct {
				name string
				send func() error
				want string
			}{
				{"ready", notifyReady, "READY=1"},
				{"stopping", notifyStopping, "STOPPING=1"},
			} {
				if err := tt.send(); err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if got := notification(t, c); got != tt.want {
					t.Errorf("%s sent %q, want %q", tt.name, got, tt.want)
				}
			}
		})
	}
}

func TestNotifyReloadingCarriesMonotonicTime(t *testing.T) {
	c := notifySocket(t, filepath.Join(t.TempDir(), "notify.sock"))
	if err := notifyReloading(); err != nil {
		t.Fatal(err)
	}
	got := notification(t, c)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("reloading sent %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	if us, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us <= 0 {
		t.Errorf("MONOTONIC_USEC in %q is not a positive microsecond count", got)
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for name, f := range map[string]func() error{"ready": notifyReady, "reloading": notifyReloading, "stopping": notifyStopping} {
		if err := f(); err != nil {
			t.Errorf("%s without NOTIFY_SOCKET = %v, want nil", name, err)
		}
	}
}

func TestNotifyToVanishedSocketFails(t *testing.T) {
	// A socket systemd has gone away from is reported, not ignored.
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone.sock"))
	if err := notifyReady(); err == nil {
		t.Error("ready to a missing socket = nil, want an error")
	}
}

func TestWatchdog(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tt := range []struct {
		name, usec, pid string
		dead            bool // the data plane cannot serve
		pings           bool
	}{
		{"armed", "100000", self, false, true},
		{"armed, data plane dead", "100000", self, true, false},
		{"unset", "", "", false, false},
		{"armed for another process", "100000", "1", false, false},
		{"malformed", "30s", "", false, false},
		{"zero", "0", "", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := notifySocket(t, filepath.Join(t.TempDir(), "notify.sock"))
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- runWatchdog(ctx, func() bool { return !tt.dead }) }()
			if tt.pings {
				for range 3 {
					if got := notification(t, c); got != "WATCHDOG=1" {
						t.Fatalf("watchdog sent %q, want WATCHDOG=1", got)
					}
				}
			}
			if !tt.pings {
				// Four intervals of an armed watchdog without a beat.
				_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if n, err := c.Read(make([]byte, 64)); err == nil {
					t.Errorf("watchdog pinged (%d bytes) though not armed or not alive", n)
				}
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("runWatchdog = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("runWatchdog did not return after cancel")
			}
		})
	}
}
