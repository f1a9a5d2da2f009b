package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"golang.org/x/sys/unix"
)

// loadGen sends requests to the LB from a bounded number of workers until
// stopped or each has sent maxPerWorker: half send GET /login on keep-alive
// connections, half POST a submit-token request (not idempotent, so never
// retried) on a new connection each. A failure is any transport error or a
// status other than 200 that the client sees; Go's client retries an
// idempotent request once when a reused idle connection turns out closed
// (RFC 9112 §9.3.1), as browsers do.
type loadGen struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	firstErrs    []string
	stop         chan struct{}
	wg           sync.WaitGroup
}

func startLoad(t *testing.T, lb string, workers, maxPerWorker int) *loadGen {
	t.Helper()
	return startLoadVia(t, lb, workers, maxPerWorker, nil)
}

// startLoadVia is startLoad with connections made by dial (nil: the
// default dialer), such as one inside a network namespace.
func startLoadVia(t *testing.T, lb string, workers, maxPerWorker int, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *loadGen {
	t.Helper()
	g := &loadGen{stop: make(chan struct{})}
	keep := &http.Transport{MaxIdleConnsPerHost: workers, DialContext: dial}
	fresh := &http.Transport{DisableKeepAlives: true, DialContext: dial}
	t.Cleanup(func() { g.halt(); keep.CloseIdleConnections() })
	for i := 0; i < workers; i++ {
		c := &http.Client{Transport: keep, Timeout: 15 * time.Second}
		send := func() (*http.Response, error) { return c.Get("http://" + lb + "/login") }
		if i%2 == 1 {
			c = &http.Client{Transport: fresh, Timeout: 15 * time.Second}
			send = func() (*http.Response, error) {
				return c.Post("http://"+lb+"/api/v1/frontend/request-submit-token", "application/x-www-form-urlencoded",
					strings.NewReader("publicKey="+mosparoemu.DemoPublicKey+"&pageTitle=t&pageUrl=https%3A%2F%2Fexample.com%2F"))
			}
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for n := 0; n < maxPerWorker; n++ {
				select {
				case <-g.stop:
					return
				default:
				}
				g.sent.Add(1)
				resp, err := send()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					g.failed.Add(1)
					g.mu.Lock()
					if len(g.firstErrs) < 10 {
						g.firstErrs = append(g.firstErrs, err.Error())
					}
					g.mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond) // leave the shared CPUs to the LB
			}
		}()
	}
	return g
}

func (g *loadGen) halt() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.wg.Wait()
}

// waitSent waits until at least n more requests were sent, so each phase
// of a test runs under load; bounded by a generous timeout.
func (g *loadGen) waitSent(t *testing.T, n int64) {
	t.Helper()
	want := g.sent.Load() + n
	deadline := time.Now().Add(time.Minute)
	for g.sent.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d requests", g.sent.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *loadGen) report(t *testing.T) {
	t.Helper()
	g.halt()
	t.Logf("load: %d requests sent, %d failed", g.sent.Load(), g.failed.Load())
	if g.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed; first errors: %s", g.failed.Load(), g.sent.Load(), strings.Join(g.firstErrs, "; "))
	}
}

