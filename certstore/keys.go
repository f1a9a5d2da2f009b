package certstore

import (
	"errors"
	"strings"
)

// ErrInvalidKey is the error of a storage key or lock name that cannot be
// mapped to a Consul key: empty, with an empty component (leading,
// trailing or doubled '/') or too long.
var ErrInvalidKey = errors.New("certstore: invalid key")

// maxKeyLen bounds a mapped key (without the prefix). Consul sets no limit
// of its own below the HTTP request line; certmagic's keys are far shorter.
const maxKeyLen = 2048

// Consul names travel in the URL path of the HTTP API, where Go's (and so
// Consul's) ServeMux redirects paths holding "//", "." or ".." components,
// and come back in JSON answers, where invalid UTF-8 is replaced. So each
// '/'-separated component of a certmagic key is escaped on its own: bytes
// outside [A-Za-z0-9_.@-] become %XX (upper-case hex), and a component made
// only of dots has its dots escaped. The mapping is a bijection between
// valid keys and canonical names: decodeKey accepts only what encodeKey
// produces, so a name in a hostile answer cannot alias another key.

// encodeKey maps a certmagic key to its Consul name below the prefix.
func encodeKey(key string) (string, error) {
	if key == "" {
		return "", ErrInvalidKey
	}
	var b strings.Builder
	b.Grow(len(key))
	start := 0
	for i := 0; i <= len(key); i++ {
		if i < len(key) && key[i] != '/' {
			continue
		}
		comp := key[start:i]
		if comp == "" {
			return "", ErrInvalidKey
		}
		if start > 0 {
			b.WriteByte('/')
		}
		escapeComponent(&b, comp)
		start = i + 1
	}
	if b.Len() > maxKeyLen {
		return "", ErrInvalidKey
	}
	return b.String(), nil
}

const hexDigits = "0123456789ABCDEF"

func escapeComponent(b *strings.Builder, comp string) {
	dots := onlyDots(comp)
	for i := 0; i < len(comp); i++ {
		c := comp[i]
		if plain(c) && !(dots && c == '.') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}

// decodeKey maps a Consul name below the prefix back to its key; names
// encodeKey does not produce are refused.
func decodeKey(name string) (string, error) {
	if name == "" || len(name) > maxKeyLen {
		return "", ErrInvalidKey
	}
	out := make([]byte, 0, len(name))
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		comp := name[start:i]
		if comp == "" {
			return "", ErrInvalidKey
		}
		if start > 0 {
			out = append(out, '/')
		}
		var err error
		if out, err = unescapeComponent(out, comp); err != nil {
			return "", err
		}
		start = i + 1
	}
	return string(out), nil
}

// unescapeComponent appends the decoded comp to out, refusing anything but
// the canonical escaping.
func unescapeComponent(out []byte, comp string) ([]byte, error) {
	begin := len(out)
	for i := 0; i < len(comp); i++ {
		c := comp[i]
		if c != '%' {
			if !plain(c) {
				return nil, ErrInvalidKey
			}
			out = append(out, c)
			continue
		}
		if i+2 >= len(comp) {
			return nil, ErrInvalidKey
		}
		hi, lo := unhex(comp[i+1]), unhex(comp[i+2])
		if hi < 0 || lo < 0 {
			return nil, ErrInvalidKey
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	dec := out[begin:]
	dots := onlyDots(string(dec))
	// Canonical: a plain byte escaped, or a dot left plain in an all-dots
	// component, would be a second name for the same key.
	j := 0
	for i := 0; i < len(comp); i++ {
		c := dec[j]
		j++
		escaped := comp[i] == '%'
		if escaped {
			i += 2
		}
		if escaped != (!plain(c) || dots && c == '.') {
			return nil, ErrInvalidKey
		}
	}
	return out, nil
}

// plain reports whether c stands for itself in a Consul name.
func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '@'
}

func onlyDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '.' {
			return false
		}
	}
	return s != ""
}

// unhex is the value of an upper-case hex digit, else -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
