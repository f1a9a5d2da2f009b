package contentcoding

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	brrr "github.com/molecule-man/go-brrr"
)

// decode undoes c with readers other than the ones that wrote it.
func decode(t *testing.T, c Coding, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case Brotli:
		r = brrr.NewReader(bytes.NewReader(b))
	default:
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", c, err)
	}
	return out
}

func TestEncoderRoundTrip(t *testing.T) {
	body := []byte(strings.Repeat(`{"valid":true,"submitToken":"0123456789abcdef"},`, 300))
	for _, tt := range []struct {
		c     Coding
		level int
	}{{Gzip, 1}, {Gzip, 6}, {Gzip, 9}, {Brotli, 0}, {Brotli, 4}, {Brotli, 9}} {
		e, err := NewEncoder(tt.c, tt.level)
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("keep")
		for range 3 { // pooled state gives the same result again
			out := e.Append(bytes.Clone(prefix), body)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("%s %d: dst prefix lost", tt.c, tt.level)
			}
			if got := decode(t, tt.c, out[len(prefix):]); !bytes.Equal(got, body) {
				t.Fatalf("%s %d: round trip differs", tt.c, tt.level)
			}
			if len(out)-len(prefix) >= len(body)/4 {
				t.Errorf("%s %d: %d bytes from %d", tt.c, tt.level, len(out)-len(prefix), len(body))
			}
		}
		if got := decode(t, tt.c, e.Append(nil, nil)); len(got) != 0 {
			t.Errorf("%s: empty input decodes to %d bytes", tt.c, len(got))
		}
	}
	for _, c := range []Coding{Gzip, Brotli} {
		if got := decode(t, c, AppendBest(nil, body, c)); !bytes.Equal(got, body) {
			t.Errorf("AppendBest %s: round trip differs", c)
		}
	}
}

func TestNewEncoderLevels(t *testing.T) {
	for _, tt := range []struct {
		c     Coding
		level int
		ok    bool
	}{
		{Gzip, 0, false}, {Gzip, 1, true}, {Gzip, 9, true}, {Gzip, 10, false}, {Gzip, -2, false},
		{Brotli, -1, false}, {Brotli, 0, true}, {Brotli, 9, true}, {Brotli, 10, false}, {Brotli, 11, false},
		{Identity, 1, false}, {Coding(9), 1, false},
	} {
		if _, err := NewEncoder(tt.c, tt.level); (err == nil) != tt.ok {
			t.Errorf("NewEncoder(%s, %d) error %v, want ok %v", tt.c, tt.level, err, tt.ok)
		}
	}
}
