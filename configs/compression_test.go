package configs

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestCompressionDefaults(t *testing.T) {
	c, err := Parse("test.yaml", []byte("compression: {enabled: true}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compression
	if !got.Enabled || got.MinBytes != 1024 || got.GzipLevel != 1 || *got.BrotliLevel != 1 {
		t.Errorf("defaults = %+v", got)
	}
	if !slices.Equal(got.Algorithms, []string{"br", "gzip"}) || !slices.Equal(got.Types, DefaultCompressionTypes) {
		t.Errorf("algorithms %v, types %v", got.Algorithms, got.Types)
	}
	c, err = Parse("test.yaml", []byte("compression: {brotli_level: 0}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Compression.Enabled || *c.Compression.BrotliLevel != 0 {
		t.Errorf("brotli_level 0 must stay 0 and enabled default false: %+v", c.Compression)
	}
}

func TestCompressionInvalid(t *testing.T) {
	for _, tt := range []struct {
		name, doc, path, msg string
		line                 int
	}{
		{"level high", "compression:\n  gzip_level: 10\n", "compression.gzip_level", "1..9", 2},
		{"level zero", "compression:\n  enabled: true\n  gzip_level: -1\n", "compression.gzip_level", "1..9", 3},
		{"brotli 11", "compression:\n  brotli_level: 11\n", "compression.brotli_level", "0..9", 2},
		{"brotli negative", "compression:\n  brotli_level: -1\n", "compression.brotli_level", "0..9", 2},
		{"min bytes", "compression:\n  min_bytes: -5\n", "compression.min_bytes", "1..67108864", 2},
		{"unknown algorithm", "compression:\n  algorithms: [gzip, zstd]\n", "compression.algorithms[1]", `"zstd"`, 2},
		{"no algorithm", "compression:\n  algorithms: []\n", "compression.algorithms", "br, gzip", 2},
		{"no types", "compression:\n  types: []\n", "compression.types", "at least one", 2},
		{"bare type", "compression:\n  types: [text]\n", "compression.types[0]", "type/subtype", 2},
		{"star type", "compression:\n  types: [\"*/*\"]\n", "compression.types[0]", "type/subtype", 2},
		{"parameters", "compression:\n  types: [\"text/html; charset=utf-8\"]\n", "compression.types[0]", "without parameters", 2},
		{"bad rune", "compression:\n  types: [\"text/h(tml\"]\n", "compression.types[0]", "character", 2},
		{"unknown key", "compression:\n  level: 5\n", "compression.level", "", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.doc), noEnv)
			wantProblem(t, err, tt.path, tt.msg)
			if err != nil && !strings.Contains(err.Error(), "test.yaml:"+strconv.Itoa(tt.line)+":") {
				t.Errorf("error %q does not name line %d", err, tt.line)
			}
		})
	}
}
