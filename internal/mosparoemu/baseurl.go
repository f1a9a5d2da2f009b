package mosparoemu

import (
	"bytes"
	"strings"
)

// Front controllers as the web server names them in SCRIPT_NAME.
const (
	// ScriptNginx is the Docker image's nginx (document root public/): /index.php/<route> reaches
	// PHP, the other spellings do not (FACTS 11.1).
	ScriptNginx = "/index.php"
	// ScriptApacheRoot is Apache with mosparo's repository-root .htaccess, which rewrites every
	// request to public/index.php.
	ScriptApacheRoot = "/public/index.php"
)

var scriptBase = []byte("index.php")

// PathInfo is the path Symfony's router matches for a raw request URI (path and query, not
// decoded) when the front controller is script: Request::prepareBaseUrl and preparePathInfo of
// symfony/http-foundation 6.4 for SCRIPT_NAME == script, then the router's rawurldecode. It is
// the oracle for what reaches a mosparo controller, quirks included: with ScriptApacheRoot,
// "/x/public/index.php/<route>" and any path with "index.php" after its start reach <route> or
// a cut of it. It allocates only for such paths.
func PathInfo(requestURI []byte, script string) []byte {
	path := requestURI
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if len(path) == 0 || path[0] != '/' {
		path = append([]byte{'/'}, path...)
	}
	base := baseURL(requestURI, path, script)
	if len(base) == 0 {
		return rawURLDecode(path)
	}
	if len(base) >= len(path) {
		return []byte{'/'}
	}
	return rawURLDecode(path[len(base):])
}

// baseURL is Request::prepareBaseUrl for SCRIPT_NAME == script.
func baseURL(uri, path []byte, script string) []byte {
	if len(uri) == 0 || uri[0] != '/' {
		uri = append([]byte{'/'}, uri...)
	}
	if p, ok := urlencodedPrefix(uri, script); ok {
		return p
	}
	dir := script[:strings.LastIndexByte(script, '/')+1]
	if p, ok := urlencodedPrefix(uri, dir); ok {
		return bytes.TrimRight(p, "/")
	}
	if i := bytes.Index(rawURLDecode(path), scriptBase); i <= 0 {
		return nil // PHP's !strpos(): absent or at position 0
	}
	if len(uri) >= len(script) {
		if pos := bytes.Index(uri, []byte(script)); pos > 0 {
			return bytes.TrimRight(uri[:pos+len(script)], "/")
		}
	}
	return bytes.TrimRight([]byte(script), "/")
}

// urlencodedPrefix is Request::getUrlencodedPrefix: the raw prefix of s that decodes to
// prefix, each %XX counting as one character.
func urlencodedPrefix(s []byte, prefix string) ([]byte, bool) {
	if !bytes.HasPrefix(rawURLDecode(s), []byte(prefix)) {
		return nil, false
	}
	i := 0
	for n := 0; n < len(prefix); n++ {
		if i >= len(s) {
			return nil, false
		}
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			i += 3
			continue
		}
		if s[i] == '\n' {
			return nil, false // PCRE's "." does not match a newline
		}
		i++
	}
	return s[:i], true
}

// rawURLDecode is PHP's rawurldecode; it returns s itself when there is nothing to decode.
func rawURLDecode(s []byte) []byte {
	if bytes.IndexByte(s, '%') < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
