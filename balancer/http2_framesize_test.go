package balancer

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
)

// The LB advertises SETTINGS_MAX_FRAME_SIZE 16384 (x/net would say 1 MiB):
// a DATA frame of that size is answered, a larger HEADERS frame ends the
// connection with FRAME_SIZE_ERROR (h2spec 4.2/1 and 4.2/3 failed with
// x/net's default).
func TestHTTP2MaxFrameSize(t *testing.T) {
	n := startEcho(t, "n1")
	_, addr := startLB(t, testConfig(t, h2YAML(t, "", "")), nodesOf(n))

	h := dialH2(t, addr)
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	if v, ok := sf.Value(http2.SettingMaxFrameSize); !ok || v != h2MaxFrameSize {
		t.Fatalf("SETTINGS_MAX_FRAME_SIZE %d (sent %v), want %d", v, ok, h2MaxFrameSize)
	}
	_ = h.fr.WriteSettingsAck()
	post := [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "mosparo.example"}, {":path", "/api/v1/frontend/check-form-data"}}
	if err := h.headers(1, false, post...); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteData(1, true, bytes.Repeat([]byte("x"), h2MaxFrameSize)); err != nil {
		t.Fatal(err)
	}
	if r := h.await(1); r.status == "" || r.reset != 0 {
		t.Fatalf("a %d-byte DATA frame: %+v, want an answer", h2MaxFrameSize, r)
	}

	h = dialH2(t, addr)
	big := append(h2Get(addr, "/login"), [2]string{"x-big", string(bytes.Repeat([]byte("y"), 2*h2MaxFrameSize))}) // Huffman-coded: still over 16 KiB
	if err := h.headers(1, true, big...); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeFrameSize {
				t.Fatalf("GOAWAY %v, want FRAME_SIZE_ERROR", g.ErrCode)
			}
			return
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			_ = h.fr.WriteSettingsAck()
		}
	}
	t.Fatal("no GOAWAY within 100 frames")
}
