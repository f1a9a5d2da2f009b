//go:build !race

package contentcoding

import (
	"strings"
	"testing"
)

// Compressing a proxied answer reuses pooled encoder state: nothing is
// allocated once dst is large enough (STYLE.md 10).
func TestEncoderAllocatesNothing(t *testing.T) {
	body := []byte(strings.Repeat("<p class=\"mosparo\">hello</p>\n", 400))
	for _, tt := range []struct {
		c     Coding
		level int
	}{{Gzip, 1}, {Gzip, 5}, {Brotli, 1}, {Brotli, 4}} {
		e, _ := NewEncoder(tt.c, tt.level)
		dst := make([]byte, 0, 64<<10)
		run := func() { dst = e.Append(dst[:0], body) }
		run()
		if n := testing.AllocsPerRun(200, run); n != 0 {
			t.Errorf("%s level %d: %.1f allocs per Append, want 0", tt.c, tt.level, n)
		}
	}
}
