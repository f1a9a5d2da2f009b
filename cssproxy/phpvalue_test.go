package cssproxy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FACTS 5.5 dumps, byte for byte.
const (
	factsPHPHash      = `s:64:"2095d870e89e5ec13daf43b4ef10bcb18e91bd72ac742a007a40775a690ab0a6";`
	factsIgbinaryHash = "\x00\x00\x00\x02\x11@6749ae57306090f7074cca77afc8740e547552aea6c4dfdd7c852a97cfc1371b"
	factsIgbinaryNS   = "\x00\x00\x00\x02\x11\x06h2kJa:"
	factsPHPNS        = `s:6:"nmkJa:";`
	// Head of the igbinary content: string16 with length 0x2800 = 10240.
	factsIgbinaryContentHead = "\x00\x00\x00\x02\x12(\x00.mosparo__0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4"
)

func TestDecodePHPStringFACTSVectors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"serialize hash", factsPHPHash, "2095d870e89e5ec13daf43b4ef10bcb18e91bd72ac742a007a40775a690ab0a6"},
		{"igbinary hash", factsIgbinaryHash, "6749ae57306090f7074cca77afc8740e547552aea6c4dfdd7c852a97cfc1371b"},
		{"igbinary namespace version", factsIgbinaryNS, "h2kJa:"},
		{"serialize namespace version", factsPHPNS, "nmkJa:"},
		{"serialize empty", `s:0:"";`, ""},
		{"igbinary empty", "\x00\x00\x00\x02\x0d", ""},
		{"serialize with quotes and NUL inside", "s:5:\"a\";\x00\"\";", "a\";\x00\""},
		{"igbinary string32", "\x00\x00\x00\x02\x13\x00\x00\x00\x03abc", "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePHPString([]byte(tc.in), 1<<20)
			if err != nil || string(got) != tc.want {
				t.Errorf("decodePHPString(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestDecodePHPStringIgbinaryString16(t *testing.T) {
	css := strings.Repeat("x", 10240-len(".mosparo__0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4"))
	in := factsIgbinaryContentHead + css
	got, err := decodePHPString([]byte(in), 1<<20)
	if err != nil || len(got) != 10240 || !bytes.HasPrefix(got, []byte(".mosparo__0b6e")) {
		t.Errorf("decode = %d bytes, %v, want 10240 bytes", len(got), err)
	}
}

func TestDecodePHPStringHostile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrCorrupt},
		{"one byte", "s", ErrCorrupt},
		{"serialize null", "N;", ErrNotString},
		{"serialize false", "b:0;", ErrNotString},
		{"serialize int", "i:5;", ErrNotString},
		{"serialize array", "a:0:{}", ErrNotString},
		{"serialize object", `O:8:"DateTime":0:{}`, ErrNotString},
		{"serialize unknown type", "z:1;", ErrCorrupt},
		{"no length", `s::"";`, ErrCorrupt},
		{"negative length", `s:-1:"";`, ErrCorrupt},
		{"length too long", `s:10:"abc";`, ErrCorrupt},
		{"length too short", `s:1:"abc";`, ErrCorrupt},
		{"huge length", `s:99999999999999999999999:"a";`, ErrTooLarge},
		{"over max", `s:2000000:"a";`, ErrTooLarge},
		{"missing close quote", `s:3:"abc;;`, ErrCorrupt},
		{"missing semicolon", `s:3:"abc"x`, ErrCorrupt},
		{"trailing bytes", `s:3:"abc";x`, ErrCorrupt},
		{"missing open quote", `s:3:abc";`, ErrCorrupt},
		{"bad igbinary header", "\x00\x00\x00\x01\x11\x01a", ErrCorrupt},
		{"igbinary short", "\x00\x00\x00\x02", ErrCorrupt},
		{"igbinary null", "\x00\x00\x00\x02\x00", ErrNotString},
		{"igbinary null trailing", "\x00\x00\x00\x02\x00x", ErrCorrupt},
		{"igbinary empty trailing", "\x00\x00\x00\x02\x0dx", ErrCorrupt},
		{"igbinary long", "\x00\x00\x00\x02\x06\x05", ErrNotString},
		{"string8 truncated length", "\x00\x00\x00\x02\x11", ErrCorrupt},
		{"string8 short body", "\x00\x00\x00\x02\x11\x05abc", ErrCorrupt},
		{"string8 long body", "\x00\x00\x00\x02\x11\x01abc", ErrCorrupt},
		{"string16 truncated length", "\x00\x00\x00\x02\x12\x00", ErrCorrupt},
		{"string32 truncated length", "\x00\x00\x00\x02\x13\x00\x00", ErrCorrupt},
		// A 4 GiB claim must be refused before anything is allocated.
		{"string32 4 GiB", "\x00\x00\x00\x02\x13\xff\xff\xff\xffabc", ErrTooLarge},
		{"string16 claims more than present", "\x00\x00\x00\x02\x12\xff\xffabc", ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePHPString([]byte(tc.in), 1<<20)
			if !errors.Is(err, tc.want) {
				t.Errorf("decodePHPString(%q) = %q, %v, want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestDecodePHPStringSmallMax(t *testing.T) {
	// maxLen bounds string16 too (the hash and the namespace are decoded
	// with a small bound).
	if _, err := decodePHPString([]byte("\x00\x00\x00\x02\x12\x01\x00"+strings.Repeat("a", 256)), 128); !errors.Is(err, ErrTooLarge) {
		t.Errorf("string16 of 256 with max 128: err = %v, want ErrTooLarge", err)
	}
}