// handoffSetup starts two emulated nodes and writes a configuration with
// the given public listener and a normally bound admin listener.
func handoffSetup(t *testing.T, public string) (cfgPath string) {
	t.Helper()
	var nodes []string
	for i := 1; i <= 2; i++ {
		n, err := mosparoemu.Start(mosparoemu.Options{Name: fmt.Sprintf("n%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n.Addr())
	}
	cfgPath = filepath.Join(t.TempDir(), "lb.yaml")
	yaml := fmt.Sprintf(`listen: [{address: %q}]
admin: {listen: %q}
nodes:
  - {name: n1, address: %q}
  - {name: n2, address: %q}
log: {level: info, access_log: false}
shutdown: {grace: 20s}
`, public, freeAddr(t), nodes[0], nodes[1])
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

// logFile is a file for the LB's output: a child started by an upgrade
// keeps writing to it after its parent exited, which a pipe read by
// exec.Cmd would turn into a Wait that never returns.
func logFile(t *testing.T) (*os.File, func() string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "lb-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, func() string { b, _ := os.ReadFile(f.Name()); return string(b) }
}

func waitServing(t *testing.T, url string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the LB does not serve %s; log:\n%s", url, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for a process of ours, bounded; it kills it past the bound.
func waitExit(t *testing.T, cmd *exec.Cmd, done <-chan error, logs func() string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pid %d exit: %v; log:\n%s", cmd.Process.Pid, err, logs())
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("pid %d did not exit within a minute; log:\n%s", cmd.Process.Pid, logs())
	}
}

// TestSocketActivationRestartUnderLoad plays systemd with a .socket unit:
// the test holds the listening socket and starts the binary with it
// (LISTEN_FDS, LISTEN_PID set by a shell that then execs, as systemd sets it
// between fork and exec), then restarts it twice (SIGTERM, wait, start
// again) while the load runs. Connections arriving between two processes
// wait in the socket's backlog: no request may fail. Then the
// socket-activated process is upgraded (SIGUSR2): the new one gets the
// socket from it, with systemd's name.
func TestSocketActivationRestartUnderLoad(t *testing.T) {
	bin := buildBinary(t)
	subreaper(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sock, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	public := ln.Addr().String()
	cfg := handoffSetup(t, public)
	out, logs := logFile(t)
	pidFile := filepath.Join(t.TempDir(), "lb.pid")
	start := func() (*exec.Cmd, <-chan error) {
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin, "run", "-config", cfg, "-pid-file", pidFile)
		cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=web")
		cmd.ExtraFiles = []*os.File{sock}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, done
	}
	url := "http://" + public + "/login"
	cmd, done := start()
	waitServing(t, url, logs)
	load := startLoad(t, public, 8, 20000)
	load.waitSent(t, 200)
	for i := 0; i < 2; i++ {
		cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, cmd, done, logs)
		// Between here and the next process's first accept, clients queue.
		cmd, done = start()
		load.waitSent(t, 300)
	}
	if n := strings.Count(logs(), `"from":"systemd","sockets":["fd 3 (`+public+`, name \"web\")"]`); n != 3 {
		t.Errorf("%d processes logged the socket from systemd, want 3; log:\n%s", n, logs())
	}
	waitPIDFile(t, pidFile, cmd.Process.Pid, logs)
	cmd.Process.Signal(syscall.SIGUSR2)
	waitExit(t, cmd, done, logs) // drained and gone once the new one is ready
	load.waitSent(t, 300)
	load.report(t)
	if !strings.Contains(logs(), `"from":"upgrade","sockets":["fd 3 (`+public+`, name \"web\")","fd 4 (`) {
		t.Errorf("the upgraded process did not log systemd's socket with its name; log:\n%s", logs())
	}
	pid, err := readPIDFile(pidFile)
	if err != nil || pid == cmd.Process.Pid {
		t.Fatalf("pid file after the upgrade: %d, %v", pid, err)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if !reap(pid, time.Minute) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the upgraded process %d did not exit on SIGTERM", pid)
	}
}

// subreaper makes the test process adopt orphaned descendants, as systemd
// does for a service: a process started by an upgrade outlives its parent
// and must still be reaped.
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// TestSocketActivationUnclaimedSocketIsAnError: a socket from the socket
// unit that no listen: entry names stops the start with a message naming it.
func TestSocketActivationUnclaimedSocketIsAnError(t *testing.T) {
	bin := buildBinary(t)
	extra, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	f, _ := extra.(*net.TCPListener).File()
	defer f.Close()
	cfg := handoffSetup(t, freeAddr(t))
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin, "run", "-config", cfg)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=stray")
	cmd.ExtraFiles = []*os.File{f}
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(b), extra.Addr().String()) || !strings.Contains(string(b), `"stray"`) {
		t.Errorf("start with an unclaimed socket = %v, want an exit naming %s \"stray\":\n%s", err, extra.Addr(), b)
	}
}

// TestUpgradeUnderLoad runs the nginx-style binary upgrade twice under load:
// `mosparo-lb upgrade` (SIGUSR2 via the PID file) starts the binary at the
// same path with the listening sockets, which reports ready; the old
// process drains and exits; no request may fail. A refused upgrade (the
// configuration no longer loads) leaves the running process serving. The
// test process is a child subreaper, as systemd is for a service, so it can
// reap the new processes.
func TestUpgradeUnderLoad(t *testing.T) {
	bin := buildBinary(t)
	subreaper(t)
	public := freeAddr(t)
	cfg := handoffSetup(t, public)
	pidFile := filepath.Join(t.TempDir(), "lb.pid")
	out, logs := logFile(t)
	cmd := exec.Command(bin, "run", "-config", cfg, "-pid-file", pidFile, "-upgrade-timeout", "60s")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := cmd.Process.Pid
	t.Cleanup(func() {
		if pid, err := readPIDFile(pidFile); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			reap(pid, 10*time.Second)
		}
		cmd.Process.Kill()
		reap(first, 10*time.Second)
	})
	url := "http://" + public + "/login"
	waitServing(t, url, logs)
	waitPIDFile(t, pidFile, first, logs)
	load := startLoad(t, public, 8, 20000)
	load.waitSent(t, 200)

	good, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte("listen: [{address: 1}]\n"), 0o600)
	syscall.Kill(first, syscall.SIGUSR2)
	waitLog(t, logs, "upgrade refused")
	os.WriteFile(cfg, good, 0o600)
	load.waitSent(t, 100)

	pid := first
	for i := 0; i < 2; i++ {
		b, err := exec.Command(bin, "upgrade", "-pid-file", pidFile, "-timeout", "90s").CombinedOutput()
		if err != nil || !strings.Contains(string(b), "took over") {
			t.Fatalf("mosparo-lb upgrade: %v\n%s\nlog:\n%s", err, b, logs())
		}
		next, err := readPIDFile(pidFile)
		if err != nil || next == pid {
			t.Fatalf("pid file after the upgrade = %d, %v; old pid %d", next, err, pid)
		}
		if !reap(pid, time.Minute) {
			t.Fatalf("the old process %d did not exit after the upgrade; log:\n%s", pid, logs())
		}
		pid = next
		load.waitSent(t, 300)
	}
	load.report(t)
	syscall.Kill(pid, syscall.SIGTERM)
	if !reap(pid, time.Minute) {
		t.Errorf("the last process %d did not exit on SIGTERM", pid)
	}
}

