package mosparoemu

import (
	"bytes"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzPHPJSON: decoding never panics, and what toJson produces decodes to the same encoding
// (round trip), except where the textual "[]" -> "{}" replacement changed string contents.
func FuzzPHPJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `{"a":"a/b","b":[1,2.5,true,null]}`, `{"0":"x","1":"y"}`, `{"a":1,"a":2}`,
		`{"n":"Jürgen 𝄞"}`, `{"i":123456789012345678901234}`, `[[[[]]]]`, `{"s":"[]"}`, `-0`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := phpJSONDecode(in)
		if err != nil {
			return
		}
		enc, ok := appendPHPJSON(nil, &v)
		if !ok {
			t.Fatalf("appendPHPJSON failed on decoded valid input %q", in)
		}
		v2, err := phpJSONDecode(enc)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		enc2, _ := appendPHPJSON(nil, &v2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip: %q -> %q", enc, enc2)
		}
		_ = phpToJSON(nil, &v)
	})
}

// FuzzParseStr: parse_str emulation never panics on hostile names.
func FuzzParseStr(f *testing.F) {
	for _, s := range []string{"a", "a[]", "a[b][c]", "a[", "[]", "a]b[", "a.b c[x", "a[][][]"} {
		f.Add(s, "v")
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		arr := phpArr()
		phpParseStrSet(&arr, name, value)
		phpParseStrSet(&arr, name, value)
		_ = phpToJSON(nil, &arr)
	})
}

// FuzzForwardedFor: client-IP resolution never panics and yields either REMOTE_ADDR or text
// taken from the header.
func FuzzForwardedFor(f *testing.F) {
	// "[" alone once sliced [1:0] (bracket without "]").
	for _, s := range []string{"127.0.0.1", "1.2.3.4:5, [::1]:8", "[", "[]", ",,,", "::ffff:1.2.3.4", "fe80::1%eth0", " .:", "[::1"} {
		f.Add(s)
	}
	tp := parseTrustedProxies([]string{"127.0.0.1", "REMOTE_ADDR", "10.0.0.0/8"})
	f.Fuzz(func(t *testing.T, xff string) {
		var req fasthttp.Request
		req.Header.Set("X-Forwarded-For", xff)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
		var buf [64]byte
		got := tp.resolveClientIP(&ctx, buf[:])
		if !got.client.IsValid() {
			t.Fatalf("XFF %q: invalid client", xff)
		}
		if string(got.clientText) != "127.0.0.1" && !bytes.Contains(req.Header.Peek("X-Forwarded-For"), got.clientText) {
			t.Fatalf("XFF %q: client %q not from the header", xff, got.clientText)
		}
	})
}

// FuzzFormFields: the check-form-data formData parser never panics.
func FuzzFormFields(f *testing.F) {
	for _, s := range []string{`{"fields":[{"name":"a","value":"b"}]}`, `[{"name":"a[]","value":1}]`, `{"a":"b"}`, `{"fields":null}`, `x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = parseFormFields(in)
	})
}

// FuzzHostHeader: Location building never panics on odd Host / forwarded headers.
func FuzzHostHeader(f *testing.F) {
	for _, s := range []string{"a.example:8080", "[::1]:80", "[", ":", "[::1", "A.B"} {
		f.Add(s, "https", "/p/")
	}
	n, err := newNode(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, proto, prefix string) {
		var req fasthttp.Request
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Proto", proto)
		req.Header.Set("X-Forwarded-Prefix", prefix)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
		_ = n.absoluteURL(&ctx, nil, []byte("/x.css"))
	})
}
