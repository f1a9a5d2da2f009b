package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebianPackage builds the .deb the way `make deb` does, installs it
// with dpkg, validates the installed configuration with the installed
// binary, and purges it: nothing of it may be left (files, user, group).
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "SKIPPED: installing the .deb with dpkg needs root"
		if os.Getenv("MOSPARO_LB_REQUIRE_ROOT_TESTS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatalf("dpkg-deb is needed: %v", err)
	}
	if exec.Command("dpkg-query", "-W", "mosparo-lb").Run() == nil {
		t.Skip("SKIPPED: a mosparo-lb package is installed on this host; the test will not replace it")
	}
	bin := buildBinary(t)
	out := t.TempDir()
	build := exec.Command("./scripts/build-deb.sh", "1.2.3-test", bin, out)
	build.Dir = "../.."
	b, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, b)
	}
	deb := strings.TrimSpace(string(b))
	if want := "mosparo-lb_1.2.3+test_"; !strings.HasPrefix(filepath.Base(deb), want) {
		t.Errorf("package %s, want %s<arch>.deb", deb, want)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		b, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	t.Cleanup(func() { _ = exec.Command("dpkg", "--purge", "mosparo-lb").Run() })
	run("dpkg", "-i", deb)
	if got := run("dpkg-query", "-W", "-f", "${Conffiles}", "mosparo-lb"); !strings.Contains(got, "/etc/mosparo-lb/mosparo-lb.yaml") {
		t.Errorf("conffiles %q, want /etc/mosparo-lb/mosparo-lb.yaml", got)
	}
	run("getent", "passwd", "mosparo-lb")
	unit := run("cat", "/lib/systemd/system/mosparo-lb.service")
	for _, want := range []string{"ExecStart=/usr/bin/mosparo-lb run", "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE", "User=mosparo-lb"} {
		if !strings.Contains(unit, want) {
			t.Errorf("installed unit lacks %q", want)
		}
	}
	socket := run("cat", "/lib/systemd/system/mosparo-lb.socket")
	for _, want := range []string{"[Socket]", "ListenStream=127.0.0.1:8080", "Service=mosparo-lb.service"} {
		if !strings.Contains(socket, want) {
			t.Errorf("installed socket unit lacks %q", want)
		}
	}
	if strings.Contains(socket, "install -m") {
		t.Error("installed socket unit keeps the source tree's install instructions")
	}
	if !strings.Contains(unit, "-pid-file /run/mosparo-lb/mosparo-lb.pid") || !strings.Contains(unit, "RuntimeDirectory=mosparo-lb") {
		t.Error("installed service unit does not write the PID file `mosparo-lb upgrade` reads")
	}
	// As installed, with the binary they name in place, systemd's loader
	// takes both units without a warning (units_test.go).
	verifyUnits(t, "/lib/systemd/system/mosparo-lb.socket", "/lib/systemd/system/mosparo-lb.service")
	if got := run("/usr/bin/mosparo-lb", "check", "-config", "/etc/mosparo-lb/mosparo-lb.yaml"); !strings.Contains(got, "ok") {
		t.Errorf("check of the installed configuration: %s", got)
	}
	run("dpkg", "--purge", "mosparo-lb")
	for _, p := range []string{"/usr/bin/mosparo-lb", "/etc/mosparo-lb", "/lib/systemd/system/mosparo-lb.service", "/lib/systemd/system/mosparo-lb.socket", "/usr/share/doc/mosparo-lb"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after purge", p)
		}
	}
	for _, db := range []string{"passwd", "group"} {
		if exec.Command("getent", db, "mosparo-lb").Run() == nil {
			t.Errorf("%s entry mosparo-lb left after purge", db)
		}
	}
	if exec.Command("dpkg-query", "-W", "mosparo-lb").Run() == nil {
		t.Error("dpkg still knows mosparo-lb after purge")
	}
}
