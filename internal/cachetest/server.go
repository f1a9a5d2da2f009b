package cachetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 10 * time.Second

// Server is one started cache process. Addr stays the same across
// Stop/Start, so clients configured with it reconnect after a restart.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string

	t    testing.TB
	name string
	args func(port string) []string
	env  []string // added to the process environment

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

// StartRedis starts redis-server without persistence on a free loopback
// port. It is stopped in t.Cleanup.
func StartRedis(t testing.TB) *Server {
	t.Helper()
	return start(t, "redis-server", func(port string) []string {
		return []string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--loglevel", "warning"}
	})
}

// StartRedisWith is StartRedis with extra redis-server arguments, such as
// "--requirepass", "secret" or "--replicaof", "127.0.0.1", "6379".
func StartRedisWith(t testing.TB, extra ...string) *Server {
	t.Helper()
	return start(t, "redis-server", func(port string) []string {
		return append([]string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--loglevel", "warning"}, extra...)
	})
}

// StartSentinel starts a Redis Sentinel (redis-server --sentinel) that
// monitors master under name with quorum 1, declaring it down after 500ms
// without an answer, so that one sentinel alone fails over. Its config
// file lives in t.TempDir(): Sentinel rewrites it as it learns the setup.
func StartSentinel(t testing.TB, master *Server, name string) *Server {
	t.Helper()
	dir := t.TempDir()
	host, mport, _ := net.SplitHostPort(master.Addr)
	return start(t, "redis-server", func(port string) []string {
		conf := filepath.Join(dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil {
			body := fmt.Sprintf("bind 127.0.0.1\nport %s\nprotected-mode no\nloglevel warning\n"+
				"sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 500\n"+
				"sentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
				port, name, host, mport, name, name, name)
			if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
				t.Fatalf("sentinel config: %v", err)
			}
		}
		return []string{conf, "--sentinel"}
	})
}

// CLI runs one redis-cli command against addr and returns its output
// trimmed, or "" when it fails (a server not up yet, a refused command).
func CLI(t testing.TB, addr string, args ...string) string {
	t.Helper()
	Need(t, "redis-cli")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...).Output()
	if err != nil || bytes.HasPrefix(out, []byte("ERR")) {
		return ""
	}
	return string(bytes.TrimSpace(out))
}

// StartMemcached starts memcached (TCP only, 64 MiB) on a free loopback
// port. It is stopped in t.Cleanup.
func StartMemcached(t testing.TB) *Server {
	t.Helper()
	return start(t, "memcached", func(port string) []string {
		return []string{"-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "64", "-u", "root"}
	})
}

// StartMemcachedSASL is StartMemcached requiring SASL (-S, which also
// turns the text protocol off), with user known under password in a
// sasldb of its own (Cyrus SASL's saslpasswd2, Debian's sasl2-bin; the
// Debian memcached has no plain password file). Only PLAIN is offered,
// the mechanism php-memcached (libmemcached) picks against memcached.
func StartMemcachedSASL(t testing.TB, user, password string) *Server {
	t.Helper()
	Need(t, "saslpasswd2")
	dir := t.TempDir()
	db := filepath.Join(dir, "sasldb2")
	// The default realm is the host name on both sides.
	cmd := exec.Command("saslpasswd2", "-p", "-c", "-a", "memcached", "-f", db, user)
	cmd.Stdin = bytes.NewBufferString(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("mech_list: plain\nsasldb_path: %s\n", db)
	if err := os.WriteFile(filepath.Join(dir, "memcached.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	Need(t, "memcached")
	s := &Server{t: t, name: "memcached", Addr: freeAddr(t), env: []string{"SASL_CONF_PATH=" + dir},
		args: func(port string) []string {
			return []string{"-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "64", "-u", "root", "-S"}
		}}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Need fails the test when a binary is missing (skips with -short), so a
// test using PHP or a CLI tool states its dependency the same way.
func Need(t testing.TB, binary string) string {
	t.Helper()
	p, err := exec.LookPath(binary)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s not installed (-short)", binary)
		}
		t.Fatalf("%s not installed: %v (make test installs it)", binary, err)
	}
	return p
}

func start(t testing.TB, name string, args func(port string) []string) *Server {
	t.Helper()
	Need(t, name)
	s := &Server{t: t, name: name, args: args, Addr: freeAddr(t)}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the process on Addr and waits until it accepts
// connections. Starting a running server is a no-op.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.name, s.args(port)...)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if s.env != nil {
		cmd.Env = append(os.Environ(), s.env...)
	}
	// Own process group, so a test killed mid-way does not leave it behind
	// holding the terminal's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.name, err)
	}
	s.cmd, s.logs = cmd, logs
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			s.t.Fatalf("%s on %s not up after %s: %v; output:\n%s", s.name, s.Addr, startTimeout, err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the process (SIGKILL: an outage, not a shutdown) and waits
// for it. Stopping a stopped server is a no-op.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Pause freezes the process (SIGSTOP): connections stay open but nothing
// answers, the way a hung or overloaded cache behaves. Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused process continue (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("%s is not running", s.name)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %s: %v", s.name, err)
	}
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// freeAddr asks the kernel for a free loopback port. The listener is
// closed before the server binds, a small race accepted for tests.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// String names the server in test output.
func (s *Server) String() string { return fmt.Sprintf("%s@%s", s.name, s.Addr) }
