package mosparoemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// phpValue is a value as PHP holds it after json_decode($s, true) or parse_str: scalars, or an
// ordered array whose keys are strings or canonical integers. Keys are kept as strings: PHP turns
// a canonical decimal key ("5", "-1", not "05") into an integer, which prints back the same, so
// only list detection needs to know about it.
type phpValue struct {
	kind phpKind
	b    bool
	s    string // string value, or the canonical literal of an int or float
	keys []string
	vals []phpValue
}

type phpKind uint8

const (
	phpNull phpKind = iota + 1
	phpBool
	phpInt
	phpFloat
	phpString
	phpArray
)

// get returns the value stored under key in an array.
func (v *phpValue) get(key string) (*phpValue, bool) {
	if v == nil || v.kind != phpArray {
		return nil, false
	}
	for i, k := range v.keys {
		if k == key {
			return &v.vals[i], true
		}
	}
	return nil, false
}

// set assigns key in place (PHP keeps the first position of a key and the last value).
func (v *phpValue) set(key string, val phpValue) {
	for i, k := range v.keys {
		if k == key {
			v.vals[i] = val
			return
		}
	}
	v.keys = append(v.keys, key)
	v.vals = append(v.vals, val)
}

// push appends with the next integer key, like $a[] = $val.
func (v *phpValue) push(val phpValue) {
	next := int64(0)
	for _, k := range v.keys {
		if i, ok := phpIntKey(k); ok && i >= next {
			next = i + 1
		}
	}
	v.set(strconv.FormatInt(next, 10), val)
}

// str returns the string form of a scalar the way PHP's (string) cast does for the cases the
// APIs use; arrays give "".
func (v *phpValue) str() string {
	switch v.kind {
	case phpString, phpInt, phpFloat:
		return v.s
	case phpBool:
		if v.b {
			return "1"
		}
	}
	return ""
}

func phpStr(s string) phpValue { return phpValue{kind: phpString, s: s} }

func phpArr() phpValue { return phpValue{kind: phpArray} }

