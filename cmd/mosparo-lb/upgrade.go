package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/handoff"
	"github.com/mosparo-lb/mosparo-lb/vip"
	"go.uber.org/zap"
)

// upgrader carries out a SIGUSR2 binary upgrade (docs/operations.md,
// "Restarts and upgrades"): start the binary at the path this process was
// started from with every listening socket, and once it reports ready make
// it systemd's main process, hand the VRRP instances over (handOver) and
// end this one like SIGTERM does (stop accepting, drain; the VRRP
// instances the new process took stop without a priority-0 advert). Signals are handled one at a time, so no two upgrades
// overlap.
type upgrader struct {
	socks      *handoff.Sockets
	log        *zap.Logger
	exe        string
	exeErr     error
	args       []string
	configPath string
	timeout    time.Duration
	pidFile    string
	vrrp       vrrpHandover
	handedOver func() // ends this process's Run
	done       atomic.Bool
}

func (u *upgrader) run(ctx context.Context) {
	if u.done.Load() {
		u.log.Warn("upgrade already handed over; this process is draining")
		return
	}
	if err := u.check(); err != nil {
		u.log.Error("upgrade refused; this process keeps serving", zap.Error(err))
		return
	}
	u.log.Info("upgrade: starting the new binary", zap.String("path", u.exe), zap.Duration("timeout", u.timeout))
	child, err := u.socks.Upgrade(ctx, handoff.UpgradeOptions{Path: u.exe, Args: u.args, Env: os.Environ(),
		Stdout: os.Stdout, Stderr: os.Stderr, Timeout: u.timeout})
	if err == nil {
		err = u.handOver(ctx, child)
	}
	if err != nil {
		u.log.Error("upgrade failed; this process keeps serving and keeps its VRRP instances", zap.Error(err))
		// The child may have written its PID before it was stopped.
		if perr := writePIDFile(u.pidFile, os.Getpid()); perr != nil {
			u.log.Warn("pid file not restored", zap.Error(perr))
		}
		return
	}
	u.done.Store(true)
	// Type=notify: the new process becomes the unit's main process, so its
	// exit (not ours) is the service's, and $MAINPID reaches it. Sent by us,
	// the main process, which NotifyAccess=main accepts; then nothing more
	// is sent from here, so our STOPPING=1 cannot stop the service.
	if _, err := sd.SdNotify(false, "MAINPID="+strconv.Itoa(child.PID)); err != nil {
		u.log.Warn("systemd notification", zap.Error(err))
	}
	os.Unsetenv("NOTIFY_SOCKET")
	u.log.Info("upgrade: the new process is ready; this one stops accepting and drains", zap.Int("pid", child.PID))
	u.handedOver()
}

// handOver passes the VRRP instance states to the ready child and waits
// until it runs them (a master as master, advertising); only then does
// this process let go of them, so that the VIP never moves to the peer.
// Until then both advertise for the instances the child adopted, from the
// same address. On failure the child is stopped (having given up nothing)
// and this process keeps everything.
func (u *upgrader) handOver(ctx context.Context, child *handoff.Child) error {
	payload, mine, err := u.vrrp.VRRPHandoverStates()
	if err != nil {
		child.Abort()
		return err
	}
	u.log.Info("upgrade: the new process serves; handing the VRRP instances over", zap.Int("pid", child.PID), zap.Any("states", mine))
	answer, err := child.Exchange(ctx, payload, u.timeout)
	var took []vip.HandoverState
	if err == nil {
		took, err = u.vrrp.ReleaseVRRP(answer)
	}
	if err != nil {
		child.Abort()
		return fmt.Errorf("the new process did not take the VRRP instances over: %w", err)
	}
	if err := child.Commit(); err != nil {
		u.vrrp.ReclaimVRRP()
		child.Abort()
		return err
	}
	if len(took) > 0 {
		u.log.Info("upgrade: the new process runs the VRRP instances; this one stops advertising without priority 0", zap.Any("states", took))
	}
	return nil
}

// vrrpHandover is the old process's side of the VRRP handover
// (internal/daemon).
type vrrpHandover interface {
	VRRPHandoverStates() ([]byte, []vip.HandoverState, error)
	ReleaseVRRP(answer []byte) ([]vip.HandoverState, error)
	ReclaimVRRP()
}

// check refuses what an upgrade cannot carry over safely.
func (u *upgrader) check() error {
	if u.exeErr != nil {
		return fmt.Errorf("own executable unknown: %w", u.exeErr)
	}
	if _, err := os.Stat(u.exe); err != nil {
		return err
	}
	if u.configPath == "" {
		// The demo's nodes run in this process on fixed ports; a second
		// demo could not start them.
		return errors.New("the demo cannot be upgraded; use mosparo-lb run")
	}
	if _, err := configs.Load(u.configPath); err != nil {
		return fmt.Errorf("the new process would not start: %w", err)
	}
	return nil
}

// cmdUpgrade signals the running LB named by its PID file and waits until a
// new PID takes it over.
func cmdUpgrade(args []string) error {
	fs := flag.NewFlagSet("upgrade", flag.ContinueOnError)
	pidFile := fs.String("pid-file", defaultPIDFile, "PID file of the running mosparo-lb (run -pid-file)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for the new process (longer than run's -upgrade-timeout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	old, err := readPIDFile(*pidFile)
	if err != nil {
		return err
	}
	if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
		return fmt.Errorf("signal pid %d from %s: %w", old, *pidFile, err)
	}
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if pid, err := readPIDFile(*pidFile); err == nil && pid != old && syscall.Kill(pid, 0) == nil {
			fmt.Printf("mosparo-lb upgraded: pid %d took over from %d, which drains and exits\n", pid, old)
			return nil
		}
		if syscall.Kill(old, 0) != nil {
			return fmt.Errorf("pid %d exited and no new process took over; see the log", old)
		}
	}
	return fmt.Errorf("no new process took over from pid %d within %v; the running one keeps serving, see its log for why", old, *timeout)
}

// writePIDFile replaces path atomically; "" writes nothing.
func writePIDFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mosparo-lb.pid.*")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(tmp, "%d\n", pid)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// removePIDFile removes path if it still names pid: after an upgrade it
// names the new process.
func removePIDFile(path string, pid int) {
	if path == "" {
		return
	}
	if got, err := readPIDFile(path); err == nil && got == pid {
		os.Remove(path)
	}
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: %q is not a process ID", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}
