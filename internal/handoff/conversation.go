package handoff

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// After the ready byte, parent and child talk on the same descriptor (a
// socketpair since the VRRP handover; see docs/operations.md, "Restarts and
// upgrades"): the parent sends the state it hands over (a frame of kind
// frameState), the child answers once it has taken that state over
// (frameAnswer), and the parent confirms that it let go (frameCommit). The
// payloads are opaque here: the VRRP instance states, encoded by the
// caller. A frame is one kind byte, a four-byte big-endian length and that
// many bytes, at most maxFrame.
const (
	frameState  byte = 'S'
	frameAnswer byte = 'A'
	frameCommit byte = 'C'
)

// maxFrame bounds a payload: 255 VRRP instances of a few hundred bytes
// each fit many times over; a length beyond it is a broken or hostile peer.
const maxFrame = 1 << 20

var (
	// ErrNoParent: this process was not started by an upgrade, or by a
	// parent that does not hand state over (it passed a pipe).
	ErrNoParent = errors.New("handoff: no upgrading parent to talk to")
	// ErrParentGone: the parent closed its end before committing; it has
	// exited, so what it handed over is this process's now.
	ErrParentGone = errors.New("handoff: the parent went away before committing")
	// ErrFrame: the peer sent something that is not the expected frame.
	ErrFrame = errors.New("handoff: malformed handover frame")
)

// writeFrame sends one frame on w.
func writeFrame(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("%w: %d byte payload, at most %d", ErrFrame, len(payload), maxFrame)
	}
	b := make([]byte, 5, 5+len(payload))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	_, err := w.Write(append(b, payload...))
	return err
}

// readFrame reads one frame of kind want from r. io.EOF means the peer
// closed before a frame started; a frame cut short is io.ErrUnexpectedEOF.
func readFrame(r io.Reader, want byte) ([]byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if h[0] != want {
		return nil, fmt.Errorf("%w: kind %q, want %q", ErrFrame, h[0], want)
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return nil, fmt.Errorf("%w: length %d, at most %d", ErrFrame, n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// deadlineConn is what the conversation needs of its descriptor.
type deadlineConn interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// withDeadline runs f on c bounded by timeout (none when zero) and ctx.
func withDeadline(ctx context.Context, c deadlineConn, timeout time.Duration, f func() error) error {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	err := f()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		return fmt.Errorf("cancelled: %w", ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no answer within %v", timeout)
	}
	return err
}

// Exchange sends payload, the state this process hands over, to the ready
// child and waits up to timeout for the child's answer, sent once it has
// taken that state over. This process must keep running what it hands over
// until Commit. Any failure wraps ErrNotReady; the caller then calls Abort
// and keeps serving.
func (c *Child) Exchange(ctx context.Context, payload []byte, timeout time.Duration) ([]byte, error) {
	var answer []byte
	err := withDeadline(ctx, c.conn, timeout, func() error {
		if err := writeFrame(c.conn, frameState, payload); err != nil {
			return err
		}
		var err error
		answer, err = readFrame(c.conn, frameAnswer)
		return err
	})
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		select {
		case <-c.Exited:
			err = fmt.Errorf("it exited (%v) before taking the state over", c.waitErr())
		case <-time.After(time.Second):
			err = errors.New("it closed the handover socket before answering")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: pid %d: %w", ErrNotReady, c.PID, err)
	}
	return answer, nil
}

// Commit tells the child that this process has let go of what it handed
// over (the child now owns it, also when it stops) and closes the
// conversation.
func (c *Child) Commit() error {
	defer c.conn.Close()
	err := withDeadline(context.Background(), c.conn, 10*time.Second, func() error {
		return writeFrame(c.conn, frameCommit, nil)
	})
	if err != nil {
		return fmt.Errorf("handoff: commit to pid %d: %w", c.PID, err)
	}
	return nil
}

// Abort stops a child that did not take over (SIGTERM, SIGKILL after
// StopWait) and waits until it is reaped. Having not been committed, the
// child gives up nothing this process still holds.
func (c *Child) Abort() {
	// The conversation closes only once the child is gone: closed earlier,
	// the child would take the end of file for this process's exit and
	// keep what it was handed, then give it up at SIGTERM.
	stopChild(c.proc, c.Exited, c.stopWait)
	c.conn.Close()
}

// ReceiveHandover waits for the state the upgrading parent hands over,
// after ReportReady. ErrNoParent when there is no parent to talk to.
func (s *Sockets) ReceiveHandover(ctx context.Context) ([]byte, error) {
	c := s.parentConn()
	if c == nil {
		return nil, ErrNoParent
	}
	var b []byte
	err := withDeadline(ctx, c, 0, func() error {
		var err error
		b, err = readFrame(c, frameState)
		return err
	})
	if errors.Is(err, io.EOF) {
		return nil, ErrParentGone
	}
	return b, err
}

// AnswerHandover tells the parent that this process has taken over the
// state it received; the parent then lets go and commits.
func (s *Sockets) AnswerHandover(payload []byte) error {
	c := s.parentConn()
	if c == nil {
		return ErrNoParent
	}
	return withDeadline(context.Background(), c, 10*time.Second, func() error {
		return writeFrame(c, frameAnswer, payload)
	})
}

// AwaitCommit waits until the parent commits (nil) or goes away
// (ErrParentGone: it exited, so the state is ours all the same), or ctx
// ends. It closes the conversation.
func (s *Sockets) AwaitCommit(ctx context.Context) error {
	c := s.parentConn()
	if c == nil {
		return ErrNoParent
	}
	defer c.Close()
	err := withDeadline(ctx, c, 0, func() error {
		_, err := readFrame(c, frameCommit)
		return err
	})
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrParentGone
	}
	return err
}

func (s *Sockets) parentConn() *net.UnixConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conv
}
