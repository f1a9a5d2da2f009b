package balancer

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// A client resetting streams faster than max_resets per reset_window is
// disconnected (CVE-2023-44487); one within the bound keeps its connection.
func TestHTTP2RapidReset(t *testing.T) {
	n := startEcho(t, "n1")
	s, addr := startLB(t, testConfig(t, h2YAML(t, "    http2: {max_resets: 20, reset_window: 1m}", "")), nodesOf(n))

	h := dialH2(t, addr)
	var id uint32 = 1
	for range 20 {
		if err := h.headers(id, true, h2Get(addr, "/login")...); err != nil {
			t.Fatal(err)
		}
		if err := h.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
		id += 2
	}
	if err := h.headers(id, true, h2Get(addr, "/login")...); err != nil {
		t.Fatal(err)
	}
	if r := h.await(id); r.status != "200" {
		t.Fatalf("after 20 resets: %+v, want 200: the bound is 20", r)
	}

	h = dialH2(t, addr)
	id = 1
	var werr error
	for i := 0; i < 5000 && werr == nil; i++ {
		if werr = h.headers(id, true, h2Get(addr, "/login")...); werr == nil {
			werr = h.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
		id += 2
	}
	// The connection ends: reading drains whatever was answered before.
	closed := false
	for range 100000 {
		if _, err := h.fr.ReadFrame(); err != nil {
			closed = true
			break
		}
	}
	if !closed {
		t.Fatal("a client resetting 5000 streams still has its connection")
	}
	waitFor(t, func() bool { return s.HTTP2Stats().RapidResets == 1 })
}

// FuzzResetGuardScan: the RST_STREAM count does not depend on how reads
// split the byte stream, and no input panics.
func FuzzResetGuardScan(f *testing.F) {
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&b, nil)
	_ = fr.WriteSettings()
	_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
	_ = fr.WriteData(3, true, []byte("x\x00\x00\x00\x03"))
	_ = fr.WriteRSTStream(3, http2.ErrCodeCancel)
	f.Add(b.Bytes(), uint8(7))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x03"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		clock := time.Unix(0, 0)
		count := func(step int) int {
			g := &resetGuard{max: 1 << 30, window: time.Hour, now: func() time.Time { return clock }}
			for p := data; len(p) > 0; {
				k := min(step, len(p))
				g.scan(p[:k])
				p = p[k:]
			}
			return g.resets
		}
		whole, split := count(len(data)+1), count(int(chunk)+1)
		if whole != split {
			t.Errorf("resets read whole = %d, in %d-byte reads = %d", whole, int(chunk)+1, split)
		}
	})
}

