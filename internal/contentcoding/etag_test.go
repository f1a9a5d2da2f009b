package contentcoding

import "testing"

func TestAppendVariant(t *testing.T) {
	for _, tt := range []struct {
		name, etag string
		c          Coding
		want       string
		ok         bool
	}{
		{"strong gzip", `"abc"`, Gzip, `"abc-gz"`, true},
		{"strong br", `"abc"`, Brotli, `"abc-br"`, true},
		{"strong identity", `"abc"`, Identity, `"abc"`, true},
		{"empty strong", `""`, Gzip, `"-gz"`, true},
		{"weak kept", `W/"abc"`, Brotli, `W/"abc"`, true},
		{"unquoted", `abc`, Gzip, ``, false},
		{"one quote", `"`, Gzip, ``, false},
		{"inner quote", `"a"b"`, Gzip, ``, false},
		{"space", `"a b"`, Gzip, ``, false},
		{"control", "\"a\x01\"", Gzip, ``, false},
		{"weak unquoted", `W/abc`, Gzip, ``, false},
		{"list", `"a", "b"`, Gzip, ``, false},
		{"empty", ``, Gzip, ``, false},
		{"obs-text", "\"\xe9\"", Gzip, "\"\xe9-gz\"", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := AppendVariant(nil, []byte(tt.etag), tt.c)
			if string(got) != tt.want || ok != tt.ok {
				t.Errorf("AppendVariant(%q, %s) = %q, %v; want %q, %v", tt.etag, tt.c, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAppendStripped(t *testing.T) {
	for _, tt := range []struct {
		name, inm, want string
		found           Set
	}{
		{"gzip", `"abc-gz"`, `"abc"`, SetOf(Gzip)},
		{"br", `"abc-br"`, `"abc"`, SetOf(Brotli)},
		{"identity", `"abc"`, `"abc"`, 0},
		{"list", `"a-gz", W/"b-br", "c", "d-br"`, `"a", W/"b-br", "c", "d"`, SetOf(Gzip, Brotli)},
		{"star", `*`, `*`, 0},
		{"suffix only", `"-gz"`, `""`, SetOf(Gzip)},
		{"unterminated", `"a-gz`, `"a-gz`, 0},
		{"unterminated after tag", `"a-gz", "b`, `"a", "b`, SetOf(Gzip)},
		{"weak unterminated", `W/"a-gz`, `W/"a-gz`, 0},
		{"garbage", `,,;;"`, `,,;;"`, 0},
		{"empty", ``, ``, 0},
		{"gz inside", `"a-gz-br"`, `"a-gz"`, SetOf(Brotli)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, found := AppendStripped(nil, []byte(tt.inm))
			if string(got) != tt.want || found != tt.found {
				t.Errorf("AppendStripped(%q) = %q, %b; want %q, %b", tt.inm, got, found, tt.want, tt.found)
			}
			if tt.found != 0 && !HasVariants([]byte(tt.inm)) {
				t.Errorf("HasVariants(%q) = false", tt.inm)
			}
		})
	}
}

// A variant made by AppendVariant strips back to the tag it came from.
func TestVariantRoundTrip(t *testing.T) {
	for _, etag := range []string{`"abc"`, `"5d41402abc4b2a76"`, `""`, `"x-gz"`} {
		for _, c := range []Coding{Gzip, Brotli} {
			v, ok := AppendVariant(nil, []byte(etag), c)
			if !ok {
				t.Fatalf("AppendVariant(%q) not ok", etag)
			}
			got, found := AppendStripped(nil, v)
			if string(got) != etag || found != SetOf(c) {
				t.Errorf("AppendStripped(%q) = %q, %b; want %q, %b", v, got, found, etag, SetOf(c))
			}
		}
	}
}
