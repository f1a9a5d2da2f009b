package contentcoding

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	both := SetOf(Gzip, Brotli)
	for _, tt := range []struct {
		name, ae string
		offered  Set
		want     Coding
	}{
		{"absent", "", both, Identity},
		{"browser", "gzip, deflate, br, zstd", both, Brotli},
		{"gzip only offered", "gzip, deflate, br", SetOf(Gzip), Gzip},
		{"nothing offered", "gzip, br", 0, Identity},
		{"identity offered only", "gzip, br", SetOf(Identity), Identity},
		{"curl --compressed", "deflate, gzip, br, zstd", both, Brotli},
		{"gzip only", "gzip", both, Gzip},
		{"x-gzip", "x-gzip", both, Gzip},
		{"br only", "br", both, Brotli},
		{"case", "GZIP, BR;Q=0.5", both, Gzip},
		{"q prefers gzip", "br;q=0.5, gzip;q=0.8", both, Gzip},
		{"q tie prefers br", "gzip;q=0.5, br;q=0.5", both, Brotli},
		{"gzip refused", "gzip;q=0, br", both, Brotli},
		{"br refused", "gzip, br;q=0", both, Gzip},
		{"both refused", "gzip;q=0, br;q=0.000", both, Identity},
		{"star", "*", both, Brotli},
		{"star gzip offered", "*", SetOf(Gzip), Gzip},
		{"star refused", "*;q=0", both, Identity},
		{"star with exception", "*, br;q=0", both, Gzip},
		{"star low, gzip high", "*;q=0.1, gzip", both, Gzip},
		{"explicit beats star", "br;q=0, *", both, Gzip},
		{"identity;q=0 alone", "identity;q=0", both, Identity},
		{"identity;q=0 with gzip", "gzip, identity;q=0", both, Gzip},
		{"identity preferred", "identity, gzip;q=0.5", both, Identity},
		{"identity equal q compresses", "identity;q=0.5, gzip;q=0.5", both, Gzip},
		{"unknown only", "deflate, zstd, compress", both, Identity},
		{"whitespace", " \t gzip \t ; \t q = 0.7 \t , br;q=0.6", both, Gzip},
		{"empty elements", ",,, ,gzip,,", both, Gzip},
		{"duplicates take the lower q", "gzip, gzip;q=0", both, Identity},
		{"duplicates lower first", "br;q=0, br", SetOf(Brotli), Identity},
		{"other params", "gzip;level=9;q=0.4, br;foo=bar;q=0.3", both, Gzip},
		{"q=1.000", "gzip;q=1.000", both, Gzip},
		// Hostile or malformed: never a panic, never a refused coding.
		{"q too high", "gzip;q=1.5", both, Identity},
		{"q too many digits", "gzip;q=0.0001", both, Identity},
		{"q negative", "br;q=-1, gzip", both, Gzip},
		{"q empty", "br;q=, gzip", both, Gzip},
		{"q letters", "br;q=abc", both, Identity},
		{"q 2", "gzip;q=2", both, Identity},
		{"q dot only", "gzip;q=.", both, Identity},
		{"q 0.", "gzip;q=0.", both, Identity},
		{"q 1.", "gzip;q=1.", both, Gzip},
		{"only semicolons", ";;;;", both, Identity},
		{"only commas", ",,,,", both, Identity},
		{"prefix of a token", "gzipx, brotli, b", both, Identity},
		{"nul bytes", "gz\x00ip, \x00br", both, Identity},
		{"high bytes", "\xff\xfe, gzip", both, Gzip},
		{"long list", strings.Repeat("deflate;q=0.5, ", 1000) + "br", both, Brotli},
		{"quoted", `"gzip"`, both, Identity},
		{"q twice takes the last", "gzip;q=0;q=1", both, Gzip},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Negotiate([]byte(tt.ae), tt.offered); got != tt.want {
				t.Errorf("Negotiate(%q, %b) = %s, want %s", tt.ae, tt.offered, got, tt.want)
			}
		})
	}
}

func TestNegotiateAllocatesNothing(t *testing.T) {
	ae := []byte("gzip;q=0.8, deflate, br;q=0.9, *;q=0.1, identity")
	if n := testing.AllocsPerRun(100, func() { Negotiate(ae, SetOf(Gzip, Brotli)) }); n != 0 {
		t.Errorf("Negotiate allocates %.1f times, want 0", n)
	}
}

func BenchmarkNegotiate(b *testing.B) {
	ae := []byte("gzip, deflate, br, zstd")
	b.ReportAllocs()
	for b.Loop() {
		Negotiate(ae, SetOf(Gzip, Brotli))
	}
}
