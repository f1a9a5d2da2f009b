package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envForward); spec != "" {
		os.Exit(forwardMain(spec)) // vrrpupgrade_test.go
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildBinary compiles mosparo-lb once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "mosparo-lb-bin")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "mosparo-lb")
		var out []byte
		out, buildErr = exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if buildErr != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", buildErr, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	n, err := mosparoemu.Start(mosparoemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := n.Addr()
	n.Close()
	return a
}

func TestCheckCommand(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("nodes: [{name: n1, address: \"10.0.0.1:80\"}]\n"), 0o600)
	os.WriteFile(bad, []byte("nodes:\n  - {name: n1, address: \"10.0.0.1:80\", weight: 0.5}\nbalancing: {policy: fastest}\n"), 0o600)
	out, err := exec.Command(bin, "check", "-config", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Errorf("check good = %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "check", "-config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("check bad exit = %v, want 1", err)
	}
	if !strings.Contains(string(out), "bad.yaml:2:") {
		t.Errorf("check bad output lacks file:line:column:\n%s", out)
	}
	out, _ = exec.Command(bin, "version").CombinedOutput()
	if !strings.HasPrefix(string(out), "mosparo-lb ") {
		t.Errorf("version = %q", out)
	}
}

// TestBinaryRunReloadStop drives the real binary: serve, SIGHUP with a bad
// file (keeps serving), SIGHUP with a good one (applied), SIGTERM (clean exit).
func TestBinaryRunReloadStop(t *testing.T) {
	bin := buildBinary(t)
	var nodes []*mosparoemu.Node
	for i := 1; i <= 2; i++ {
		n, err := mosparoemu.Start(mosparoemu.Options{Name: fmt.Sprintf("n%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	lb, adm := freeAddr(t), freeAddr(t)
	cfg := func(extra string) string {
		return fmt.Sprintf(`listen: [{address: %q}]
admin: {listen: %q}
nodes:
  - {name: n1, address: %q}
  - {name: n2, address: %q}
log: {level: info}
%s`, lb, adm, nodes[0].Addr(), nodes[1].Addr(), extra)
	}
	path := filepath.Join(t.TempDir(), "lb.yaml")
	os.WriteFile(path, []byte(cfg("")), 0o600)
	cmd := exec.Command(bin, "run", "-config", path)
	var stderr netnstest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	})
	get := func(p string) (int, string) {
		resp, err := http.Get("http://" + lb + p)
		if err != nil {
			return 0, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Mosparo-Node")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get("/login"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the LB did not come up; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	os.WriteFile(path, []byte(cfg("balancing: {policy: nope}\n")), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	// The reload is over once its outcome is logged.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "reload rejected"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload outcome logged within 10s of SIGHUP:\n%s", stderr.String())
		}
	}
	if code, _ := get("/login"); code != 200 {
		t.Errorf("after a bad reload GET = %d, want 200", code)
	}
	if !strings.Contains(stderr.String(), "reload rejected") || !strings.Contains(stderr.String(), "balancing.policy") {
		t.Errorf("the rejected reload is not logged with its reason:\n%s", stderr.String())
	}

	os.WriteFile(path, []byte(cfg("balancing: {pools: {admin: [n2]}}\n")), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(5 * time.Second)
	for {
		ok := true
		for i := 0; i < 4; i++ {
			if _, node := get("/login"); node != "n2" {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the good reload was not applied: admin traffic still reaches n1")
		}
		time.Sleep(50 * time.Millisecond)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
}
