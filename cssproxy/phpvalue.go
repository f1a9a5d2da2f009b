package cssproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors of the value decoders. A value that fails to decode is treated as
// a miss by the proxy (mosparo's own adapter does the same: it logs and
// regenerates).
var (
	// ErrCorrupt means the bytes are not a value mosparo's cache stack writes.
	ErrCorrupt = errors.New("cssproxy: corrupt cache value")
	// ErrNotString means a well-formed value that is not a PHP string
	// (null, false, a number): for the design keys that is a miss.
	ErrNotString = errors.New("cssproxy: cache value is not a string")
	// ErrTooLarge means a value (or a length field in it) exceeds the
	// configured css_cache.max_value_bytes.
	ErrTooLarge = errors.New("cssproxy: cache value too large")
)

// igbinaryHeader is the 4-byte big-endian format version igbinary 2/3
// writes first (FACTS 5.4).
var igbinaryHeader = [4]byte{0, 0, 0, 2}

// igbinary type bytes for the only top-level values Symfony's
// DefaultMarshaller writes for a string (or that mean "no string").
const (
	igNull        = 0x00
	igStringEmpty = 0x0d
	igString8     = 0x11
	igString16    = 0x12
	igString32    = 0x13
)

// decodePHPString returns the PHP string held in v, the way Symfony's
// DefaultMarshaller::unmarshall tells the two encodings apart: byte 1 ':'
// means PHP unserialize(), anything else igbinary (FACTS 5.4). The result
// aliases v; nothing is allocated.
func decodePHPString(v []byte, maxLen int) ([]byte, error) {
	if len(v) >= 2 && v[1] == ':' {
		return decodeSerializedString(v, maxLen)
	}
	// "N;" (serialize() null) is the one serialize() value without ':' at 1.
	if string(v) == "N;" {
		return nil, ErrNotString
	}
	return decodeIgbinaryString(v, maxLen)
}

// decodeSerializedString parses exactly `s:<len>:"<len bytes>";` (PHP
// serialize() of a string). Other serialize() values that Symfony may store
// for these keys (`N;`, `b:0;`) are ErrNotString.
func decodeSerializedString(v []byte, maxLen int) ([]byte, error) {
	if len(v) < 2 || v[1] != ':' {
		return nil, fmt.Errorf("%w: serialize: no type prefix", ErrCorrupt)
	}
	if v[0] != 's' {
		switch v[0] {
		case 'b', 'i', 'd', 'a', 'O', 'C', 'E':
			return nil, ErrNotString
		}
		return nil, fmt.Errorf("%w: serialize: type %q", ErrCorrupt, v[0])
	}
	i := 2
	n := 0
	digits := 0
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		n = n*10 + int(v[i]-'0')
		digits++
		// Checked per digit so a 30-digit length cannot overflow n.
		if n > maxLen {
			return nil, fmt.Errorf("%w: serialize: length over %d", ErrTooLarge, maxLen)
		}
	}
	if digits == 0 {
		return nil, fmt.Errorf("%w: serialize: no length", ErrCorrupt)
	}
	if i+2 > len(v) || v[i] != ':' || v[i+1] != '"' {
		return nil, fmt.Errorf("%w: serialize: want :\" after length", ErrCorrupt)
	}
	start := i + 2
	if len(v)-start != n+2 {
		return nil, fmt.Errorf("%w: serialize: length %d does not match %d bytes", ErrCorrupt, n, len(v)-start-2)
	}
	end := start + n
	if v[end] != '"' || v[end+1] != ';' {
		return nil, fmt.Errorf("%w: serialize: want \"; after the string", ErrCorrupt)
	}
	return v[start:end:end], nil
}

// decodeIgbinaryString parses the igbinary encoding of one top-level PHP
// string: header 00000002, then 0d (empty), or 11/12/13 with an 8/16/32-bit
// big-endian length and the bytes. igbinary null is ErrNotString.
func decodeIgbinaryString(v []byte, maxLen int) ([]byte, error) {
	if len(v) < 5 {
		return nil, fmt.Errorf("%w: igbinary: %d bytes", ErrCorrupt, len(v))
	}
	if [4]byte(v[:4]) != igbinaryHeader {
		return nil, fmt.Errorf("%w: igbinary: header %x", ErrCorrupt, v[:4])
	}
	var n, start int
	switch v[4] {
	case igNull:
		if len(v) != 5 {
			return nil, fmt.Errorf("%w: igbinary: bytes after null", ErrCorrupt)
		}
		return nil, ErrNotString
	case igStringEmpty:
		if len(v) != 5 {
			return nil, fmt.Errorf("%w: igbinary: bytes after empty string", ErrCorrupt)
		}
		return v[5:5:5], nil
	case igString8:
		if len(v) < 6 {
			return nil, fmt.Errorf("%w: igbinary: short string8", ErrCorrupt)
		}
		n, start = int(v[5]), 6
	case igString16:
		if len(v) < 7 {
			return nil, fmt.Errorf("%w: igbinary: short string16", ErrCorrupt)
		}
		n, start = int(binary.BigEndian.Uint16(v[5:7])), 7
	case igString32:
		if len(v) < 9 {
			return nil, fmt.Errorf("%w: igbinary: short string32", ErrCorrupt)
		}
		// uint64 so a length near 4 GiB cannot wrap on 32-bit platforms.
		n64 := uint64(binary.BigEndian.Uint32(v[5:9]))
		if n64 > uint64(maxLen) {
			return nil, fmt.Errorf("%w: igbinary: length %d over %d", ErrTooLarge, n64, maxLen)
		}
		n, start = int(n64), 9
	default:
		return nil, ErrNotString
	}
	if n > maxLen {
		return nil, fmt.Errorf("%w: igbinary: length %d over %d", ErrTooLarge, n, maxLen)
	}
	if len(v)-start != n {
		return nil, fmt.Errorf("%w: igbinary: length %d does not match %d bytes", ErrCorrupt, n, len(v)-start)
	}
	return v[start:len(v):len(v)], nil
}
