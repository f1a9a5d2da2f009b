package certstore

import (
	"testing"
)

// FuzzKeyMapping: every key that maps comes back unchanged and maps to a
// name of safe bytes without "." or ".." components; every name that
// decodes is the one canonical name of its key.
func FuzzKeyMapping(f *testing.F) {
	for _, s := range []string{
		"certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt",
		"a b/ü", "x/../y", "%2E%2E", "100%25", "a//b", "/", "", "%", "%2e", "..a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if name, err := encodeKey(s); err == nil {
			for i := 0; i < len(name); i++ {
				if c := name[i]; !plain(c) && c != '%' && c != '/' {
					t.Fatalf("encodeKey(%q) = %q holds byte %q", s, name, c)
				}
			}
			for _, comp := range splitSlash(name) {
				if comp == "" || comp == "." || comp == ".." {
					t.Fatalf("encodeKey(%q) = %q has component %q", s, name, comp)
				}
			}
			back, err := decodeKey(name)
			if err != nil || back != s {
				t.Fatalf("decodeKey(encodeKey(%q) = %q) = %q, %v", s, name, back, err)
			}
		}
		if key, err := decodeKey(s); err == nil {
			name, err := encodeKey(key)
			if err != nil || name != s {
				t.Fatalf("encodeKey(decodeKey(%q) = %q) = %q, %v", s, key, name, err)
			}
		}
	})
}

func splitSlash(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
