package mosparoemu

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"
)

// setupSteps are the wizard pages in order (FACTS 2.8).
var setupSteps = [...]string{
	"/setup/", "/setup/prerequisites", "/setup/database", "/setup/other", "/setup/install",
	"/setup/install-continuation",
}

// sessionStore is PHP's native file session handler in the node's temp directory: what the
// setup wizard uses before installation (FACTS 2.8, 3). Another node has other files.
type sessionStore struct {
	mu sync.Mutex
	m  map[string]int // session id -> highest wizard step reached
}

// maxSessions bounds the store; a full store forgets everything (like a tmp cleaner would).
const maxSessions = 1 << 14

func (s *sessionStore) get(id string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	step, ok := s.m[id]
	return step, ok
}

func (s *sessionStore) set(id string, step int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxSessions {
		s.m = make(map[string]int)
	}
	s.m[id] = step
}

func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *sessionStore) reset() {
	s.mu.Lock()
	s.m = nil
	s.mu.Unlock()
}

// HasSession reports whether this node has a setup session file with this PHPSESSID: the
// wizard's state is node-local, so a session started on one node is unknown to the others.
func (n *Node) HasSession(id string) bool {
	_, ok := n.sessions.get(id)
	return ok
}

// Sessions returns the number of setup sessions this node knows.
func (n *Node) Sessions() int { return n.sessions.len() }

const sessionCookie = "PHPSESSID"

// serveSetup runs the setup wizard (FACTS 2.8) with node-local file sessions. Every page needs
// the previous page to have been visited in the same session on this node; otherwise it sends
// the browser back to /setup/, which is what a lost session looks like. A PHPSESSID unknown to
// this node is adopted with empty data (PHP's default non-strict mode), a missing one is
// created and sent as a cookie. Finishing the wizard installs the node (health Connected).
// When the node is installed the wizard redirects to the start page.
func (n *Node) serveSetup(ctx *fasthttp.RequestCtx, h Health, path []byte) {
	if h != NotConfigured {
		redirect(ctx, fasthttp.StatusFound, []byte("/"))
		return
	}
	step := -1
	for i, s := range setupSteps {
		if string(path) == s {
			step = i
		}
	}
	if step < 0 {
		redirect(ctx, fasthttp.StatusFound, pathSetup)
		return
	}
	id := string(ctx.Request.Header.Cookie(sessionCookie))
	reached, known := -1, false
	if id != "" {
		reached, known = n.sessions.get(id)
		if !known {
			reached = -1
		}
	} else {
		id = newSessionID()
		n.setSessionCookie(ctx, id)
	}
	if step > reached+1 {
		n.sessions.set(id, reached)
		redirect(ctx, fasthttp.StatusFound, pathSetup)
		return
	}
	if step > reached {
		reached = step
	}
	n.sessions.set(id, reached)
	if step == len(setupSteps)-1 {
		n.health.CompareAndSwap(int32(NotConfigured), int32(Connected))
	}
	body := make([]byte, 0, 512)
	body = append(body, `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"><title>Setup - mosparo</title></head><body class="setup"><h1>mosparo setup</h1><p>Step `...)
	body = strconv.AppendInt(body, int64(step+1), 10)
	body = append(body, ` of 6: `...)
	body = append(body, setupSteps[step]...)
	body = append(body, `</p>`...)
	if step+1 < len(setupSteps) {
		body = append(body, `<a href="`...)
		body = append(body, setupSteps[step+1]...)
		body = append(body, `">Continue</a>`...)
	}
	body = append(body, `</body></html>`...)
	serveHTML(ctx, fasthttp.StatusOK, body)
}

// setSessionCookie sets PHP's default session cookie (FACTS 3): path /, HttpOnly, SameSite
// Lax, Secure only when the request is seen as HTTPS.
func (n *Node) setSessionCookie(ctx *fasthttp.RequestCtx, id string) {
	var buf [128]byte
	v := append(buf[:0], sessionCookie...)
	v = append(v, '=')
	v = append(v, id...)
	v = append(v, "; path=/"...)
	if n.seenAsHTTPS(ctx) {
		v = append(v, "; secure"...)
	}
	v = append(v, "; HttpOnly; SameSite=Lax"...)
	ctx.Response.Header.SetCanonical([]byte("Set-Cookie"), v)
}

