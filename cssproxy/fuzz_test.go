package cssproxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/internal/contentcoding"
)

const fuzzMax = 1 << 16

// FuzzDecodePHPString: never panics, never returns more than the bound,
// and a decoded string re-encoded the same way decodes to itself.
func FuzzDecodePHPString(f *testing.F) {
	for _, s := range []string{factsPHPHash, factsIgbinaryHash, factsIgbinaryNS, factsPHPNS,
		factsIgbinaryContentHead, "N;", "b:0;", `s:0:"";`, "\x00\x00\x00\x02\x0d", "\x00\x00\x00\x02\x00",
		"\x00\x00\x00\x02\x13\xff\xff\xff\xffabc", `s:99999999999999999999999:"a";`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := decodePHPString(v, fuzzMax)
		if err != nil {
			return
		}
		if len(got) > fuzzMax {
			t.Fatalf("decoded %d bytes, bound %d", len(got), fuzzMax)
		}
		var again []byte
		if len(v) >= 2 && v[1] == ':' {
			again = fmt.Appendf(nil, "s:%d:\"%s\";", len(got), got)
		} else {
			again = igbinaryString(got, v[4])
		}
		got2, err := decodePHPString(again, fuzzMax)
		if err != nil || !bytes.Equal(got, got2) {
			t.Fatalf("round trip of %q: %q, %v", got, got2, err)
		}
	})
}

// igbinaryString encodes s with the given string type byte (the width the
// original used), as igbinary would.
func igbinaryString(s []byte, typ byte) []byte {
	b := append([]byte{}, igbinaryHeader[:]...)
	switch typ {
	case igStringEmpty:
		return append(b, igStringEmpty)
	case igString8:
		b = append(b, igString8, byte(len(s)))
	case igString16:
		b = append(b, igString16)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	default:
		b = append(b, igString32)
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	}
	return append(b, s...)
}

// FuzzFastLZ: never panics or writes past dst, whatever the input.
func FuzzFastLZ(f *testing.F) {
	for _, v := range phpVectors {
		raw, err := os.ReadFile("testdata/vectors/" + v.file)
		if err == nil && v.flags&mcFlagFastLZ != 0 {
			f.Add(raw[mcLengthPrefix:], uint32(binary.LittleEndian.Uint32(raw)))
		}
	}
	f.Add([]byte{0x01, 'a', 'b', 0x20, 0x01}, uint32(5))
	f.Add([]byte{0x20, 'q', 0xe0, 0xff, 0xff, 0xff}, uint32(70000))
	f.Add([]byte{0x20, 'a', 0x3f, 0xff, 0xff, 0xff}, uint32(70000))
	f.Fuzz(func(t *testing.T, src []byte, outLen uint32) {
		dst := make([]byte, outLen%(1<<17))
		n, err := fastlzDecompress(dst, src)
		if n < 0 || n > len(dst) {
			t.Fatalf("wrote %d bytes into %d (err %v)", n, len(dst), err)
		}
	})
}

// FuzzDecodeMemcachedValue: any flags and bytes; output bounded, no panic
// (a forged length never allocates beyond the bound).
func FuzzDecodeMemcachedValue(f *testing.F) {
	for _, v := range phpVectors {
		if raw, err := os.ReadFile("testdata/vectors/" + v.file); err == nil {
			f.Add(v.flags, raw)
		}
	}
	f.Add(uint32(0x30), []byte{0xff, 0xff, 0xff, 0xff, 0x78, 0x9c})
	f.Add(uint32(0x10), []byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, flags uint32, raw []byte) {
		got, err := decodeMemcachedValue(flags, raw, fuzzMax)
		if err == nil && len(got) > fuzzMax+16 {
			t.Fatalf("decoded %d bytes, bound %d", len(got), fuzzMax+16)
		}
		if err == nil {
			_, _ = decodePHPString(got, fuzzMax)
		}
	})
}

