package daemon

import (
	"context"
	"strconv"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// The sd_notify(3) messages mosparo-lb sends. Without $NOTIFY_SOCKET (not
// started by systemd, or not Type=notify) go-systemd sends nothing and
// reports no error, so callers never check how they were started.

func notifyReady() error    { return sdNotify(sd.SdNotifyReady) }
func notifyStopping() error { return sdNotify(sd.SdNotifyStopping) }

// notifyReloading pairs RELOADING=1 with MONOTONIC_USEC, which
// Type=notify-reload requires since systemd 253 to match the message to the
// SIGHUP it sent; plain Type=notify units ignore it.
func notifyReloading() error {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return sdNotify(sd.SdNotifyReloading)
	}
	return sdNotify(sd.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1e3, 10))
}

func sdNotify(state string) error {
	_, err := sd.SdNotify(false, state)
	return err
}

// runWatchdog feeds the watchdog of a unit with WatchdogSec= every half
// interval, as sd_watchdog_enabled(3) recommends, until ctx ends, skipping
// a beat whenever alive is false so that systemd restarts a process that
// still runs but can no longer serve. It returns at once when no watchdog
// is armed for this process.
func runWatchdog(ctx context.Context, alive func() bool) error {
	iv, err := sd.SdWatchdogEnabled(false)
	if err != nil || iv <= 0 {
		// A malformed $WATCHDOG_USEC is systemd's variable leaked or
		// mangled, not ours to fail on: no watchdog is armed then.
		return nil
	}
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		if alive() {
			if err := sdNotify(sd.SdNotifyWatchdog); err != nil {
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