// phpIntKey reports whether PHP would store the array key k as an integer.
func phpIntKey(k string) (int64, bool) {
	if k == "" || len(k) > 20 {
		return 0, false
	}
	d := k
	if d[0] == '-' {
		d = d[1:]
	}
	if d == "" || (d[0] == '0' && len(d) > 1) || k == "-0" {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.ParseInt(k, 10, 64)
	return i, err == nil
}

// isList mirrors zend_array_is_list: keys 0..n-1 in order.
func (v *phpValue) isList() bool {
	for i, k := range v.keys {
		if k != strconv.Itoa(i) {
			return false
		}
	}
	return true
}

var errNotJSONArray = errors.New("mosparoemu: body is not a json object or array")

// phpJSONDecode mirrors json_decode($body, true) for the bodies that symfony-bundles/
// json-request-bundle turns into request parameters (FACTS 2.2): only objects and arrays count,
// invalid UTF-8 fails like PHP does.
func phpJSONDecode(body []byte) (phpValue, error) {
	if !utf8.Valid(body) {
		return phpValue{}, errors.New("mosparoemu: invalid utf-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := decodePHP(dec, 0)
	if err != nil {
		return phpValue{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return phpValue{}, errors.New("mosparoemu: trailing data after json value")
	}
	if v.kind != phpArray {
		return phpValue{}, errNotJSONArray
	}
	return v, nil
}

// maxJSONDepth is PHP's default json_decode depth.
const maxJSONDepth = 512

func decodePHP(dec *json.Decoder, depth int) (phpValue, error) {
	if depth > maxJSONDepth {
		return phpValue{}, errors.New("mosparoemu: json too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return phpValue{}, err
	}
	switch t := tok.(type) {
	case nil:
		return phpValue{kind: phpNull}, nil
	case bool:
		return phpValue{kind: phpBool, b: t}, nil
	case string:
		return phpStr(t), nil
	case json.Number:
		return phpNumber(string(t)), nil
	case json.Delim:
		arr := phpArr()
		switch t {
		case '[':
			for i := 0; dec.More(); i++ {
				val, err := decodePHP(dec, depth+1)
				if err != nil {
					return phpValue{}, err
				}
				arr.keys = append(arr.keys, strconv.Itoa(i))
				arr.vals = append(arr.vals, val)
			}
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return phpValue{}, err
				}
				key, _ := kt.(string)
				val, err := decodePHP(dec, depth+1)
				if err != nil {
					return phpValue{}, err
				}
				arr.set(key, val)
			}
		}
		if _, err := dec.Token(); err != nil { // closing delimiter
			return phpValue{}, err
		}
		return arr, nil
	}
	return phpValue{}, errors.New("mosparoemu: unexpected json token")
}

// phpNumber converts a JSON number literal the way json_decode does: integers that fit in int64
// stay integers, everything else becomes a float.
func phpNumber(lit string) phpValue {
	if !strings.ContainsAny(lit, ".eE") {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return phpValue{kind: phpInt, s: strconv.FormatInt(i, 10)}
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !math.IsInf(f, 0) {
		return phpValue{kind: phpInt, s: "0"}
	}
	return phpValue{kind: phpFloat, s: phpFloatString(f)}
}

// phpFloatString approximates json_encode of a float with serialize_precision -1: shortest
// round-trip digits, ".0" added to integral values, exponent form from 1e15 on or below 1e-4.
// Floats never occur in the payloads the official clients sign; this only keeps odd bodies
// deterministic.
func phpFloatString(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "0" // json_encode fails on these; PHP's partial output is 0
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	abs := math.Abs(f)
	if abs >= 1e15 || abs < 1e-4 {
		s := strconv.FormatFloat(f, 'e', -1, 64) // 1e+15, 1.5e-05
		mant, exp, _ := strings.Cut(s, "e")
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		sign := exp[0]
		exp = strings.TrimLeft(exp[1:], "0")
		return mant + "e" + string(sign) + exp
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// appendPHPJSON appends json_encode($v) with PHP's default flags: no spaces, "/" escaped as
// "\/", non-ASCII as lower-case \uXXXX UTF-16 escapes, lists as [...] and every other array as
// an object in key order (FACTS 8.1). It reports false where json_encode returns false (invalid
// UTF-8).
func appendPHPJSON(dst []byte, v *phpValue) ([]byte, bool) {
	switch v.kind {
	case phpNull:
		return append(dst, "null"...), true
	case phpBool:
		if v.b {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	case phpInt, phpFloat:
		return append(dst, v.s...), true
	case phpString:
		return appendPHPString(dst, v.s)
	case phpArray:
		ok := true
		if v.isList() {
			dst = append(dst, '[')
			for i := range v.vals {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst, ok = appendPHPJSON(dst, &v.vals[i])
				if !ok {
					return dst, false
				}
			}
			return append(dst, ']'), true
		}
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, ok = appendPHPString(dst, k); !ok {
				return dst, false
			}
			dst = append(dst, ':')
			if dst, ok = appendPHPJSON(dst, &v.vals[i]); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	}
	return append(dst, "null"...), true
}

const lowerHex = "0123456789abcdef"

func appendPHPString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '/':
				dst = append(dst, '\\', '/')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				if c < 0x20 {
					dst = appendU16(dst, uint16(c))
				} else {
					dst = append(dst, c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return dst, false
		}
		if r > 0xffff {
			r -= 0x10000
			dst = appendU16(dst, uint16(0xd800+(r>>10)))
			dst = appendU16(dst, uint16(0xdc00+(r&0x3ff)))
		} else {
			dst = appendU16(dst, uint16(r))
		}
		i += size
	}
	return append(dst, '"'), true
}

func appendU16(dst []byte, u uint16) []byte {
	return append(dst, '\\', 'u', lowerHex[u>>12], lowerHex[(u>>8)&0xf], lowerHex[(u>>4)&0xf], lowerHex[u&0xf])
}

// phpToJSON is mosparo's RequestHelper::toJson: json_encode, then every "[]" replaced by "{}"
// textually (FACTS 8.1). A failed json_encode yields "" as str_replace(false) does.
func phpToJSON(dst []byte, v *phpValue) []byte {
	start := len(dst)
	out, ok := appendPHPJSON(dst, v)
	if !ok {
		return out[:start]
	}
	enc := out[start:]
	for i := 0; i+1 < len(enc); i++ {
		if enc[i] == '[' && enc[i+1] == ']' {
			enc[i], enc[i+1] = '{', '}'
			i++
		}
	}
	return out
}

// phpParseStrSet stores one decoded name=value pair the way parse_str / $_POST do: "." and " "
// in the top-level name become "_", "a[b][]" builds nested arrays (FACTS 8.1: requestData is
// built from these).
func phpParseStrSet(arr *phpValue, name, value string) {
	base, rest, nested := strings.Cut(name, "[")
	if !nested || !strings.Contains(rest, "]") {
		nested = false
		base = name
	}
	base = strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' {
			return '_'
		}
		return r
	}, base)
	if base == "" {
		return
	}
	if !nested {
		arr.set(base, phpStr(value))
		return
	}
	var segs []string
	rest = "[" + rest
	for strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			break
		}
		segs = append(segs, rest[1:end])
		rest = rest[end+1:]
	}
	setNested(arr, base, segs, value)
}

func setNested(arr *phpValue, key string, segs []string, value string) {
	if len(segs) == 0 {
		arr.set(key, phpStr(value))
		return
	}
	child, ok := arr.get(key)
	if !ok || child.kind != phpArray {
		arr.set(key, phpArr())
		child, _ = arr.get(key)
	}
	if segs[0] == "" {
		if len(segs) == 1 {
			child.push(phpStr(value))
			return
		}
		child.push(phpArr())
		last := child.keys[len(child.keys)-1]
		setNested(child, last, segs[1:], value)
		return
	}
	setNested(child, segs[0], segs[1:], value)
}

// phpArrayMerge mirrors array_merge($a, $b): string keys overwrite in place, integer keys are
// renumbered and appended.
func phpArrayMerge(a, b *phpValue) phpValue {
	out := phpArr()
	for _, src := range []*phpValue{a, b} {
		if src == nil || src.kind != phpArray {
			continue
		}
		for i, k := range src.keys {
			if _, ok := phpIntKey(k); ok {
				out.push(src.vals[i])
				continue
			}
			out.set(k, src.vals[i])
		}
	}
	return out
}

// phpIntCast mirrors PHP's (int) cast of a numeric-leading string: "86400" -> 86400,
// "12abc" -> 12, "abc" -> 0.
func phpIntCast(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	digits := end
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == digits {
		return 0
	}
	i, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		if s[0] == '-' {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return i
}
