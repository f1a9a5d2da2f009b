package contentcoding

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
)

// BenchmarkEncoder measures CPU against ratio per level, the basis of the
// default compression levels (docs/operations.md). Set
// CONTENTCODING_CORPUS to a directory of sample answers (say mosparo's
// frontend JS, an admin page, a JSON answer); without it, the emulated
// node's CSS is used. The "ratio%" metric is compressed size in percent of
// the input.
func BenchmarkEncoder(b *testing.B) {
	corpus := map[string][]byte{"mosparo-css": mosparoemu.DefaultCSS("0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a")}
	if dir := os.Getenv("CONTENTCODING_CORPUS"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		corpus = map[string][]byte{}
		for _, f := range files {
			if body, err := os.ReadFile(f); err == nil {
				corpus[filepath.Base(f)] = body
			}
		}
	}
	for name, body := range corpus {
		for _, c := range []Coding{Gzip, Brotli} {
			lo, hi := GzipMinLevel, GzipMaxLevel
			if c == Brotli {
				lo, hi = BrotliMinLevel, BrotliMaxStreamLevel
			}
			for level := lo; level <= hi; level++ {
				e, _ := NewEncoder(c, level)
				b.Run(strings.Join([]string{name, c.String(), strconv.Itoa(level)}, "/"), func(b *testing.B) {
					dst := e.Append(nil, body)
					b.SetBytes(int64(len(body)))
					b.ReportAllocs()
					for b.Loop() {
						dst = e.Append(dst[:0], body)
					}
					b.ReportMetric(100*float64(len(dst))/float64(len(body)), "ratio%")
				})
			}
		}
	}
}
