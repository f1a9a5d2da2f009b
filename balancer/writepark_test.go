package balancer

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// pingNode answers every chunk it reads with the same bytes at once, so an
// answer is often in the socket (and reported by another P's netpoll)
// within microseconds of the request: the case a wait that forgot an
// earlier readiness would sleep through.
func pingNode(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln
}

// Every answer awaited by writeThenPark arrives: many connections ping-pong
// at once, each write followed by a park without a read. If the park could
// miss the answer's readiness (the edge-triggered reasoning in writepark.go
// being wrong), a read would sleep until its deadline; the deadline is only
// there so that such a defect fails the test instead of hanging it.
func TestWriteThenParkStress(t *testing.T) {
	ln := pingNode(t)
	const conns, trips = 16, 2000
	msg := []byte("GET / HTTP/1.1\r\nHost: n\r\n\r\n")
	errs := make(chan error, conns)
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			nc := newNodeConn(c)
			defer nc.Close()
			if nc.raw == nil {
				errs <- errors.New("a TCP connection without a RawConn")
				return
			}
			if err := nc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				errs <- err
				return
			}
			buf := make([]byte, 256)
			for i := range trips {
				nc.awaitAnswer = true
				if n, err := nc.Write(msg); err != nil || n != len(msg) {
					errs <- err
					return
				}
				for have := 0; have < len(msg); {
					n, err := nc.Read(buf[have:])
					if err != nil {
						errs <- errors.Join(errors.New("round trip "+strconv.Itoa(i)), err)
						return
					}
					have += n
				}
				if !bytes.Equal(buf[:len(msg)], msg) {
					errs <- errors.New("answer bytes differ")
					return
				}
			}
			errs <- nil
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A request larger than the socket buffers goes out in full: what the
// socket does not take at once is written the usual way. The buffers are
// made small instead of the node pausing before it reads: 8 MiB through
// them takes hundreds of writes, and the writing loop finds one full
// whenever the node is slower than it for one of them, which a node
// reading without pause still is.
func TestWriteThenParkLargeRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	big := bytes.Repeat([]byte("x"), 8<<20)
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		if err := c.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
			done <- err
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(len(big))); err != nil {
			done <- err
			return
		}
		_, err = c.Write([]byte("ok"))
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	nc := newNodeConn(c)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(time.Minute))
	nc.awaitAnswer = true
	if n, err := nc.Write(big); err != nil || n != len(big) {
		t.Fatalf("wrote %d of %d: %v", n, len(big), err)
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != "ok" {
		t.Fatalf("answer %q: %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if nc.writeFailed {
		t.Error("a full write counted as failed")
	}
}

// A node that is gone fails the write as the node's fault (writeFailed),
// as an ordinary write does.
func TestWriteThenParkClosedNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // RST
	nc := newNodeConn(c)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(time.Minute))
	var werr error
	for i := 0; i < 100 && werr == nil; i++ { // the first write after the RST may still succeed
		nc.awaitAnswer = true
		_, werr = nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	}
	if werr == nil || !nc.writeFailed {
		t.Fatalf("write to a reset connection: %v, writeFailed %v", werr, nc.writeFailed)
	}
}
