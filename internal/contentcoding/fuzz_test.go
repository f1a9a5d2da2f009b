package contentcoding

import (
	"bytes"
	"testing"
)

// FuzzNegotiate: any Accept-Encoding gives an offered coding (or
// identity), never one the client refused by name.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{
		"gzip, deflate, br", "br;q=0, gzip;q=0.5", "*;q=0", "identity;q=0", "gzip;q=1.5",
		";;,,q=", "gzip;q=0.0001", " \t*\t;\tq=0.1", "x-gzip;q=0.000, br;q=1.000",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, ae []byte) {
		for _, offered := range []Set{0, SetOf(Gzip), SetOf(Brotli), SetOf(Gzip, Brotli)} {
			c := Negotiate(ae, offered)
			if c != Identity && !offered.Has(c) {
				t.Fatalf("Negotiate(%q, %b) = %s, not offered", ae, offered, c)
			}
			if c != Identity && bytes.Equal(bytes.ToLower(bytes.TrimSpace(ae)), []byte(c.String()+";q=0")) {
				t.Fatalf("Negotiate(%q) = %s, refused", ae, c)
			}
		}
	})
}

// FuzzETag: If-None-Match rewriting never panics, never grows the value,
// and a variant of a valid tag strips back to it.
func FuzzETag(f *testing.F) {
	f.Add([]byte(`"a-gz", W/"b-br", *`), []byte(`"abc"`))
	f.Add([]byte(`"unterminated-gz`), []byte(`W/"x"`))
	f.Add([]byte(`""-gz""`), []byte(`"-br"`))
	f.Fuzz(func(t *testing.T, inm, etag []byte) {
		got, _ := AppendStripped(nil, inm)
		if len(got) > len(inm) {
			t.Fatalf("AppendStripped(%q) = %q, longer", inm, got)
		}
		for _, c := range []Coding{Gzip, Brotli} {
			v, ok := AppendVariant(nil, etag, c)
			if !ok || bytes.HasPrefix(etag, []byte("W/")) {
				continue
			}
			back, found := AppendStripped(nil, v)
			if !bytes.Equal(back, etag) || !found.Has(c) {
				t.Fatalf("variant %q of %q strips to %q (%b)", v, etag, back, found)
			}
		}
	})
}
