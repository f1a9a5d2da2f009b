package contentcoding

import "bytes"

// maxQ is q=1 in thousandths, the precision RFC 9110 12.4.2 allows.
const maxQ = 1000

// Negotiate picks the coding of offered to answer a request with, from its
// Accept-Encoding value ae (RFC 9110 12.5.3). An empty ae means identity.
// A coding gets its own q-value, or that of "*" when not listed; q=0 (or
// not listed without "*") refuses it; the highest q wins, brotli before
// gzip on a tie. Identity, always acceptable as the fallback, wins only
// when listed with a higher q than every offered coding: a client that
// refuses identity too (identity;q=0) still gets it, as nothing else
// would be understood. Elements that do not parse are ignored; a coding
// listed twice gets its lower q, so a refusal is never overridden. It
// scans ae in place and allocates nothing; ae is any bytes.
func Negotiate(ae []byte, offered Set) Coding {
	if len(ae) == 0 || offered&^SetOf(Identity) == 0 {
		return Identity
	}
	var q [numCodings]int // -1: not listed
	for i := range q {
		q[i] = -1
	}
	star := -1
	for len(ae) > 0 {
		var item []byte
		if i := bytes.IndexByte(ae, ','); i >= 0 {
			item, ae = ae[:i], ae[i+1:]
		} else {
			item, ae = ae, nil
		}
		name, params := item, []byte(nil)
		if i := bytes.IndexByte(item, ';'); i >= 0 {
			name, params = item[:i], item[i+1:]
		}
		name = bytes.Trim(name, " \t")
		if len(name) == 0 {
			continue
		}
		v, ok := quality(params)
		if !ok {
			continue
		}
		switch {
		case len(name) == 1 && name[0] == '*':
			star = lower(star, v)
		case bytes.EqualFold(name, tokens[Gzip]), bytes.EqualFold(name, xGzip):
			q[Gzip] = lower(q[Gzip], v)
		case bytes.EqualFold(name, tokens[Brotli]):
			q[Brotli] = lower(q[Brotli], v)
		case bytes.EqualFold(name, identity):
			q[Identity] = lower(q[Identity], v)
		}
	}
	best, bestQ := Identity, 0
	for _, c := range [...]Coding{Brotli, Gzip} {
		if !offered.Has(c) {
			continue
		}
		v := q[c]
		if v < 0 {
			v = star
		}
		if v > bestQ {
			best, bestQ = c, v
		}
	}
	if best != Identity && q[Identity] > bestQ {
		return Identity
	}
	return best
}

var (
	xGzip    = []byte("x-gzip") // RFC 9110 8.4.1.3: equivalent to gzip
	identity = []byte("identity")
)

func lower(old, v int) int {
	if old < 0 || v < old {
		return v
	}
	return old
}

// quality reads the q parameter of one element's parameters (the bytes
// after its first ';'), in thousandths; maxQ when absent. Other parameters
// are skipped. ok is false when the q-value does not parse as RFC 9110
// 12.4.2 writes it.
func quality(params []byte) (q int, ok bool) {
	q = maxQ
	for len(params) > 0 {
		var p []byte
		if i := bytes.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, nil
		}
		p = bytes.Trim(p, " \t")
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') {
			continue
		}
		v := bytes.TrimLeft(p[1:], " \t")
		if len(v) == 0 || v[0] != '=' {
			continue
		}
		if q, ok = parseQ(bytes.TrimLeft(v[1:], " \t")); !ok {
			return 0, false
		}
	}
	return q, true
}

// parseQ parses a qvalue: "0" or "1", optionally followed by "." and up to
// three digits (all zeros after a 1).
func parseQ(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
		return 0, false
	}
	n := int(v[0]-'0') * maxQ
	if len(v) == 1 {
		return n, true
	}
	if v[1] != '.' {
		return 0, false
	}
	scale := 100
	for _, c := range v[2:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n += int(c-'0') * scale
		scale /= 10
	}
	if n > maxQ {
		return 0, false
	}
	return n, true
}
