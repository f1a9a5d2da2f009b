package contentcoding

// Coding is a content coding mosparo-lb can produce. The zero value is
// Identity (no coding).
type Coding uint8

// The codings, in the order of preference on a tie of q-values: brotli
// first, its output being the smaller for text.
const (
	Identity Coding = iota
	Gzip
	Brotli
	numCodings
)

var (
	tokens   = [numCodings][]byte{nil, []byte("gzip"), []byte("br")}
	suffixes = [numCodings][]byte{nil, []byte("-gz"), []byte("-br")}
)

// String is the coding's Accept-Encoding token ("identity" for Identity).
func (c Coding) String() string {
	if c == Identity || c >= numCodings {
		return "identity"
	}
	return string(tokens[c])
}

// Token is the coding's Content-Encoding value, nil for Identity. The
// slice is shared: callers must not change it.
func (c Coding) Token() []byte {
	if c >= numCodings {
		return nil
	}
	return tokens[c]
}

// Set is a set of codings, such as those a response is offered in.
type Set uint8

// SetOf returns the set holding cs.
func SetOf(cs ...Coding) Set {
	var s Set
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s Set) Has(c Coding) bool { return s&(1<<c) != 0 }
