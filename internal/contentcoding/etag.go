package contentcoding

import "bytes"

// AppendVariant appends to dst the validator of the c-coded form of a
// response whose identity form has the entity-tag etag, and reports
// whether etag is one. A strong tag "x" becomes "x-gz" or "x-br": a strong
// validator must differ between encodings of one resource (RFC 9110
// 8.8.3), or a cache could answer a Range request from mixed bytes. A weak
// tag W/"x" is kept, weak validators being allowed to stay the same across
// encodings (RFC 9110 8.8.1). For Identity, etag is appended as it is.
func AppendVariant(dst, etag []byte, c Coding) ([]byte, bool) {
	weak := bytes.HasPrefix(etag, weakPrefix)
	if !isOpaqueTag(bytes.TrimPrefix(etag, weakPrefix)) {
		return dst, false
	}
	if weak || c == Identity || c >= numCodings {
		return append(dst, etag...), true
	}
	dst = append(dst, etag[:len(etag)-1]...)
	dst = append(dst, suffixes[c]...)
	return append(dst, '"'), true
}

// HasVariants reports whether the If-None-Match value inm may name a
// variant AppendVariant made, cheaply, so that most requests skip
// AppendStripped.
func HasVariants(inm []byte) bool {
	return bytes.Contains(inm, suffixQuoteGz) || bytes.Contains(inm, suffixQuoteBr)
}

// AppendStripped appends to dst the If-None-Match value inm with every
// strong variant tag turned back into the tag it was made from ("x-gz" to
// "x"), so the node that made "x" can match it, and returns the codings
// whose variants it found. Everything else is copied as it is, including
// bytes that do not parse (the node judges those).
func AppendStripped(dst, inm []byte) ([]byte, Set) {
	var found Set
	for len(inm) > 0 {
		i := bytes.IndexByte(inm, '"')
		if i < 0 || (i >= 2 && inm[i-2] == 'W' && inm[i-1] == '/') {
			// No tag left, or a weak one: copy through its closing quote.
			if i < 0 {
				return append(dst, inm...), found
			}
			end := bytes.IndexByte(inm[i+1:], '"')
			if end < 0 {
				return append(dst, inm...), found
			}
			dst = append(dst, inm[:i+end+2]...)
			inm = inm[i+end+2:]
			continue
		}
		end := bytes.IndexByte(inm[i+1:], '"')
		if end < 0 {
			return append(dst, inm...), found
		}
		tag := inm[i : i+end+2]
		dst = append(dst, inm[:i]...)
		inm = inm[i+end+2:]
		c := variantOf(tag)
		if c == Identity {
			dst = append(dst, tag...)
			continue
		}
		found |= SetOf(c)
		dst = append(dst, tag[:len(tag)-1-len(suffixes[c])]...)
		dst = append(dst, '"')
	}
	return dst, found
}

// variantOf returns the coding whose suffix the quoted tag carries, or
// Identity.
func variantOf(tag []byte) Coding {
	body := tag[1 : len(tag)-1]
	for _, c := range [...]Coding{Gzip, Brotli} {
		if len(body) >= len(suffixes[c]) && bytes.HasSuffix(body, suffixes[c]) {
			return c
		}
	}
	return Identity
}

var (
	weakPrefix    = []byte("W/")
	suffixQuoteGz = []byte(`-gz"`)
	suffixQuoteBr = []byte(`-br"`)
)

// isOpaqueTag reports whether b is DQUOTE *etagc DQUOTE (RFC 9110 8.8.3).
func isOpaqueTag(b []byte) bool {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return false
	}
	for _, c := range b[1 : len(b)-1] {
		if c < 0x21 || c == '"' || c == 0x7f {
			return false
		}
	}
	return true
}
