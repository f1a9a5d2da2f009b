package cssproxy

import "fmt"

// uuidLen is the length of mosparo's canonical project UUID (FACTS 5.2:
// lowercase, with dashes).
const uuidLen = 36

// projectID is a project UUID as a fixed-size value: a map key and channel
// element that costs no allocation.
type projectID [uuidLen]byte

// The two keys mosparo's DesignHelper writes per project (FACTS 5.2).
const (
	keyPrefix     = "design_"
	contentSuffix = "_content"
	hashSuffix    = "_hash"
)

// parseProjectID accepts exactly the canonical form mosparo stores keys
// under: 8-4-4-4-12 lowercase hex digits. Anything else (upper case, no
// dashes) would miss in the shared cache anyway, and mosparo may still find
// the project by another spelling, so it goes to a node.
func parseProjectID(b []byte) (projectID, bool) {
	var id projectID
	if len(b) != uuidLen {
		return id, false
	}
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return id, false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return id, false
			}
		}
	}
	copy(id[:], b)
	return id, true
}

// contentKey and hashKey are the PSR-6 keys; Redis stores them as they are.
func (id projectID) contentKey() string { return keyPrefix + string(id[:]) + contentSuffix }
func (id projectID) hashKey() string    { return keyPrefix + string(id[:]) + hashSuffix }

// projectIDFromKey maps a Redis key named in an invalidation message back
// to its project; ok is false for keys that are not design keys.
func projectIDFromKey(key string) (projectID, bool) {
	var rest string
	switch {
	case len(key) == len(keyPrefix)+uuidLen+len(contentSuffix) && key[len(key)-len(contentSuffix):] == contentSuffix:
		rest = key[len(keyPrefix) : len(keyPrefix)+uuidLen]
	case len(key) == len(keyPrefix)+uuidLen+len(hashSuffix) && key[len(key)-len(hashSuffix):] == hashSuffix:
		rest = key[len(keyPrefix) : len(keyPrefix)+uuidLen]
	default:
		return projectID{}, false
	}
	if key[:len(keyPrefix)] != keyPrefix {
		return projectID{}, false
	}
	return parseProjectID([]byte(rest))
}

// memcachedNamespaceKey is where Symfony's MemcachedAdapter keeps the
// namespace version ("NS_SEPARATOR" plus the empty namespace; FACTS 5.4).
// We only ever read it.
const memcachedNamespaceKey = ":"

// memcachedKeyFrom and memcachedKeyTo mirror MemcachedAdapter's
// strtr($id, " \n\r\t\v\f\0", "@()\{}/"): seven characters memcached's
// text protocol cannot carry map to seven that it can.
const (
	memcachedKeyFrom = " \n\r\t\v\f\x00"
	memcachedKeyTo   = "@()\\{}/"
)

// memcachedKey builds the stored key <prefix><nsVersion><key> with Symfony's
// character mapping applied to the whole id. Keys over memcached's 250-byte
// limit are hashed by Symfony; mosparo's design keys (at most 56 bytes plus
// the version) never are, so a longer one is refused rather than guessed.
func memcachedKey(prefix string, nsVersion []byte, key string) (string, error) {
	b := make([]byte, 0, len(prefix)+len(nsVersion)+len(key))
	b = append(b, nsVersion...)
	b = append(b, key...)
	for i, c := range b {
		for j := 0; j < len(memcachedKeyFrom); j++ {
			if c == memcachedKeyFrom[j] {
				b[i] = memcachedKeyTo[j]
				break
			}
		}
	}
	for _, c := range b {
		// What the text protocol still cannot carry can only come from a
		// corrupt namespace version; refuse it as such, not as an I/O error.
		if c <= ' ' || c == 0x7f {
			return "", fmt.Errorf("%w: namespace version has byte %#x", ErrCorrupt, c)
		}
	}
	// php-memcached prepends OPT_PREFIX_KEY after Symfony's mapping; the
	// limit counts it (MemcachedAdapter's maxIdLength).
	if len(prefix)+len(b) > 250 {
		return "", fmt.Errorf("%w: namespace version makes key %d bytes long", ErrCorrupt, len(prefix)+len(b))
	}
	return prefix + string(b), nil
}
