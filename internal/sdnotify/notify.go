package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrUnsupportedSocket is returned when $NOTIFY_SOCKET names something other
// than a unix datagram socket path or abstract name (systemd also knows
// vsock: addresses, used only by virtual machines).
var ErrUnsupportedSocket = errors.New("sdnotify: unsupported NOTIFY_SOCKET")

// Ready tells systemd that start-up (or a reload begun with Reloading) has
// finished: the listeners are bound and the service is serving.
func Ready() error { return Send("READY=1") }

// Reloading tells systemd that a configuration reload has begun; call Ready
// when it has been applied or rejected. MONOTONIC_USEC is what
// Type=notify-reload requires since systemd 253 to pair the message with the
// SIGHUP it sent; plain Type=notify units accept and ignore it.
func Reloading() error {
	if us, ok := monotonicMicros(); ok {
		return Send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(us, 10))
	}
	return Send("RELOADING=1")
}

// Stopping tells systemd that a graceful stop has begun, so it does not
// mistake the shutdown grace period for a hang.
func Stopping() error { return Send("STOPPING=1") }

// Watchdog feeds the watchdog of a unit with WatchdogSec=.
func Watchdog() error { return Send("WATCHDOG=1") }

// Status sets the free-form status line shown by systemctl status.
func Status(msg string) error {
	// A newline would start another assignment in the datagram.
	return Send("STATUS=" + strings.ReplaceAll(msg, "\n", " "))
}

// WatchdogInterval is the watchdog timeout systemd expects to be fed within
// ($WATCHDOG_USEC), or 0 when no watchdog is armed for this process: unset,
// malformed, or $WATCHDOG_PID naming another process (the variables leaked
// to a child). Feed it at about half the interval, as sd_watchdog_enabled(3)
// recommends.
func WatchdogInterval() time.Duration {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil || pid != os.Getpid() {
			return 0
		}
	}
	return time.Duration(us) * time.Microsecond
}

// RunWatchdog feeds the watchdog every half WatchdogInterval until ctx is
// cancelled, skipping a beat whenever alive returns false so that systemd
// restarts a process that still runs but no longer works. It returns nil
// at once when no watchdog is armed; a nil alive always counts as alive.
func RunWatchdog(ctx context.Context, alive func() bool) error {
	iv := WatchdogInterval()
	if iv == 0 {
		return nil
	}
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		if alive == nil || alive() {
			if err := Watchdog(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Send writes one notification made of the given KEY=VALUE assignments to
// $NOTIFY_SOCKET. It is a no-op returning nil when the variable is unset.
func Send(assignments ...string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	// Paths are absolute and abstract names start with "@" (Go maps a
	// leading "@" to the abstract namespace's leading NUL byte).
	if name[0] != '/' && name[0] != '@' {
		return fmt.Errorf("%w: %q", ErrUnsupportedSocket, name)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	// systemd reads one datagram per message; a short write would split it.
	msg := strings.Join(assignments, "\n") + "\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}
