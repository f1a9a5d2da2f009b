package balancer

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// Client-request rules fasthttp leaves to the proxy (issue 11, items 6-9):
// header names must be tokens, the request target must be origin-form,
// asterisk-form or an http(s) absolute-form with a host, and Host must be a
// valid host[:port]. A request breaking one gets 400 before any node sees it.

// checkRequest enforces those rules and moves an absolute-form target's
// authority into Host (RFC 9112 section 3.2.2: the authority wins, so the
// node and X-Forwarded-Host see the same host). It reports false after
// writing the 400.
func checkRequest(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	if !validHeaderNames(h) {
		return badRequest(ctx)
	}
	if target := h.RequestURI(); !isOriginForm(target) {
		authority, _, ok := absoluteForm(target)
		if !ok || !validHost(authority) {
			return badRequest(ctx)
		}
		// The URI holds it lower-cased, as the node will get it.
		h.SetHostBytes(ctx.Request.URI().Host())
	} else if host := h.Host(); len(host) > 0 && !validHost(host) {
		return badRequest(ctx)
	}
	// The body has been read (fasthttp answered the expectation): the node
	// must not be asked to send 100 Continue again.
	h.Del(fasthttp.HeaderExpect)
	return true
}

// expect decides on "Expect: 100-continue" before fasthttp sends the 100:
// a declared body over its route class's limit (the one headerReceived
// gives fasthttp for reading it) gets 413 at once, and a request
// checkRequest would refuse gets its 400 before the client sends a body for
// nothing (issue 11, item 7). fasthttp closes the connection after either,
// since the body may already be on its way.
//
// The answer carries the same JSON body as every other refusal. fasthttp's
// ExpectHandler doc asks handlers not to modify the response, but v1.78
// writes it as the handler leaves it, setting only the status returned;
// TestExpectContinueOverLimit holds that, so a fasthttp that resets the
// response here fails it rather than sending empty refusals unnoticed.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	if cl := ctx.Request.Header.ContentLength(); cl > s.headerReceived(&ctx.Request.Header).MaxRequestBodySize {
		writeError(ctx, Admin, fasthttp.StatusRequestEntityTooLarge, bodyTooLarge)
		return fasthttp.StatusRequestEntityTooLarge
	}
	if !validHeaderNames(&ctx.Request.Header) {
		writeError(ctx, Admin, fasthttp.StatusBadRequest, bodyBadRequest)
		return fasthttp.StatusBadRequest
	}
	return fasthttp.StatusContinue
}

func badRequest(ctx *fasthttp.RequestCtx) bool {
	writeError(ctx, Admin, fasthttp.StatusBadRequest, bodyBadRequest)
	ctx.SetConnectionClose()
	return false
}

// validHeaderNames reports whether every field name is a token (RFC 9110
// section 5.1). fasthttp refuses most other bytes itself but lets spaces
// through ("X A: b"), which a node or a later hop may split differently.
func validHeaderNames(h *fasthttp.RequestHeader) bool {
	for k := range h.All() {
		if !isToken(k) {
			return false
		}
	}
	return true
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// tokenChars are tchar of RFC 9110 section 5.6.2.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isOriginForm reports whether a request target is origin-form ("/x") or
// asterisk-form ("*", OPTIONS), the forms that carry no authority.
func isOriginForm(target []byte) bool {
	return len(target) > 0 && target[0] == '/' || string(target) == "*"
}

// absoluteForm splits an http or https absolute-form target into its
// authority and the rest ("/x?q", "/" when empty). It refuses other
// schemes, an empty authority ("http:///x") and user info, which RFC 9110
// section 4.2.4 says to treat as an error.
func absoluteForm(target []byte) (authority, rest []byte, ok bool) {
	i := bytes.Index(target, strSchemeSep)
	if i < 0 {
		return nil, nil, false
	}
	if scheme := target[:i]; !bytes.EqualFold(scheme, strHTTP) && !bytes.EqualFold(scheme, strHTTPS) {
		return nil, nil, false
	}
	authority = target[i+len(strSchemeSep):]
	rest = strRootPath
	if j := bytes.IndexAny(authority, "/?#"); j >= 0 {
		authority, rest = authority[:j], authority[j:] // "?q" alone: the caller prefixes "/"
	}
	if len(authority) == 0 || bytes.IndexByte(authority, '@') >= 0 {
		return nil, nil, false
	}
	return authority, rest, true
}

var (
	strSchemeSep = []byte("://")
	strRootPath  = []byte("/")
)

// validHost reports whether h is a Host value (RFC 9110 section 7.2): a
// registered name or IPv4 address, or an IPv6 literal in brackets, with an
// optional decimal port of at most 65535.
func validHost(h []byte) bool {
	host, port := h, []byte(nil)
	if len(h) > 0 && h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 0 || !validIPv6(h[1:end]) {
			return false
		}
		host, port = nil, h[end+1:]
		if len(port) > 0 && port[0] != ':' {
			return false
		}
	} else if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i:]
	}
	if len(port) > 0 && !validPort(port[1:]) {
		return false
	}
	if host == nil {
		return true // the IPv6 literal
	}
	if len(host) == 0 || len(host) > 253 {
		return false
	}
	for _, c := range host {
		if !hostChars[c] {
			return false
		}
	}
	return true
}

// validPort accepts 1..5 digits up to 65535; an empty port ("host:") is
// allowed by RFC 3986 and means the default.
func validPort(p []byte) bool {
	if len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// validIPv6 checks the characters of an IPv6 literal without allocating;
// the node's own parser gets nothing it could read as a second authority.
func validIPv6(b []byte) bool {
	if len(b) < 2 || len(b) > 45 || bytes.IndexByte(b, ':') < 0 {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
			return false
		}
	}
	return true
}

// hostChars are the bytes of a registered name as hosts are written in
// practice: letters, digits, '-', '.' and '_' (seen in internal names). The
// rest of RFC 3986 reg-name (sub-delims, percent-encoding) has no use in a
// Host header and every use in confusing a parser.
var hostChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	t['-'], t['.'], t['_'] = true, true, true
	return t
}()
