package sdnotify

import "golang.org/x/sys/unix"

// monotonicMicros reads CLOCK_MONOTONIC, the clock systemd compares
// MONOTONIC_USEC against (Go's own monotonic reading is not exposed).
func monotonicMicros() (int64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, false
	}
	return ts.Nano() / 1e3, true
}
