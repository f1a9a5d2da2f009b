package configs

import (
	"fmt"
	"strings"
)

// Compression compresses the nodes' text answers for clients that accept
// it (gzip, brotli). The CSS edge (css_cache) always offers its own
// precompressed forms and is not governed by this section.
type Compression struct {
	// Enabled turns compression of proxied answers on. Default false, as in
	// nginx and HAProxy: compressing pages that reflect client input next
	// to a secret (CSRF tokens in mosparo's admin pages) over TLS is what
	// BREACH exploits, and it costs the balancer CPU.
	Enabled bool `yaml:"enabled"`
	// Algorithms are the codings offered, of br and gzip; the client's
	// Accept-Encoding q-values choose, brotli first on a tie. Default
	// [br, gzip].
	Algorithms []string `yaml:"algorithms"`
	// MinBytes is the smallest body compressed, in bytes: below about one
	// packet the saving buys nothing. Default 1024; 1..67108864.
	MinBytes int `yaml:"min_bytes"`
	// Types are the media types compressed ("text/*" matches every text
	// type), compared without parameters and ignoring case. Default
	// text/*, application/json, application/problem+json,
	// application/javascript, application/x-javascript, application/xml,
	// application/manifest+json, image/svg+xml.
	Types []string `yaml:"types"`
	// GzipLevel is gzip's level, 1 (fastest) .. 9 (smallest). Default 1 (docs/operations.md: measured CPU against size).
	GzipLevel int `yaml:"gzip_level"`
	// BrotliLevel is brotli's level, 0 (fastest) .. 9; 10 and 11 are far
	// too slow per request. Default 1.
	BrotliLevel *int `yaml:"brotli_level"`
}

// DefaultCompressionTypes are compression.types when none are listed.
var DefaultCompressionTypes = []string{
	"text/*", "application/json", "application/problem+json", "application/javascript",
	"application/x-javascript", "application/xml", "application/manifest+json", "image/svg+xml",
}

// CompressionAlgorithms are the valid compression.algorithms.
var CompressionAlgorithms = []string{"br", "gzip"}

func (c *Compression) defaults() {
	if c.Algorithms == nil {
		c.Algorithms = append([]string(nil), CompressionAlgorithms...)
	}
	setInt(&c.MinBytes, 1024)
	if c.Types == nil {
		c.Types = append([]string(nil), DefaultCompressionTypes...)
	}
	setInt(&c.GzipLevel, 1)
	if c.BrotliLevel == nil {
		l := 1
		c.BrotliLevel = &l
	}
}

func (c *Compression) validate(v *validator, path string) {
	if len(c.Algorithms) == 0 {
		v.Errorf(path+".algorithms", "must list br, gzip or both (set enabled: false to compress nothing)")
	}
	for i, a := range c.Algorithms {
		if !contains(CompressionAlgorithms, a) {
			v.Errorf(fmt.Sprintf("%s.algorithms[%d]", path, i), "must be br or gzip, got %q", a)
		}
	}
	if c.MinBytes < 1 || c.MinBytes > 64<<20 {
		v.Errorf(path+".min_bytes", "must be 1..67108864 bytes, got %d", c.MinBytes)
	}
	if len(c.Types) == 0 {
		v.Errorf(path+".types", "must list at least one media type, like text/*")
	}
	for i, t := range c.Types {
		if msg := checkMediaRange(t); msg != "" {
			v.Errorf(fmt.Sprintf("%s.types[%d]", path, i), "%s, got %q", msg, t)
		}
	}
	if c.GzipLevel < 1 || c.GzipLevel > 9 {
		v.Errorf(path+".gzip_level", "must be 1..9, got %d", c.GzipLevel)
	}
	if l := *c.BrotliLevel; l < 0 || l > 9 {
		v.Errorf(path+".brotli_level", "must be 0..9 (10 and 11 cost tens of milliseconds per answer), got %d", l)
	}
}

// checkMediaRange returns what is wrong with a compression type, or "":
// type/subtype or type/*, RFC 9110 tokens, no parameters.
func checkMediaRange(t string) string {
	typ, sub, ok := strings.Cut(t, "/")
	if !ok || typ == "" || sub == "" || typ == "*" {
		return "must be type/subtype or type/*, like text/* or application/json"
	}
	if strings.ContainsAny(t, ";, \t") {
		return "must be a bare media type without parameters or lists"
	}
	for _, part := range []string{typ, sub} {
		if part == "*" {
			continue
		}
		for _, r := range part {
			if !isTokenRune(r) {
				return "has a character that cannot appear in a media type"
			}
		}
	}
	return ""
}
