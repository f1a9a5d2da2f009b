package balancer

import "bytes"

// Absolute URLs the edge builds must equal the ones a node builds for the
// same request (FACTS 11.7): Symfony's Request::getScheme, getHttpHost and
// getBaseUrl over the headers of a trusted proxy.

var (
	strOn  = []byte("on")
	strSSL = []byte("ssl")
	strOne = []byte("1")
)

// symfonyScheme is the scheme Symfony derives from a trusted
// X-Forwarded-Proto: its first value, trimmed, is https when it is one of
// https, on, ssl, 1 (any case), and http otherwise.
func symfonyScheme(v []byte) []byte {
	v = firstValue(v)
	if bytes.EqualFold(v, strHTTPS) || bytes.EqualFold(v, strOn) || bytes.EqualFold(v, strSSL) || bytes.Equal(v, strOne) {
		return strHTTPS
	}
	return strHTTP
}

// symfonyPrefix is the base path Symfony takes from a trusted
// X-Forwarded-Prefix: the first value, trimmed, without trailing slashes.
func symfonyPrefix(v []byte) []byte {
	return bytes.TrimRight(firstValue(v), "/")
}

// firstValue is the first comma-separated value of a header, trimmed.
func firstValue(v []byte) []byte {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return bytes.TrimSpace(v)
}

// appendHTTPHost appends host as Symfony's getHttpHost gives it: lower
// case, without the scheme's default port.
func appendHTTPHost(dst, host, scheme []byte) []byte {
	name, port := host, []byte(nil)
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		name, port = host[:i], host[i+1:]
	}
	if (string(port) == "443" && string(scheme) == "https") || (string(port) == "80" && string(scheme) == "http") || len(port) == 0 {
		port = nil
	}
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	if port != nil {
		dst = append(dst, ':')
		dst = append(dst, port...)
	}
	return dst
}
