package handoff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readyByte is what a child writes on the ready pipe.
const readyByte = 'R'

// ErrNotReady: the new process did not report ready; the caller keeps
// serving. The error wrapping it says why (exit status, timeout).
var ErrNotReady = errors.New("handoff: the new process did not become ready")

// UpgradeOptions say what to start and how long to wait for it.
type UpgradeOptions struct {
	// Path and Args (without argv[0]) are the program to start: the new
	// binary at the path the running one was started from.
	Path string
	Args []string
	// Env is the child's environment before the handoff variables are
	// added; stale socket variables and WATCHDOG_PID are removed from it
	// (the watchdog is the child's to feed once it is the main process).
	Env []string
	// Stdout and Stderr of the child; nil discards. An *os.File is passed
	// as is, so the child keeps writing after this process exited.
	Stdout, Stderr io.Writer
	// Timeout bounds the wait for the child's ready report.
	Timeout time.Duration
	// StopWait is how long a child that failed gets to exit after SIGTERM
	// before it is killed. Zero means 10s.
	StopWait time.Duration
}

// Child is a started and ready new process, and the conversation with it
// (conversation.go): Exchange, then Commit or Abort.
type Child struct {
	// PID of the new process.
	PID int
	// Exited is closed when the child has exited and been reaped (it is
	// this process's child until this process exits).
	Exited <-chan struct{}

	proc     *os.Process
	conn     *net.UnixConn
	stopWait time.Duration
	waitErr  func() error // valid once Exited is closed
}

// Upgrade starts the new process with every held listener and waits until
// it reports ready (ReportReady), it exits, Timeout passes or ctx ends. On
// any failure the child is stopped (SIGTERM, SIGKILL after StopWait) and
// reaped, the held listeners are untouched and the error wraps ErrNotReady:
// this process keeps serving. On success the child serves the same sockets;
// the caller hands its state over (Exchange), then Commits and drains, or
// Aborts.
func (s *Sockets) Upgrade(ctx context.Context, o UpgradeOptions) (*Child, error) {
	files, names, err := s.handover()
	if err != nil {
		return nil, err
	}
	defer closeFiles(files)
	// A socketpair, not a pipe: after the ready byte the parent speaks too.
	r, w, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("handoff: ready socket: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			r.Close()
		}
	}()
	cmd := exec.Command(o.Path, o.Args...)
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	cmd.ExtraFiles = append(files, w)
	cmd.Env = append(childEnv(o.Env),
		envUpgradeParent+"="+strconv.Itoa(os.Getpid()),
		envUpgradeFDs+"="+strconv.Itoa(len(files)),
		envUpgradeFDNames+"="+strings.Join(names, ":"),
		envUpgradeReadyFD+"="+strconv.Itoa(firstFD+len(files)),
	)
	err = cmd.Start()
	w.Close() // the child's copy is the only writer: its exit is our EOF
	if err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrNotReady, o.Path, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	child := &Child{PID: cmd.Process.Pid, Exited: exited, proc: cmd.Process, conn: r, stopWait: o.StopWait,
		waitErr: func() error { return waitErr }}

	werr := waitReady(ctx, r, o.Timeout)
	if werr == nil {
		keep = true
		return child, nil
	}
	if errors.Is(werr, io.EOF) {
		<-exited // the pipe closes when the child exits
		werr = fmt.Errorf("it exited (%v) before reporting ready", waitErr)
	} else {
		stopChild(cmd.Process, exited, o.StopWait)
	}
	return nil, fmt.Errorf("%w: pid %d: %w", ErrNotReady, child.PID, werr)
}

// socketpair returns the parent's end as a connection (deadlines work on
// it) and the child's end as a file to pass on.
func socketpair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	pf := os.NewFile(uintptr(fds[0]), "upgrade parent")
	defer pf.Close()
	c, err := net.FileConn(pf) // a duplicate, non-blocking
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "upgrade child"), nil // a socketpair's end is a UnixConn
}

// waitReady reads the child's ready byte within timeout or until ctx ends.
func waitReady(ctx context.Context, r *net.UnixConn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := r.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { r.SetDeadline(time.Now()) })
	defer stop()
	var b [1]byte
	_, err := io.ReadFull(r, b[:])
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		return fmt.Errorf("upgrade cancelled: %w", ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no ready report within %v", timeout)
	case err != nil:
		return err
	case b[0] != readyByte:
		return fmt.Errorf("unexpected ready report %q", b[0])
	}
	return nil
}

func stopChild(p *os.Process, exited <-chan struct{}, wait time.Duration) {
	if wait <= 0 {
		wait = 10 * time.Second
	}
	_ = p.Signal(syscall.SIGTERM)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-exited:
		return
	case <-t.C:
	}
	_ = p.Kill()
	<-exited
}

// childEnv is env without the variables that describe this process's own
// sockets and watchdog.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env)+4)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case envListenPID, envListenFDs, envListenFDNames, envUpgradeParent, envUpgradeFDs, envUpgradeFDNames, envUpgradeReadyFD, "WATCHDOG_PID":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// ReportReady tells the upgrading parent that this process serves, so the
// parent may hand its state over (ReceiveHandover). It does nothing when
// this process was not started by an upgrade, and only the first call
// writes.
func (s *Sockets) ReportReady() error {
	s.mu.Lock()
	var w io.Writer
	switch {
	case s.ready != nil: // a parent that passed a pipe: nothing follows
		defer s.ready.Close()
		w = s.ready
	case s.conv != nil && !s.reported:
		w = s.conv
	}
	s.ready, s.reported = nil, true
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	if _, err := w.Write([]byte{readyByte}); err != nil {
		return fmt.Errorf("handoff: report ready to the parent: %w", err)
	}
	return nil
}
