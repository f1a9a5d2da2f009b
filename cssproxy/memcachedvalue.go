package cssproxy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
)

// php-memcached's flags word (php_memcached.c, FACTS 5.4): the low four
// bits are the PHP type, the next bits say how the payload is compressed,
// the high 16 bits are user flags Symfony does not use.
const (
	mcTypeMask       = 0x0f
	mcTypeString     = 0
	mcFlagCompressed = 0x10
	mcFlagZlib       = 0x20
	mcFlagFastLZ     = 0x40
	mcFlagZstd       = 0x80
	// mcLengthPrefix is the original length php-memcached writes in front
	// of a compressed payload, in host byte order (little-endian on every
	// platform mosparo's images run on).
	mcLengthPrefix = 4
)

// decodeMemcachedValue undoes php-memcached's value layer: it checks that
// the item holds a PHP string (type 0: Symfony hands php-memcached an
// already marshalled string) and decompresses it when flagged. The result
// is the string Symfony's marshaller wrote; it aliases raw when raw was not
// compressed. Decompressed output is bounded by maxLen before anything is
// allocated for it.
func decodeMemcachedValue(flags uint32, raw []byte, maxLen int) ([]byte, error) {
	if t := flags & mcTypeMask; t != mcTypeString {
		// A PHP int, bool, array... was stored under the key: not ours.
		return nil, fmt.Errorf("%w: memcached: value type %d is not a string", ErrNotString, t)
	}
	if flags&mcFlagCompressed == 0 {
		if len(raw) > maxLen+16 {
			return nil, fmt.Errorf("%w: memcached: %d bytes", ErrTooLarge, len(raw))
		}
		return raw, nil
	}
	if len(raw) < mcLengthPrefix {
		return nil, fmt.Errorf("%w: memcached: compressed value without length", ErrCorrupt)
	}
	n64 := uint64(binary.LittleEndian.Uint32(raw))
	// The marshalled string is the CSS plus at most 16 bytes of framing
	// (`s:NNNNNNN:"";` or the igbinary header), so a claim beyond that is
	// refused before allocating (a forged 4 GiB length must not allocate).
	if n64 > uint64(maxLen)+16 {
		return nil, fmt.Errorf("%w: memcached: original length %d", ErrTooLarge, n64)
	}
	n := int(n64)
	body := raw[mcLengthPrefix:]
	switch {
	case flags&mcFlagFastLZ != 0:
		out := make([]byte, n)
		got, err := fastlzDecompress(out, body)
		if err != nil {
			return nil, fmt.Errorf("memcached: %w", err)
		}
		if got != n {
			return nil, fmt.Errorf("%w: memcached: fastlz gave %d bytes, length says %d", ErrCorrupt, got, n)
		}
		return out, nil
	case flags&mcFlagZlib != 0:
		return inflateExact(body, n)
	case flags&mcFlagZstd != 0:
		return nil, fmt.Errorf("%w: memcached: zstd compression is not supported", ErrCorrupt)
	default:
		return nil, fmt.Errorf("%w: memcached: compressed flag without a method", ErrCorrupt)
	}
}

// inflateExact inflates a zlib stream that must produce exactly n bytes.
func inflateExact(body []byte, n int) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: memcached: zlib: %v", ErrCorrupt, err)
	}
	defer zr.Close()
	out := make([]byte, n)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, fmt.Errorf("%w: memcached: zlib: %v", ErrCorrupt, err)
	}
	// One more byte must not exist: the length prefix is exact.
	// Reading on to EOF also makes the reader verify the Adler-32 checksum.
	var extra [1]byte
	k, err := zr.Read(extra[:])
	if k != 0 {
		return nil, fmt.Errorf("%w: memcached: zlib output longer than %d", ErrCorrupt, n)
	}
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%w: memcached: zlib: %v", ErrCorrupt, err)
	}
	return out, nil
}
