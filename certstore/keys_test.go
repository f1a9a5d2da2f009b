package certstore

import (
	"errors"
	"strings"
	"testing"
)

func TestEncodeKey(t *testing.T) {
	for _, tt := range []struct {
		key, want string
	}{
		{"certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt", "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt"},
		{"acme/ca/users/ops@example.com/ops.json", "acme/ca/users/ops@example.com/ops.json"},
		{"a b/ü", "a%20b/%C3%BC"},
		{"x/./y", "x/%2E/y"},
		{"x/../y", "x/%2E%2E/y"},
		{"..a/a..", "..a/a.."},
		{"100%/?#", "100%25/%3F%23"},
		{"c:\\d", "c%3A%5Cd"},
		{"\x00\xff", "%00%FF"},
		{"wildcard_.example.com", "wildcard_.example.com"},
	} {
		got, err := encodeKey(tt.key)
		if err != nil || got != tt.want {
			t.Errorf("encodeKey(%q) = %q, %v, want %q", tt.key, got, err, tt.want)
			continue
		}
		back, err := decodeKey(got)
		if err != nil || back != tt.key {
			t.Errorf("decodeKey(%q) = %q, %v, want %q", got, back, err, tt.key)
		}
	}
}

func TestEncodeKeyInvalid(t *testing.T) {
	for _, key := range []string{"", "/", "/a", "a/", "a//b", strings.Repeat("x", maxKeyLen+1), strings.Repeat("ü", maxKeyLen/4)} {
		if got, err := encodeKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("encodeKey(%.20q…) = %q, %v, want ErrInvalidKey", key, got, err)
		}
	}
}

// Names a hostile or foreign writer could put in KV: everything that is
// not exactly what encodeKey produces is refused, so no two names decode
// to one key.
func TestDecodeKeyRefusesNonCanonical(t *testing.T) {
	for _, name := range []string{
		"", "/", "a/", "/a", "a//b",
		".", "..", "a/./b", "a/../b", // path components Consul's mux would redirect
		"%2e", "%2E%2e", // lower-case hex
		"%41",                   // a plain byte escaped
		"a%2E",                  // a dot escaped outside an all-dots component
		"%2E.",                  // an all-dots component only half escaped
		"%", "%4", "%G0", "a%2", // truncated or bad escapes
		"a b", "ü", "a?b", "a:b", "a\x00", // bytes that must be escaped
	} {
		if got, err := decodeKey(name); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("decodeKey(%q) = %q, %v, want ErrInvalidKey", name, got, err)
		}
	}
}
