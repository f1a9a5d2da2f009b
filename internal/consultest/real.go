package consultest

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
	"strconv"
	"testing"
	"time"
)

// RealAgent starts a real Consul agent in -dev mode on loopback ports of
// its own and returns its HTTP host:port; it is stopped when the test ends.
// The binary is $CONSUL_BIN, else .consul-bin/consul at the module root
// (what `make consul` builds with ../shared/consul/get-consul.sh). Without
// it the test is skipped with the reason, unless $CI or
// $MOSPARO_LB_REQUIRE_CONSUL is set: CI must run it.
func RealAgent(t *testing.T) string {
	t.Helper()
	bin := consulBinary()
	if bin == "" {
		msg := "REAL CONSUL TEST NOT RUN: no consul binary ($CONSUL_BIN or .consul-bin/consul; `make consul` builds it)"
		if os.Getenv("CI") != "" || os.Getenv("MOSPARO_LB_REQUIRE_CONSUL") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// A port found free may be taken by another test before consul binds
	// it; consul then exits at once, and a fresh set of ports is tried
	// (twice at most, so a consul that cannot start fails soon).
	for attempt := 1; ; attempt++ {
		addr, log, exited := startAgent(t, bin, attempt)
		if exited == nil {
			return addr
		}
		if attempt == 3 {
			t.Fatalf("consul exited before it served (%v), attempt %d; log:\n%s", exited, attempt, log)
		}
		t.Logf("consul exited before it served (%v), trying other ports; log:\n%s", exited, log)
	}
}

// startAgent starts one agent with a node name of its own (so another
// test's agent answering on a reused port is never taken for it) and waits
// until it has a leader and its node is in the catalog. It returns the
// agent's HTTP address, or the log and exit status of an agent that ended
// before it got there.
func startAgent(t *testing.T, bin string, attempt int) (string, []byte, error) {
	t.Helper()
	ports := freePorts(t, 4)
	node := fmt.Sprintf("mosparo-lb-test-%d-%d", ports[0], attempt)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "agent", "-dev", "-node", node, "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(ports[0]), "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", strconv.Itoa(ports[1]), "-serf-wan-port", strconv.Itoa(ports[2]), "-server-port", strconv.Itoa(ports[3]),
		"-data-dir", t.TempDir())
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	log, err := os.Create(filepath.Join(t.TempDir(), "consul.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start consul: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cancel()
		<-exited
		log.Close()
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			stop()
			b, _ := os.ReadFile(log.Name())
			if err == nil {
				err = errors.New("exit status 0")
			}
			return "", b, err
		default:
		}
		if leader(addr) && nodeRegistered(addr, node) {
			t.Cleanup(stop)
			return addr, nil, nil
		}
		if time.Now().After(deadline) {
			stop()
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("consul at %s elected no leader in 60s; log:\n%s", addr, b)
		}
	}
}

func consulBinary() string {
	if b := os.Getenv("CONSUL_BIN"); b != "" {
		return b
	}
	dir, err := os.Getwd()
	for err == nil {
		if _, serr := os.Stat(filepath.Join(dir, "go.mod")); serr == nil {
			b := filepath.Join(dir, ".consul-bin", "consul")
			if _, serr := os.Stat(b); serr == nil {
				return b
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return ""
}

// leader reports whether the agent answers with a known leader.
func leader(addr string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/v1/status/leader")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b [128]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode == http.StatusOK && n > 2 && string(b[:n]) != `""`
}

// nodeRegistered reports whether the agent's own node is in the catalog: a
// session created before that fails with "Missing node registration", which
// a leader alone does not rule out on a busy machine.
func nodeRegistered(addr, node string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/v1/catalog/node/" + node)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b [16]byte
	n, _ := io.ReadFull(resp.Body, b[:])
	return resp.StatusCode == http.StatusOK && n > 4 && string(b[:4]) != "null"
}

// freePorts finds n distinct loopback ports free for both TCP and UDP
// (serf uses both). Each stays held until all are found: a port closed at
// once can be handed out again, and consul refuses one port for two uses.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		held = append(held, u)
		ports = append(ports, p)
	}
	return ports
}
