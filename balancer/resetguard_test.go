package balancer

import (
	"bytes"
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
