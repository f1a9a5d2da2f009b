package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen opens a real unixgram socket the way systemd does and points
// $NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %q: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

// recv reads one datagram, failing the test after a bounded wait.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestMessages(t *testing.T) {
	sockets := map[string]string{
		"path":     filepath.Join(t.TempDir(), "notify.sock"),
		"abstract": fmt.Sprintf("@mosparo-lb-sdnotify-test-%d", os.Getpid()),
	}
	for kind, name := range sockets {
		t.Run(kind, func(t *testing.T) {
			c := listen(t, name)
			for _, tt := range []struct {
				name string
				send func() error
				want string
			}{
				{"Ready", Ready, "READY=1\n"},
				{"Stopping", Stopping, "STOPPING=1\n"},
				{"Watchdog", Watchdog, "WATCHDOG=1\n"},
				{"Status", func() error { return Status("2 of 3\nnodes up") }, "STATUS=2 of 3 nodes up\n"},
			} {
				if err := tt.send(); err != nil {
					t.Fatalf("%s() = %v", tt.name, err)
				}
				if got := recv(t, c); got != tt.want {
					t.Errorf("%s() sent %q, want %q", tt.name, got, tt.want)
				}
			}
		})
	}
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify.sock"))
	before, _ := monotonicMicros()
	if err := Reloading(); err != nil {
		t.Fatalf("Reloading() = %v", err)
	}
	after, _ := monotonicMicros()
	got := recv(t, c)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reloading() sent %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	us, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || us < before || us > after {
		t.Errorf("MONOTONIC_USEC = %q, want a CLOCK_MONOTONIC reading in [%d, %d]", lines[1], before, after)
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for name, f := range map[string]func() error{"Ready": Ready, "Reloading": Reloading, "Stopping": Stopping, "Watchdog": Watchdog} {
		if err := f(); err != nil {
			t.Errorf("%s() without NOTIFY_SOCKET = %v, want nil", name, err)
		}
	}
}

func TestSocketErrors(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if err := Ready(); !errors.Is(err, ErrUnsupportedSocket) {
		t.Errorf("Ready() with a vsock address = %v, want ErrUnsupportedSocket", err)
	}
	// A socket systemd has gone away from must be reported, not ignored.
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone.sock"))
	if err := Ready(); err == nil {
		t.Error("Ready() to a missing socket = nil, want an error")
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tt := range []struct {
		name, usec, pid string
		want            time.Duration
	}{
		{"unset", "", "", 0},
		{"armed", "30000000", "", 30 * time.Second},
		{"armed for us", "2000000", self, 2 * time.Second},
		{"armed for another process", "2000000", "1", 0},
		{"bad pid", "2000000", "x", 0},
		{"malformed", "30s", "", 0},
		{"zero", "0", "", 0},
		{"negative", "-5", "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			if got := WatchdogInterval(); got != tt.want {
				t.Errorf("WatchdogInterval() with USEC=%q PID=%q = %v, want %v", tt.usec, tt.pid, got, tt.want)
			}
		})
	}
}

func TestRunWatchdog(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify.sock"))
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	alive := make(chan bool, 1)
	alive <- true
	isAlive := func() bool {
		v := <-alive
		alive <- v
		return v
	}
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(ctx, isAlive) }()
	for range 3 {
		if got := recv(t, c); got != "WATCHDOG=1\n" {
			t.Fatalf("RunWatchdog sent %q, want WATCHDOG=1", got)
		}
	}
	// A process that reports itself broken must starve the watchdog.
	<-alive
	alive <- false
	// Drain pings sent before the flip took effect (at most one tick each
	// side of it), then expect silence.
	for range 5 {
		_ = c.SetReadDeadline(time.Now().Add(120 * time.Millisecond))
		if _, err := c.Read(make([]byte, 64)); err != nil {
			break
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Errorf("RunWatchdog pinged (%d bytes) while not alive", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunWatchdog() = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog did not return after cancel")
	}
}

func TestRunWatchdogDisarmed(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	// No watchdog: returns at once without waiting for ctx.
	if err := RunWatchdog(context.Background(), nil); err != nil {
		t.Errorf("RunWatchdog() without WATCHDOG_USEC = %v, want nil", err)
	}
}
