package acme

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"
)

// ChallengePrefix is the path under which an ACME CA fetches http-01
// key authorizations (RFC 8555 section 8.3).
const ChallengePrefix = "/.well-known/acme-challenge/"

// maxTokenLen bounds the token of a challenge path: RFC 8555 tokens carry
// at least 128 bits of base64url (43 characters); CAs send 43. Longer
// paths are never a CA's.
const maxTokenLen = 128

// IsChallengePath reports whether path is under ChallengePrefix: such a
// request on a plain listener is the LB's to answer, never a node's.
func IsChallengePath(path []byte) bool {
	return bytes.HasPrefix(path, []byte(ChallengePrefix))
}

// challengeToken returns the token of a well-formed http-01 request path,
// "/.well-known/acme-challenge/<token>" with a base64url token of
// 1..maxTokenLen characters, or false. Anything else (traversal, escapes,
// more segments, padding) is not a CA's request.
func challengeToken(path []byte) (string, bool) {
	if !IsChallengePath(path) {
		return "", false
	}
	tok := path[len(ChallengePrefix):]
	if len(tok) == 0 || len(tok) > maxTokenLen {
		return "", false
	}
	for _, c := range tok {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return string(tok), true
}

// challengeHost returns the lower-cased DNS name of a Host header value
// (port dropped) when it is one an identifier could be, or false. The
// name selects a storage key, so nothing but letters, digits, '-' and '.'
// gets through.
func challengeHost(host []byte) (string, bool) {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if len(host) == 0 || len(host) > 253 || host[0] == '.' || host[len(host)-1] == '.' {
		return "", false
	}
	for i, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c >= 'A' && c <= 'Z':
		case c == '.' && host[i-1] != '.':
		default:
			return "", false
		}
	}
	return strings.ToLower(string(host)), true
}

// ServeHTTPChallenge answers a plain-HTTP request under ChallengePrefix:
// the key authorization of an active http-01 challenge (started here or
// by an LB sharing the storage), else 404. It returns false for any other
// path, which it leaves alone. Not a hot path: only a CA sends these.
func (m *Manager) ServeHTTPChallenge(ctx *fasthttp.RequestCtx) bool {
	path := ctx.Path()
	if !IsChallengePath(path) {
		return false
	}
	m.challengeRequests.Add(1)
	token, okPath := challengeToken(path)
	host, okHost := challengeHost(ctx.Request.Header.Host())
	iss := m.issuer.Load()
	if !okPath || !okHost || iss == nil || !(ctx.IsGet() || ctx.IsHead()) {
		notFound(ctx)
		return true
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, ChallengePrefix+token, nil)
	if err != nil {
		notFound(ctx)
		return true
	}
	r.Host = host
	w := &responseWriter{header: http.Header{}}
	if !iss.HandleHTTPChallenge(w, r) {
		notFound(ctx)
		return true
	}
	m.challengesAnswered.Add(1)
	ctx.SetStatusCode(w.statusCode())
	if ct := w.header.Get("Content-Type"); ct != "" {
		ctx.Response.Header.SetContentType(ct)
	}
	ctx.Response.SetBody(w.body.Bytes())
	return true
}

func notFound(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusNotFound)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString("no such ACME challenge\n")
}

// responseWriter collects certmagic's answer (a few dozen bytes).
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.body.Len()+len(b) > 4096 { // a key authorization is ~90 bytes
		return 0, http.ErrContentLength
	}
	return w.body.Write(b)
}

func (w *responseWriter) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Interface guards.
var _ http.ResponseWriter = (*responseWriter)(nil)