// FuzzRequestParsing covers what Serve reads from clients: the path,
// Accept-Encoding and If-None-Match.
func FuzzRequestParsing(f *testing.F) {
	f.Add([]byte("/resources/0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a/abc.css"), []byte("gzip;q=0, br"), []byte(`W/"x", "y"`))
	f.Add([]byte("/resources/0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a.css"), []byte("*;q=0.000"), []byte(`*`))
	f.Add([]byte("/resources//.css"), []byte(";;,,q="), []byte(`"unterminated`))
	e := &entry{etag: []byte(`"x"`), codedTag: [numCodings][]byte{contentcoding.Gzip: []byte(`"x-gz"`), contentcoding.Brotli: []byte(`"x-br"`)}}
	f.Fuzz(func(t *testing.T, path, ae, inm []byte) {
		id, hash, ok := parseResourcePath(path)
		if ok {
			if _, ok2 := parseProjectID(id[:]); !ok2 {
				t.Fatalf("parseResourcePath(%q) accepted id %q", path, id[:])
			}
			if hash != nil && (len(hash) == 0 || bytes.IndexByte(hash, '/') >= 0) {
				t.Fatalf("parseResourcePath(%q) hash %q", path, hash)
			}
		}
		contentcoding.Negotiate(ae, contentcoding.SetOf(contentcoding.Gzip, contentcoding.Brotli))
		etagListMatches(inm, e)
	})
}

// FuzzLocationHash: a node's Location header never panics the coherence
// check, and an accepted hash lies inside it, right before ".css".
func FuzzLocationHash(f *testing.F) {
	f.Add([]byte("https://h/resources/0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a/abc.css"))
	f.Add([]byte("/0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a/.css"))
	f.Add([]byte("0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a/x.css"))
	f.Add([]byte("?#.css"))
	id, _ := parseProjectID([]byte("0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a"))
	f.Fuzz(func(t *testing.T, loc []byte) {
		h, ok := locationHash(loc, id)
		if !ok {
			return
		}
		if len(h) == 0 || len(h) > maxHashLen || !bytes.Contains(loc, append(append([]byte{}, h...), ".css"...)) {
			t.Fatalf("locationHash(%q) = %q", loc, h)
		}
	})
}

// FuzzMemcachedBinaryAnswer: whatever a SASL memcached (or anything posing
// as one) sends to a batch of gets and to a login, reading it never panics
// or loops, returns only keys that were asked with values within the bound,
// and a good login answer is the only one accepted.
func FuzzMemcachedBinaryAnswer(f *testing.F) {
	keys := []string{"m_:", "m_abc:design_x_content", "m_abc:design_x_hash"}
	f.Add(bytes.Join([][]byte{
		binAnswer(opGetKQ, 0, 1, flagsExtras(0x10), []byte(keys[1]), []byte("\x05\x00\x00\x00abcde")),
		binAnswer(opGetKQ, 0, 0, flagsExtras(0), []byte(keys[0]), []byte(`s:2:"ab";`)),
		binAnswer(opNoop, 0, 3, nil, nil, nil),
	}, nil))
	f.Add(binAnswer(opNoop, 0, 3, nil, nil, nil))
	f.Add(binAnswer(opSASLAuth, 0, 0, nil, nil, []byte("Authenticated")))
	f.Add(binAnswer(opSASLAuth, statusAuthError, 0, nil, nil, []byte("Auth failure.")))
	f.Add([]byte("ERROR\r\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		const maxValue = 1024
		items, err := readGetKQ(bufio.NewReader(bytes.NewReader(stream)), keys, maxValue)
		if err == nil {
			for k, it := range items {
				if !slices.Contains(keys, k) || it.Key != k {
					t.Fatalf("item for %q, which was not asked", k)
				}
				if len(it.Value) > maxValue+binKeyOverhead {
					t.Fatalf("%d byte value past the bound", len(it.Value))
				}
			}
		}
		if readAuthAnswer(bufio.NewReader(bytes.NewReader(stream))) == nil {
			if len(stream) < binHeaderLen || stream[1] != opSASLAuth || stream[6] != 0 || stream[7] != 0 {
				t.Fatalf("login accepted on %q", stream)
			}
		}
	})
}
