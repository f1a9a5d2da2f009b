package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped systemd units cannot run under systemd here: tests run in
// containers where systemd is not PID 1 (systemd-run: "System has not been
// booted with systemd as init system"), and systemd-nspawn needs a booted
// host too. What a test can do is what `systemctl daemon-reload` does
// first: parse them with systemd's own loader. The behaviour they promise
// is tested without systemd: socket activation by a parent passing
// LISTEN_FDS (TestSocketActivationRestartUnderLoad,
// TestSocketActivationByName), sd_notify and the watchdog on a fake
// NOTIFY_SOCKET (TestUpgradeSystemdNotifications, daemon's TestWatchdog),
// the capabilities with setpriv (TestRunsUnprivilegedWithThreeCapabilities).

// systemdAnalyze is the path of systemd-analyze; without it the test is
// skipped, except on CI.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		msg := "SKIPPED: systemd-analyze not found (apt-get install systemd): the units were NOT verified"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// verifyUnits runs `systemd-analyze verify` on units; anything it says
// (an unknown key, a bad value, a missing executable) is a failure.
func verifyUnits(t *testing.T, units ...string) {
	t.Helper()
	out, err := exec.Command(systemdAnalyze(t), append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", strings.Join(units, " "), err, out)
	}
}

// TestSystemdUnitsVerify: configs/mosparo-lb.service and .socket load
// without a warning in systemd's own parser, with ExecStart's binary
// pointing at a real build; and the check is not blind: an unknown key
// and a missing binary are reported.
func TestSystemdUnitsVerify(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("../../configs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	service := read("mosparo-lb.service")
	if !strings.Contains(service, "/usr/local/bin/mosparo-lb") {
		t.Fatal("the service unit no longer runs /usr/local/bin/mosparo-lb; update the test")
	}
	svc := write("mosparo-lb.service", strings.ReplaceAll(service, "/usr/local/bin/mosparo-lb", bin))
	sock := write("mosparo-lb.socket", read("mosparo-lb.socket"))
	verifyUnits(t, sock, svc)

	for _, tt := range []struct {
		name, unit, want string
	}{
		{"unknown key", strings.Replace(service, "[Service]\n", "[Service]\nNoSuchSetting=yes\n", 1), "NoSuchSetting"},
		{"missing binary", strings.ReplaceAll(service, "/usr/local/bin/mosparo-lb", filepath.Join(dir, "absent")), "absent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "mosparo-lb.service")
			if err := os.WriteFile(bad, []byte(tt.unit), 0o644); err != nil {
				t.Fatal(err)
			}
			out, _ := exec.Command(systemdAnalyze(t), "verify", "--man=no", bad).CombinedOutput()
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("systemd-analyze verify of a unit with a %s said %q; want it named", tt.name, out)
			}
		})
	}
}
