//go:build !linux

package sdnotify

// monotonicMicros is unavailable where systemd does not run.
func monotonicMicros() (int64, bool) { return 0, false }
