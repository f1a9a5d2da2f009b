package cssproxy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"testing"
)

func zlibValue(t *testing.T, payload []byte, claim uint32) []byte {
	t.Helper()
	var b bytes.Buffer
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], claim)
	b.Write(n[:])
	zw := zlib.NewWriter(&b)
	zw.Write(payload)
	zw.Close()
	return b.Bytes()
}

func TestDecodeMemcachedValue(t *testing.T) {
	ok := []byte(factsPHPHash)
	z := zlibValue(t, ok, uint32(len(ok)))
	for _, tc := range []struct {
		name  string
		flags uint32
		raw   []byte
		want  []byte
		err   error
	}{
		{"plain string", 0, ok, ok, nil},
		{"user flags ignored", 0xffff0000, ok, ok, nil},
		{"zlib", 0x30, z, ok, nil},
		{"fastlz literal", 0x50, append([]byte{3, 0, 0, 0, 2}, "abc"...), []byte("abc"), nil},
		{"type long", 1, []byte("5"), nil, ErrNotString},
		{"type serialized", 4, ok, nil, ErrNotString},
		{"type igbinary", 5, ok, nil, ErrNotString},
		{"compressed without method", 0x10, z, nil, ErrCorrupt},
		{"zstd", 0x90, z, nil, ErrCorrupt},
		{"compressed no length", 0x30, []byte{1, 2}, nil, ErrCorrupt},
		// A forged 4 GiB original length must not allocate 4 GiB.
		{"4 GiB claim fastlz", 0x50, []byte{0xff, 0xff, 0xff, 0xff, 0x00, 'a'}, nil, ErrTooLarge},
		{"4 GiB claim zlib", 0x30, zlibValue(t, ok, 0xffffffff), nil, ErrTooLarge},
		{"zlib shorter than claimed", 0x30, zlibValue(t, ok, uint32(len(ok)+1)), nil, ErrCorrupt},
		{"zlib longer than claimed", 0x30, zlibValue(t, ok, uint32(len(ok)-1)), nil, ErrCorrupt},
		{"zlib garbage", 0x30, []byte{5, 0, 0, 0, 'n', 'o', 'p', 'e'}, nil, ErrCorrupt},
		{"zlib bad checksum", 0x30, append(bytes.Clone(z[:len(z)-1]), z[len(z)-1]^1), nil, ErrCorrupt},
		{"fastlz shorter than claimed", 0x50, append([]byte{4, 0, 0, 0, 2}, "abc"...), nil, ErrCorrupt},
		{"plain over max", 0, bytes.Repeat([]byte("a"), 2000), nil, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeMemcachedValue(tc.flags, tc.raw, 1024)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("decodeMemcachedValue(%#x) = %q, %v, want %v", tc.flags, got, err, tc.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("decodeMemcachedValue(%#x) = %q, %v, want %q", tc.flags, got, err, tc.want)
			}
		})
	}
}
