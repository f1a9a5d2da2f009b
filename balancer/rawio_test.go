package balancer

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// rawSock behaves as the net.Conn it replaces: bytes in order, io.EOF at
// the peer's end of stream, the reset as an error, deadlines and Close
// waking a waiting Read or Write, a Write larger than the socket buffers
// completing once the peer reads.
func TestRawSock(t *testing.T) {
	t.Run("bytes and EOF", func(t *testing.T) {
		a, b := tcpPair(t)
		s := newRawSock(a)
		go func() { _, _ = b.Write([]byte("hello")); _ = b.CloseWrite() }()
		got, err := io.ReadAll(readerFunc(s.read))
		if err != nil || string(got) != "hello" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("large write waits for room", func(t *testing.T) {
		a, b := tcpPair(t)
		s := newRawSock(a)
		want := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
		done := make(chan error, 1)
		go func() {
			n, err := s.write(want)
			if err == nil && n != len(want) {
				err = errors.New("short write")
			}
			done <- err
			_ = a.CloseWrite()
		}()
		_ = b.SetReadDeadline(time.Now().Add(time.Minute))
		got, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d of %d bytes, %v", len(got), len(want), err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("deadline wakes a read", func(t *testing.T) {
		a, _ := tcpPair(t)
		s := newRawSock(a)
		_ = a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var buf [8]byte
		_, err := s.read(buf[:])
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v is not a net.Error timeout", err)
		}
	})
	t.Run("close wakes a read", func(t *testing.T) {
		a, _ := tcpPair(t)
		s := newRawSock(a)
		go func() { time.Sleep(20 * time.Millisecond); _ = a.Close() }()
		var buf [8]byte
		if _, err := s.read(buf[:]); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("err = %v, want net.ErrClosed", err)
		}
	})
	t.Run("reset is an error", func(t *testing.T) {
		a, b := tcpPair(t)
		s := newRawSock(a)
		_ = b.SetLinger(0)
		_ = b.Close()
		var buf [8]byte
		_ = a.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := s.read(buf[:]); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("err = %v, want ECONNRESET", err)
		}
	})
	t.Run("write after the peer is gone", func(t *testing.T) {
		a, b := tcpPair(t)
		s := newRawSock(a)
		_ = b.SetLinger(0)
		_ = b.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ { // the reset arrives asynchronously
			_, err = s.write([]byte("x"))
			time.Sleep(time.Millisecond)
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("err = %v, want ECONNRESET or EPIPE", err)
		}
	})
	t.Run("not plain TCP", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if newRawSock(a) != nil {
			t.Fatal("a pipe got raw I/O")
		}
	})
}

// Concurrent ping-pong through raw reads and writes on both ends: every
// byte arrives, no wait misses its wake-up (a hang fails at the deadline).
func TestRawSockPingPong(t *testing.T) {
	const conns, rounds = 8, 2000
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		a, b := tcpPair(t)
		ra, rb := newRawSock(a), newRawSock(b)
		_ = a.SetDeadline(time.Now().Add(time.Minute))
		_ = b.SetDeadline(time.Now().Add(time.Minute))
		go func() { // echo
			var buf [64]byte
			for {
				n, err := rb.read(buf[:])
				if err != nil {
					return
				}
				if _, err := rb.write(buf[:n]); err != nil {
					return
				}
			}
		}()
		go func() {
			var buf [8]byte
			for r := 0; r < rounds; r++ {
				if _, err := ra.write([]byte("ping1234")); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(readerFunc(ra.read), buf[:]); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < conns; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Reads and writes allocate nothing.
func TestRawSockAllocations(t *testing.T) {
	a, b := tcpPair(t)
	ra, rb := newRawSock(a), newRawSock(b)
	msg, buf := []byte("x"), make([]byte, 1)
	if n := testing.AllocsPerRun(200, func() {
		_, _ = ra.write(msg)
		_, _ = rb.read(buf)
	}); n != 0 {
		t.Fatalf("%v allocations per write and read", n)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