func (n *Node) seenAsHTTPS(ctx *fasthttp.RequestCtx) bool {
	var ipBuf [64]byte
	ip := n.trusted.resolveClientIP(ctx, ipBuf[:])
	if ip.peerTrusted {
		if v := firstTrustedValue(ctx, "X-Forwarded-Proto"); v != nil {
			return isHTTPSValue(v)
		}
	}
	return ctx.IsTLS()
}

// newSessionID returns 26 characters of [0-9a-v], like PHP's default session.sid_length and
// sid_bits_per_character 5.
func newSessionID() string {
	var b [26]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = "0123456789abcdefghijklmnopqrstuv"[b[i]&31]
	}
	return string(b[:])
}

var (
	pathProject = []byte("/project/")
	pageAdmin   = []byte(`<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"><title>mosparo</title><link rel="stylesheet" href="/build/mosparo.css"></head><body><div class="page"><h1>mosparo</h1><p>Administration interface (emulated).</p></div></body></html>`)
)

// serveAdmin answers the admin UI routes (FACTS 2.7, 2.9) only as far as a load balancer sees
// them: / -> 302 /project/, /login the ~2 KiB login page (it opens a DB session, so it sets a
// PHPSESSID cookie when none was sent), other UI paths a small page.
func (n *Node) serveAdmin(ctx *fasthttp.RequestCtx, path []byte) {
	switch string(path) {
	case "/":
		redirect(ctx, fasthttp.StatusFound, pathProject)
	case "/login":
		if len(ctx.Request.Header.Cookie(sessionCookie)) == 0 {
			n.setLoginCookie(ctx)
		}
		serveHTML(ctx, fasthttp.StatusOK, pageLogin)
	default:
		serveHTML(ctx, fasthttp.StatusOK, pageAdmin)
	}
}

// setLoginCookie sets a fresh PHPSESSID without allocating: node seed and a counter, in the
// 32-character alphabet of PHP session ids.
func (n *Node) setLoginCookie(ctx *fasthttp.RequestCtx) {
	var buf [96]byte
	v := append(buf[:0], sessionCookie...)
	v = append(v, '=')
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], n.sessSeed)
	binary.LittleEndian.PutUint64(raw[8:], n.loginSeq.Add(1)*0x9e3779b97f4a7c15)
	for i := 0; i < 26; i++ {
		bit := i * 5
		x := uint(raw[bit/8%16]) | uint(raw[(bit/8+1)%16])<<8
		v = append(v, "0123456789abcdefghijklmnopqrstuv"[(x>>(bit%8))&31])
	}
	v = append(v, "; path=/; HttpOnly; SameSite=Lax"...)
	ctx.Response.Header.SetCanonical([]byte("Set-Cookie"), v)
}

var (
	valueStaticCache = []byte("max-age=315360000")
	valueExpires     = []byte("Thu, 31 Dec 2037 23:55:55 GMT")
	valueLastMod     = []byte("Mon, 01 Jun 2026 00:00:00 GMT")
	ctJS             = []byte("application/javascript")
	ctPlain          = []byte("text/plain")
	ctICO            = []byte("image/x-icon")
	hdrExpires       = []byte("Expires")
	hdrLastModified  = []byte("Last-Modified")
	hdrETag          = []byte("ETag")
)

// serveStatic answers the files nginx serves without PHP (FACTS 2.6): fixed names, identical on
// every node, cacheable. Unknown files fall through to PHP's 404 like try_files does.
func (n *Node) serveStatic(ctx *fasthttp.RequestCtx, path []byte) {
	var body, ct, etag []byte
	switch string(path) {
	case "/favicon.ico":
		body, ct, etag = faviconICO, ctICO, []byte(`"6650b580-46"`)
	case "/robots.txt":
		body, ct, etag = robotsTxt, ctPlain, []byte(`"6650b580-1a"`)
	default:
		if f, ok := n.version.load().files[string(path)]; ok {
			body, ct, etag = f.body, f.ct, f.etag
			break
		}
		n.serveNotFound(ctx)
		return
	}
	h := &ctx.Response.Header
	h.SetContentTypeBytes(ct)
	h.SetCanonical(hdrLastModified, valueLastMod)
	h.SetCanonical(hdrETag, etag)
	h.SetCanonical(hdrExpires, valueExpires)
	h.SetCanonical(hdrCacheCtl, valueStaticCache)
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && bytes.Equal(inm, etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.SetBodyRaw(body)
}
