package cssproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

func TestFastLZFACTSHead(t *testing.T) {
	// FACTS 5.5, php fastlz content after the 4-byte length: a level-1
	// literal run of 32 (0x1f), then one of 24 (0x17).
	src := []byte("\x1fs:10240:\".mosparo__1c7f3b2d-8e4a\x17-4f6b-ad9c-2a3b4c5d6e7f ")
	want := "s:10240:\".mosparo__1c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f "
	dst := make([]byte, len(want))
	n, err := fastlzDecompress(dst, src)
	if err != nil || string(dst[:n]) != want {
		t.Errorf("fastlzDecompress = %q, %v, want %q", dst[:n], err, want)
	}
}

func TestFastLZMatches(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  []byte
		want string
	}{
		// Literal "ab", then ctrl 0x20: length code 1 (3 bytes), distance 1+1.
		{"level1 overlapping run", []byte{0x01, 'a', 'b', 0x20, 0x01}, "ababa"},
		// Length code 7 plus one extra byte (1): 10 bytes at distance 1.
		{"level1 long match", []byte{0x00, 'z', 0xe0, 0x01, 0x00}, "z" + string(bytes.Repeat([]byte("z"), 10))},
		// Level 2 adds length bytes while they are 255: 6+255+1+3 = 265.
		{"level2 long match 255 chain", []byte{0x20, 'q', 0xe0, 0xff, 0x01, 0x00}, "q" + string(bytes.Repeat([]byte("q"), 9+256))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, len(tc.want))
			n, err := fastlzDecompress(dst, tc.src)
			if err != nil || string(dst[:n]) != tc.want {
				t.Errorf("fastlzDecompress(%x) = %q (%d), %v, want %q", tc.src, dst[:n], n, err, tc.want)
			}
		})
	}
}

func TestFastLZLevel2FarDistance(t *testing.T) {
	// 9000 literal bytes, then a far match (distance 9000 = 8192 + 808)
	// copying the first 3 bytes.
	var src []byte
	lit := make([]byte, 9000)
	for i := range lit {
		lit[i] = byte(i*7 + i/251)
	}
	for i := 0; i < len(lit); i += 32 {
		end := min(i+32, len(lit))
		ctrl := byte(end - i - 1)
		if i == 0 {
			ctrl |= 1 << 5 // level 2 marker on the first byte
		}
		src = append(src, ctrl)
		src = append(src, lit[i:end]...)
	}
	far := 9000 - 8192
	src = append(src, 0x20|31, 255, byte(far>>8), byte(far))
	dst := make([]byte, 9003)
	n, err := fastlzDecompress(dst, src)
	if err != nil || n != 9003 || !bytes.Equal(dst[9000:], lit[:3]) {
		t.Errorf("far match: n=%d err=%v tail %x, want %x", n, err, dst[9000:n], lit[:3])
	}
}

func TestFastLZHostile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		src    []byte
		outLen int
	}{
		{"empty", nil, 10},
		{"level 3", []byte{0x40, 'a'}, 1},
		{"literal past input", []byte{0x05, 'a'}, 10},
		{"literal past output", []byte{0x05, 'a', 'b', 'c', 'd', 'e', 'f'}, 3},
		{"match before start", []byte{0x00, 'a', 0x20, 0x05}, 10},
		{"match past output", []byte{0x00, 'a', 0xe0, 0xff, 0x00}, 10},
		{"truncated distance", []byte{0x00, 'a', 0x20}, 10},
		{"truncated level1 length", []byte{0x00, 'a', 0xe0}, 10},
		{"truncated level2 length chain", []byte{0x20, 'a', 0xe0, 0xff, 0xff}, 1 << 16},
		{"truncated far distance", []byte{0x20, 'a', 0x3f, 0xff, 0x00}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, tc.outLen)
			if n, err := fastlzDecompress(dst, tc.src); !errors.Is(err, ErrCorrupt) {
				t.Errorf("fastlzDecompress(%x) = %d, %v, want ErrCorrupt", tc.src, n, err)
			}
		})
	}
}

// phpVectors are content values php-memcached 3.2.0 stored for
// testdata/write_design.php (Debian 12), with the CSS testCSS generates
// for them. Level 1 and 2 are FastLZ levels (input below / above 64 KiB).
var phpVectors = []struct {
	file  string
	flags uint32
	size  int
}{
	{"fastlz1-php-12288.flags80.bin", 0x50, 12288},
	{"fastlz2-igbinary-71680.flags80.bin", 0x50, 71680},
	{"zlib-php-12288.flags48.bin", 0x30, 12288},
	{"plain-igbinary-1500.flags0.bin", 0, 1500},
}

const vectorProject = "0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a"

func TestMemcachedValuePHPVectors(t *testing.T) {
	for _, v := range phpVectors {
		t.Run(v.file, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/vectors/" + v.file)
			if err != nil {
				t.Fatal(err)
			}
			if v.flags&mcFlagFastLZ != 0 {
				level := raw[mcLengthPrefix]>>5 + 1
				wantLevel := byte(1)
				if binary.LittleEndian.Uint32(raw) >= 65536 {
					wantLevel = 2
				}
				if level != wantLevel {
					t.Errorf("vector is FastLZ level %d, want %d", level, wantLevel)
				}
			}
			s, err := decodeMemcachedValue(v.flags, raw, 1<<20)
			if err != nil {
				t.Fatalf("decodeMemcachedValue: %v", err)
			}
			css, err := decodePHPString(s, 1<<20)
			if err != nil {
				t.Fatalf("decodePHPString: %v", err)
			}
			if want := testCSS(vectorProject, v.size); !bytes.Equal(css, want) {
				t.Errorf("decoded %d bytes, want the %d bytes PHP wrote", len(css), len(want))
			}
		})
	}
}