// h2Frames is a client's byte stream: the preface when preface is set, then
// the frames write adds.
func h2Frames(t testing.TB, preface bool, write func(fr *http2.Framer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if preface {
		b.WriteString(http2.ClientPreface)
	}
	if err := write(http2.NewFramer(&b, nil)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rstFrames writes n RST_STREAM frames on consecutive client streams.
func rstFrames(n int) func(fr *http2.Framer) error {
	return func(fr *http2.Framer) error {
		for i := range n {
			if err := fr.WriteRSTStream(uint32(2*i+1), http2.ErrCodeCancel); err != nil {
				return err
			}
		}
		return nil
	}
}

// The bound is max resets per fixed window that starts at the first reset
// after the previous window ended: at exactly window the count starts
// again, a moment earlier it does not, and a clock stepping back never
// empties it.
func TestResetGuardWindow(t *testing.T) {
	type burst struct {
		at     time.Duration // since the first reset
		resets int
	}
	const window = 10 * time.Second
	for _, tc := range []struct {
		name   string
		max    int
		bursts []burst
		trip   int // the reset (from 1) that fails the connection; 0 for none
	}{
		{"max at once", 3, []burst{{0, 3}}, 0},
		{"one over at once", 3, []burst{{0, 4}}, 4},
		{"spread within the window", 3, []burst{{0, 1}, {3 * time.Second, 1}, {6 * time.Second, 1}, {window - time.Nanosecond, 1}}, 4},
		{"max in each of two windows", 3, []burst{{0, 3}, {window, 3}}, 0},
		{"one over a nanosecond before the edge", 3, []burst{{0, 3}, {window - time.Nanosecond, 1}}, 4},
		// Fixed windows: the second starts at its first reset, so up to
		// 2*max fit in a span shorter than window across an edge.
		{"fixed windows across an edge", 3, []burst{{0, 1}, {window - time.Millisecond, 2}, {window, 3}}, 0},
		{"a new window starts at its first reset", 3, []burst{{0, 1}, {window + time.Second, 3}, {2*window + time.Millisecond, 1}}, 5},
		{"clock stepping back", 3, []burst{{0, 3}, {-time.Hour, 1}}, 4},
		{"max zero", 0, []burst{{0, 1}}, 1},
		{"hostile burst", 100, []burst{{0, 100_000}}, 101},
		{"slow and steady", 1, []burst{{0, 1}, {window, 1}, {2 * window, 1}, {3 * window, 1}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(1_700_000_000, 0)
			clock := start
			g := &resetGuard{max: tc.max, window: window, now: func() time.Time { return clock }}
			if g.scan([]byte(http2.ClientPreface)) {
				t.Fatal("the preface tripped the guard")
			}
			one := h2Frames(t, false, rstFrames(1))
			trip, n := 0, 0
			for _, b := range tc.bursts {
				clock = start.Add(b.at)
				for range b.resets {
					n++
					if g.scan(one) && trip == 0 {
						trip = n
					}
				}
			}
			if trip != tc.trip {
				t.Errorf("tripped at reset %d, want %d (0: never)", trip, tc.trip)
			}
		})
	}
}

// Only RST_STREAM frame headers count: not the preface, not other frames,
// not payload bytes that look like a frame header, whatever the client
// claims and however its bytes are split across reads.
func TestResetGuardCountsFrameHeadersOnly(t *testing.T) {
	// A payload that holds a whole RST_STREAM frame header and body.
	fake := h2Frames(t, false, rstFrames(1))
	for _, tc := range []struct {
		name   string
		stream []byte
		resets int
	}{
		{"preface alone", []byte(http2.ClientPreface), 0},
		{"settings, ping, window update, goaway", h2Frames(t, true, func(fr *http2.Framer) error {
			return errors.Join(fr.WriteSettings(), fr.WritePing(false, [8]byte{3, 3, 3}), fr.WriteWindowUpdate(0, 3), fr.WriteGoAway(3, http2.ErrCodeCancel, []byte{0, 0, 4, 3}))
		}), 0},
		{"resets", h2Frames(t, true, rstFrames(5)), 5},
		{"reset hidden in DATA", h2Frames(t, true, func(fr *http2.Framer) error {
			return errors.Join(fr.WriteData(1, false, fake), fr.WriteData(1, true, bytes.Repeat(fake, 100)))
		}), 0},
		{"reset hidden in an unknown frame type", h2Frames(t, true, func(fr *http2.Framer) error {
			return fr.WriteRawFrame(0xfa, 0, 1, bytes.Repeat(fake, 3))
		}), 0},
		{"reset on stream 0", h2Frames(t, true, func(fr *http2.Framer) error {
			return fr.WriteRawFrame(http2.FrameRSTStream, 0, 0, []byte{0, 0, 0, 8})
		}), 1},
		// A length that lies: what follows is payload to the guard, as
		// to x/net's reader (which then fails the connection anyway).
		{"reset with a long payload", h2Frames(t, true, func(fr *http2.Framer) error {
			return errors.Join(fr.WriteRawFrame(http2.FrameRSTStream, 0, 1, fake), rstFrames(2)(fr))
		}), 3},
		{"16 MiB length swallows what follows", append([]byte(http2.ClientPreface+"\xff\xff\xff\x00\x00\x00\x00\x00\x01"), bytes.Repeat(fake, 1000)...), 0},
		// The guard does not judge the preface (x/net does): any 24
		// bytes are passed over.
		{"no preface", append(bytes.Repeat(fake, 2)[:24], fake...), 1},
		{"truncated header", append(h2Frames(t, true, rstFrames(2)), fake[:8]...), 2},
	} {
		for _, chunk := range []int{1, 2, 7, 9, 13, 1 << 20} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, chunk), func(t *testing.T) {
				g := &resetGuard{max: 1 << 30, window: time.Hour, now: time.Now}
				for p := tc.stream; len(p) > 0; {
					k := min(chunk, len(p))
					g.scan(p[:k])
					p = p[k:]
				}
				if g.resets != tc.resets {
					t.Errorf("counted %d resets, want %d", g.resets, tc.resets)
				}
			})
		}
	}
}