// reap waits for pid (a child, or an orphan we are the subreaper of) to
// exit, bounded; it reports whether it did.
func reap(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || errors.Is(err, syscall.ECHILD) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func waitPIDFile(t *testing.T, path string, want int, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pid, err := readPIDFile(path); err == nil && pid == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid file %s never named %d; log:\n%s", path, want, logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitLog(t *testing.T, logs func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHostileSocketEnvironment starts the real binary with broken or foreign
// socket variables: broken ones stop it with the reason before it serves;
// ones meant for another process are ignored with a warning and the
// listener is bound as usual.
func TestHostileSocketEnvironment(t *testing.T) {
	bin := buildBinary(t)
	public := freeAddr(t)
	cfg := handoffSetup(t, public)
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock, _ := ln.(*net.TCPListener).File()
	ln.Close()
	defer sock.Close()
	tests := []struct {
		name  string
		env   string // after LISTEN_PID=$$ (ours) unless it sets its own
		extra []*os.File
		want  string
		fails bool
	}{
		{name: "garbage count", env: "LISTEN_FDS=three", want: `LISTEN_FDS="three"`, fails: true},
		{name: "huge count", env: "LISTEN_FDS=4096", want: `LISTEN_FDS="4096"`, fails: true},
		{name: "names do not match", env: "LISTEN_FDS=1 LISTEN_FDNAMES=a:b", extra: []*os.File{pipeR}, want: "2 names for 1", fails: true},
		{name: "a pipe is not a socket", env: "LISTEN_FDS=1", extra: []*os.File{pipeR}, want: "fd 3", fails: true},
		{name: "descriptor not passed", env: "LISTEN_FDS=2", extra: []*os.File{sock}, want: "fd 4", fails: true},
		{name: "another process's variables", env: "LISTEN_FDS=1 LISTEN_PID=1", want: "socket variables ignored"},
		{name: "forged upgrade parent", env: "MOSPARO_LB_UPGRADE_PARENT=1 MOSPARO_LB_UPGRADE_FDS=0 MOSPARO_LB_UPGRADE_READY_FD=3", want: "socket variables ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := `LISTEN_PID=$$; export LISTEN_PID; export ` + tt.env + `; exec "$0" "$@"`
			cmd := exec.Command("/bin/sh", "-c", script, bin, "run", "-config", cfg)
			cmd.ExtraFiles = tt.extra
			out, logs := logFile(t)
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() { cmd.Process.Kill() })
			if tt.fails {
				select {
				case err := <-done:
					if err == nil || !strings.Contains(logs(), tt.want) {
						t.Errorf("exit %v, want a failure saying %q; output:\n%s", err, tt.want, logs())
					}
				case <-time.After(time.Minute):
					t.Fatalf("still running with %s; output:\n%s", tt.env, logs())
				}
				return
			}
			waitServing(t, "http://"+public+"/login", logs)
			if !strings.Contains(logs(), tt.want) {
				t.Errorf("log lacks %q:\n%s", tt.want, logs())
			}
			cmd.Process.Signal(syscall.SIGTERM)
			waitExit(t, cmd, done, logs)
		})
	}
}

