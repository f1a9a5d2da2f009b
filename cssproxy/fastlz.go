package cssproxy

import "fmt"

// FastLZ block format as php-memcached's bundled fastlz writes it
// (FACTS 5.4). The top three bits of the first byte carry the level minus
// one; after that the stream is a sequence of instructions, each starting
// with a control byte c:
//
//	c < 32:   literal run, copy c+1 bytes from the input
//	c >= 32:  match, length (c>>5)+2, distance ((c&31)<<8)+d+1 from the
//	          output end, d the next byte; a length code of 7 takes more
//	          length from following bytes (level 1: one byte; level 2: bytes
//	          added while they are 255), and level 2 escapes a 16-bit
//	          distance (plus 8191) with d == 255 and c&31 == 31.
//
// Matches may overlap their own output (a run). The decoder below never
// reads outside src and never writes past len(dst): every bound is checked
// because these bytes come from a shared cache anyone on the network may
// have written.
const (
	fastlzLevel1 = 0
	fastlzLevel2 = 1
	// fastlzMaxL2Distance is the level-2 near distance limit; far matches
	// add it to their explicit 16-bit distance.
	fastlzMaxL2Distance = 8191
)

// fastlzDecompress decodes src into dst and returns the number of bytes
// written, which must equal len(dst) for the caller to trust the value
// (php-memcached stores the exact original length in front).
func fastlzDecompress(dst, src []byte) (int, error) {
	if len(src) == 0 {
		return 0, fmt.Errorf("%w: fastlz: empty input", ErrCorrupt)
	}
	level := src[0] >> 5
	if level != fastlzLevel1 && level != fastlzLevel2 {
		return 0, fmt.Errorf("%w: fastlz: level %d", ErrCorrupt, level+1)
	}
	ip, op := 1, 0
	ctrl := int(src[0] & 31)
	for {
		if ctrl < 32 {
			run := ctrl + 1
			if run > len(src)-ip {
				return op, fmt.Errorf("%w: fastlz: literal run past input end", ErrCorrupt)
			}
			if run > len(dst)-op {
				return op, fmt.Errorf("%w: fastlz: literal run past output end", ErrCorrupt)
			}
			copy(dst[op:], src[ip:ip+run])
			ip += run
			op += run
		} else {
			length := ctrl>>5 - 1
			dist := (ctrl & 31) << 8
			if length == 6 {
				if level == fastlzLevel1 {
					if ip >= len(src) {
						return op, fmt.Errorf("%w: fastlz: truncated match length", ErrCorrupt)
					}
					length += int(src[ip])
					ip++
				} else {
					for {
						if ip >= len(src) {
							return op, fmt.Errorf("%w: fastlz: truncated match length", ErrCorrupt)
						}
						code := int(src[ip])
						ip++
						length += code
						// Bounded by the input length; stop early when it
						// can no longer fit the output anyway.
						if length > len(dst) {
							return op, fmt.Errorf("%w: fastlz: match past output end", ErrCorrupt)
						}
						if code != 255 {
							break
						}
					}
				}
			}
			if ip >= len(src) {
				return op, fmt.Errorf("%w: fastlz: truncated match distance", ErrCorrupt)
			}
			code := int(src[ip])
			ip++
			dist += code + 1
			if level == fastlzLevel2 && code == 255 && ctrl&31 == 31 {
				if len(src)-ip < 2 {
					return op, fmt.Errorf("%w: fastlz: truncated far distance", ErrCorrupt)
				}
				dist = (int(src[ip])<<8 | int(src[ip+1])) + fastlzMaxL2Distance + 1
				ip += 2
			}
			length += 3
			if dist > op {
				return op, fmt.Errorf("%w: fastlz: match distance %d before output start", ErrCorrupt, dist)
			}
			if length > len(dst)-op {
				return op, fmt.Errorf("%w: fastlz: match past output end", ErrCorrupt)
			}
			ref := op - dist
			if dist >= length {
				copy(dst[op:op+length], dst[ref:ref+length])
			} else {
				// Overlapping: byte by byte, so the run repeats itself.
				for i := 0; i < length; i++ {
					dst[op+i] = dst[ref+i]
				}
			}
			op += length
		}
		if ip >= len(src) {
			return op, nil
		}
		ctrl = int(src[ip])
		ip++
	}
}
