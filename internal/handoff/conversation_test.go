package handoff

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runConversationChild is the new process of TestUpgradeConversation: it
// reports ready, answers the handed-over state in upper case and reports
// on stdout whether the parent committed. Mode "take-and-die" exits after
// reading the state, before answering.
func runConversationChild(mode string) int {
	s, err := Inherit(OSProcess())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if err := s.ReportReady(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// SIGTERM (Abort) ends the wait for the commit, as it ends Run.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	state, err := s.ReceiveHandover(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if mode == "take-and-die" {
		return 4
	}
	if err := s.AnswerHandover(bytes.ToUpper(state)); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	err = s.AwaitCommit(ctx)
	if errors.Is(err, ErrParentGone) {
		fmt.Println("commit: parent gone")
	} else {
		fmt.Println("commit:", err)
	}
	return 0
}

func startConversation(t *testing.T, mode string) (*Child, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	child, err := Empty().Upgrade(context.Background(), UpgradeOptions{Path: os.Args[0], Args: []string{"-test.run=^$"},
		Env: append(os.Environ(), childModeEnv+"="+mode), Stdout: &out, Stderr: os.Stderr, Timeout: time.Minute, StopWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return child, &out
}

func TestUpgradeConversation(t *testing.T) {
	child, out := startConversation(t, "converse")
	answer, err := child.Exchange(context.Background(), []byte("vrrp state"), time.Minute)
	if err != nil || string(answer) != "VRRP STATE" {
		t.Fatalf("Exchange = %q, %v, want %q", answer, err, "VRRP STATE")
	}
	if err := child.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-child.Exited:
	case <-time.After(time.Minute):
		t.Fatal("the child did not exit")
	}
	if !strings.Contains(out.String(), "commit: <nil>") {
		t.Errorf("child output %q, want it to have seen the commit", out.String())
	}
}

// TestUpgradeConversationChildDies: a child that dies holding the state,
// before answering, fails the exchange with its exit status at once.
func TestUpgradeConversationChildDies(t *testing.T) {
	child, _ := startConversation(t, "take-and-die")
	_, err := child.Exchange(context.Background(), []byte("state"), time.Minute)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("Exchange with a dying child = %v, want ErrNotReady naming exit status 4", err)
	}
	child.Abort()
}

// TestUpgradeConversationTimeout: a child that reports ready but never
// answers fails the exchange after the timeout, and Abort stops and reaps
// it.
func TestUpgradeConversationTimeout(t *testing.T) {
	child, _ := startConversation(t, "converse-silent")
	_, err := child.Exchange(context.Background(), []byte("state"), 300*time.Millisecond)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("Exchange with a silent child = %v, want ErrNotReady: no answer within", err)
	}
	child.Abort()
	select {
	case <-child.Exited:
	default:
		t.Error("Abort returned before the child was reaped")
	}
}

func TestReadFrameHostile(t *testing.T) {
	frame := func(kind byte, n uint32, body string) []byte {
		b := []byte{kind, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], n)
		return append(b, body...)
	}
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr error
	}{
		{name: "state", in: frame('S', 3, "abc"), want: "abc"},
		{name: "empty state", in: frame('S', 0, ""), want: ""},
		{name: "nothing", in: nil, wantErr: io.EOF},
		{name: "header cut", in: []byte{'S', 0, 0}, wantErr: io.ErrUnexpectedEOF},
		{name: "body cut", in: frame('S', 10, "abc"), wantErr: io.ErrUnexpectedEOF},
		{name: "other kind", in: frame('A', 3, "abc"), wantErr: ErrFrame},
		{name: "huge length", in: frame('S', 0xffffffff, "abc"), wantErr: ErrFrame},
		{name: "just over the bound", in: frame('S', maxFrame+1, ""), wantErr: ErrFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(tt.in), frameState)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("readFrame(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err == nil && string(got) != tt.want {
				t.Errorf("readFrame(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := writeFrame(&b, frameAnswer, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got, err := readFrame(&b, frameAnswer); err != nil || string(got) != "x" {
		t.Errorf("round trip = %q, %v", got, err)
	}
	if err := writeFrame(&b, frameAnswer, make([]byte, maxFrame+1)); !errors.Is(err, ErrFrame) {
		t.Errorf("writeFrame of an oversized payload = %v, want ErrFrame", err)
	}
}

// TestUpgradeConversationAbort: a child aborted after answering is stopped
// while the conversation is still open, so it sees its stop, not the end
// of file it would take for the parent's exit (and keep what it was
// handed, then give it up).
func TestUpgradeConversationAbort(t *testing.T) {
	child, out := startConversation(t, "converse")
	if _, err := child.Exchange(context.Background(), []byte("state"), time.Minute); err != nil {
		t.Fatal(err)
	}
	child.Abort()
	if got := out.String(); !strings.Contains(got, "commit: cancelled") {
		t.Errorf("aborted child said %q, want it to have seen its stop (commit: cancelled…)", got)
	}
}