// notifyMsg is one sd_notify datagram and the PID the kernel says sent it.
type notifyMsg struct {
	pid  int
	text string
}

// credNotifySocket is systemd's notification socket with SO_PASSCRED, so
// each message carries its sender's PID, which NotifyAccess= judges.
func credNotifySocket(t *testing.T) (string, <-chan notifyMsg) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := c.SyscallConn()
	rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan notifyMsg, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, oob := make([]byte, 4096), make([]byte, 256)
		for {
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			m := notifyMsg{text: string(buf[:n])}
			if scms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(scms) > 0 {
				if cred, err := unix.ParseUnixCredentials(&scms[0]); err == nil {
					m.pid = int(cred.Pid)
				}
			}
			select {
			case msgs <- m:
			default:
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return path, msgs
}

// TestUpgradeSystemdNotifications plays systemd's side of a Type=notify
// unit with NotifyAccess=main and WatchdogSec= during an upgrade: only the
// main PID is heard; the old process makes the new one main with MAINPID=
// and is silent afterwards (its STOPPING=1 would stop the service); the new
// one then feeds the watchdog as the main process.
func TestUpgradeSystemdNotifications(t *testing.T) {
	bin := buildBinary(t)
	subreaper(t)
	notify, msgs := credNotifySocket(t)
	public := freeAddr(t)
	cfg := handoffSetup(t, public)
	pidFile := filepath.Join(t.TempDir(), "lb.pid")
	out, logs := logFile(t)
	// WATCHDOG_PID is set the way systemd sets it, to the process it starts.
	cmd := exec.Command("/bin/sh", "-c", `WATCHDOG_PID=$$ exec "$0" "$@"`, bin, "run", "-config", cfg, "-pid-file", pidFile)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify, "WATCHDOG_USEC=400000")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	old := cmd.Process.Pid
	main := old
	stopping := false  // the test sent SIGTERM: STOPPING=1 is due
	var heard []string // what systemd accepted, "pid text"
	// accept reads messages as systemd would until cond holds for one.
	accept := func(what string, cond func(notifyMsg) bool) {
		t.Helper()
		timeout := time.After(time.Minute)
		for {
			select {
			case m := <-msgs:
				if m.pid == old && main != old {
					t.Errorf("the old process %d spoke after handing over: %q", old, m.text)
				}
				if m.pid != main {
					continue // refused under NotifyAccess=main
				}
				heard = append(heard, fmt.Sprintf("%d %s", m.pid, m.text))
				if strings.Contains(m.text, "STOPPING=1") && !stopping {
					t.Fatalf("the main process %d sent STOPPING=1 during an upgrade: %q", m.pid, heard)
				}
				if v, ok := strings.CutPrefix(m.text, "MAINPID="); ok {
					fmt.Sscan(v, &main)
				}
				if cond(m) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s within a minute; accepted %q; log:\n%s", what, heard, logs())
			}
		}
	}
	accept("READY=1", func(m notifyMsg) bool { return strings.HasPrefix(m.text, "READY=1") })
	waitPIDFile(t, pidFile, old, logs)
	syscall.Kill(old, syscall.SIGUSR2)
	accept("MAINPID= from the old process", func(m notifyMsg) bool { return main != old })
	accept("a watchdog ping from the new main process", func(m notifyMsg) bool { return m.text == "WATCHDOG=1" })
	waitExit(t, cmd, done, logs)
	if pid, err := readPIDFile(pidFile); err != nil || pid != main {
		t.Errorf("pid file names %d (%v), systemd's main PID is %d", pid, err, main)
	}
	stopping = true
	syscall.Kill(main, syscall.SIGTERM)
	accept("STOPPING=1 from the new main process on SIGTERM", func(m notifyMsg) bool { return strings.HasPrefix(m.text, "STOPPING=1") })
	if !reap(main, time.Minute) {
		syscall.Kill(main, syscall.SIGKILL)
		t.Errorf("the new process %d did not exit on SIGTERM", main)
	}
}