// Reading through the guard over a real connection: a client within the
// bound gets every byte through unchanged; the read that passes the bound
// fails with errRapidReset and hands on none of its bytes (they may
// already hold the next streams), and so does every read after it, without
// reading further.
func TestResetGuardRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		trip   bool
	}{
		{"within the bound", h2Frames(t, true, rstFrames(4)), false},
		{"over the bound", h2Frames(t, true, rstFrames(5)), true},
		{"over the bound, then requests", h2Frames(t, true, func(fr *http2.Framer) error {
			return errors.Join(rstFrames(5)(fr), fr.WriteData(1, true, []byte("next stream")))
		}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb, client := tcpPair(t)
			g := &resetGuard{Conn: lb, max: 4, window: time.Minute, now: time.Now}
			_ = lb.SetReadDeadline(time.Now().Add(10 * time.Second))
			mustWrite(t, client, string(tc.stream))
			var got []byte
			var err error
			buf := make([]byte, 5)
			for err == nil && len(got) < len(tc.stream) {
				var n int
				n, err = g.Read(buf)
				got = append(got, buf[:n]...)
			}
			if !tc.trip {
				if err != nil || !bytes.Equal(got, tc.stream) {
					t.Fatalf("read %q, %v; want the stream unchanged", got, err)
				}
				return
			}
			if !errors.Is(err, errRapidReset) {
				t.Fatalf("read %d of %d bytes, error %v; want errRapidReset", len(got), len(tc.stream), err)
			}
			// No byte of the read that completed the fifth reset's header
			// was handed on.
			if tripAt := len(http2.ClientPreface) + 4*13 + 9; len(got) >= tripAt || !bytes.Equal(got, tc.stream[:len(got)]) {
				t.Errorf("handed on %d bytes, want fewer than the %d up to the tripping header", len(got), tripAt)
			}
			mustWrite(t, client, "after")
			if n, err := g.Read(buf); n != 0 || !errors.Is(err, errRapidReset) {
				t.Errorf("read after the trip = %d, %v; want 0, errRapidReset", n, err)
			}
			// The guard did not read on: what it did not read waits on
			// the socket, "after" included.
			_ = client.Close()
			rest, err := io.ReadAll(lb)
			if err != nil || !bytes.HasSuffix(append(bytes.Clone(tc.stream), "after"...), rest) || !bytes.HasSuffix(rest, []byte("after")) {
				t.Errorf("the socket holds %q, %v after the trip; want the unread end of the stream and %q", rest, err, "after")
			}
		})
	}
}

// x/net refuses h2 over weak TLS by asking the connection for its TLS
// state: the guard passes the state of the TLS connection it wraps, and a
// zero state for a plain one.
func TestResetGuardConnectionState(t *testing.T) {
	lb, client := tcpPair(t)
	if st := (&resetGuard{Conn: lb}).ConnectionState(); st.HandshakeComplete || st.Version != 0 {
		t.Errorf("plain connection: state %+v, want the zero state", st)
	}
	certFile, keyFile := writeCert(t, t.TempDir(), "lb.example")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := tls.Server(lb, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	cli := tls.Client(client, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	_ = lb.SetDeadline(time.Now().Add(10 * time.Second))
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	done := make(chan error, 1)
	go func() { done <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := (&resetGuard{Conn: srv}).ConnectionState()
	if !st.HandshakeComplete || st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "h2" {
		t.Errorf("TLS connection: state %v/%x/%q, want complete/TLS 1.3/h2", st.HandshakeComplete, st.Version, st.NegotiatedProtocol)
	}
}
