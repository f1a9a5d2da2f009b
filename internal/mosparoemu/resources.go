package mosparoemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// project is a Project with its precomputed CSS answer.
type project struct {
	uuid       string
	publicKey  string
	privateKey []byte
	hosts      [][]byte
	design     atomic.Pointer[design] // replaced whole by SetProjectCSS
}

// design is one immutable version of a project's prepared CSS.
type design struct {
	css      []byte
	hash     []byte // 64 lower-case hex: the designConfigHash in CSS URLs
	hashPath []byte // "/resources/<uuid>/<hash>.css"
}

func newDesign(uuid string, css []byte) *design {
	d := &design{css: css, hash: []byte(CSSHash(css))}
	d.hashPath = []byte("/resources/" + uuid + "/" + string(d.hash) + ".css")
	return d
}

func newProject(p Project) *project {
	pp := &project{
		uuid:       strings.ToLower(p.UUID),
		publicKey:  p.PublicKey,
		privateKey: []byte(p.PrivateKey),
	}
	hosts := p.Hosts
	if hosts == nil {
		hosts = []string{"*"}
	}
	for _, h := range hosts {
		pp.hosts = append(pp.hosts, []byte(h))
	}
	css := p.CSS
	if css == nil {
		css = DefaultCSS(pp.uuid)
	}
	pp.design.Store(newDesign(pp.uuid, css))
	return pp
}

// CSSHash returns the style hash the emulator puts into CSS URLs for a project's CSS: sha256
// hex of the CSS bytes (mosparo hashes its design settings instead, FACTS 5.2; any
// deterministic value serves).
func CSSHash(css []byte) string {
	sum := sha256.Sum256(css)
	return hex.EncodeToString(sum[:])
}

var (
	// Symfony's Response::prepare() appends the charset to text/* types.
	ctCSS         = []byte("text/css; charset=UTF-8")
	ctSVG         = []byte("image/svg+xml")
	valueMaxAge   = []byte("max-age=31536000, public")
	text404       = []byte("404 Not Found")
	suffixCSS     = []byte(".css")
	hdrLocation   = []byte("Location")
	resourcesPath = []byte("/resources/")
	logoSVG       = []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 80 20"><text x="0" y="15" font-family="sans-serif" font-size="14" fill="#000">mosparo</text></svg>`)
)

// ProjectCSS returns the CSS a node currently serves for a project UUID and its hash (the
// path segment of /resources/<uuid>/<hash>.css).
func (n *Node) ProjectCSS(uuid string) (css []byte, hash string, ok bool) {
	p := n.byUUID[strings.ToLower(uuid)]
	if p == nil {
		return nil, "", false
	}
	d := p.design.Load()
	return d.css, string(d.hash), true
}

// SetProjectCSS replaces a project's CSS, as saving the design settings does: the hash changes,
// old hashed URLs get 307 to the new one. The slice must not be modified afterwards.
func (n *Node) SetProjectCSS(uuid string, css []byte) error {
	p := n.byUUID[strings.ToLower(uuid)]
	if p == nil {
		return fmt.Errorf("mosparoemu: unknown project %q", uuid)
	}
	p.design.Store(newDesign(p.uuid, css))
	return nil
}

// serveResources answers the dynamic resources (FACTS 2.5, 5.3) as a node with prepared CSS:
// /resources/<uuid>.css -> 307 to the hashed URL (no-cache, public); /resources/<uuid>/<hash>.css
// -> 200 CSS (text/css, ACAO *, one year) when the hash is current, else 307 to the current one;
// unknown uuid -> 404 text; /resources/<uuid>/url -> the absolute CSS URL as text;
// /resources/logo.svg -> the logo.
func (n *Node) serveResources(ctx *fasthttp.RequestCtx, r route, path []byte) {
	rest := path[len(resourcesPath):]
	switch r {
	case routeResourcesCSS:
		p := n.byUUID[string(rest[:len(rest)-len(suffixCSS)])]
		if p == nil {
			serveText(ctx, fasthttp.StatusNotFound, text404)
			return
		}
		n.redirectCSS(ctx, p)
	case routeResourcesHashCSS:
		slash := bytes.IndexByte(rest, '/')
		p := n.byUUID[string(rest[:slash])]
		if p == nil {
			serveText(ctx, fasthttp.StatusNotFound, text404)
			return
		}
		hash := rest[slash+1 : len(rest)-len(suffixCSS)]
		d := p.design.Load()
		if !bytes.Equal(hash, d.hash) {
			n.redirectCSS(ctx, p)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.Response.Header.SetContentTypeBytes(ctCSS)
		ctx.Response.Header.SetCanonical(hdrACAO, valueStar)
		ctx.Response.Header.SetCanonical(hdrCacheCtl, valueMaxAge)
		ctx.Response.SetBodyRaw(d.css)
	default:
		switch {
		case string(rest) == "logo.svg":
			ctx.SetStatusCode(fasthttp.StatusOK)
			ctx.Response.Header.SetContentTypeBytes(ctSVG)
			ctx.Response.Header.SetCanonical(hdrACAO, valueStar)
			ctx.Response.Header.SetCanonical(hdrCacheCtl, valueMaxAge)
			ctx.Response.SetBodyRaw(logoSVG)
		case bytes.HasSuffix(rest, []byte("/url")) && bytes.Count(rest, []byte("/")) == 1:
			p := n.byUUID[string(rest[:len(rest)-len("/url")])]
			if p == nil {
				serveText(ctx, fasthttp.StatusNotFound, text404)
				return
			}
			var buf [512]byte
			serveText(ctx, fasthttp.StatusOK, n.absoluteURL(ctx, buf[:0], p.design.Load().hashPath))
		default:
			n.serveNotFound(ctx)
		}
	}
}

// redirectCSS answers 307 to the absolute URL of the project's current hashed CSS.
func (n *Node) redirectCSS(ctx *fasthttp.RequestCtx, p *project) {
	var buf [512]byte
	ctx.SetStatusCode(fasthttp.StatusTemporaryRedirect)
	ctx.Response.Header.SetCanonical(hdrLocation, n.absoluteURL(ctx, buf[:0], p.design.Load().hashPath))
	ctx.Response.Header.SetCanonical(hdrCacheCtl, valueNoCachePb)
	ctx.Response.Header.SetContentTypeBytes(ctHTML)
	ctx.Response.SetBodyRaw(pageRedirect)
}

// absoluteURL appends what UrlGeneratorInterface::ABSOLUTE_URL yields for path (FACTS 4, 5.3):
// scheme, host and port from the Host header, or from X-Forwarded-Proto/-Host when the peer is
// a trusted proxy, then a trusted X-Forwarded-Prefix (right-trimmed of "/"), then path. The
// port is left out when it is the scheme's default.
func (n *Node) absoluteURL(ctx *fasthttp.RequestCtx, dst, path []byte) []byte {
	var ipBuf [64]byte
	ip := n.trusted.resolveClientIP(ctx, ipBuf[:])
	https := ctx.IsTLS()
	hostPort := ctx.Request.Header.Host()
	var prefix []byte
	if ip.peerTrusted {
		if v := firstTrustedValue(ctx, "X-Forwarded-Proto"); v != nil {
			https = isHTTPSValue(v)
		}
		if v := firstTrustedValue(ctx, "X-Forwarded-Host"); v != nil {
			hostPort = v
		}
		if v := firstTrustedValue(ctx, "X-Forwarded-Prefix"); v != nil {
			prefix = bytes.TrimRight(v, "/")
		}
	}
	host, port := splitHostPort(hostPort)
	if https {
		dst = append(dst, "https://"...)
	} else {
		dst = append(dst, "http://"...)
	}
	dst = appendLower(dst, host)
	if len(port) > 0 && !(https && string(port) == "443") && !(!https && string(port) == "80") {
		dst = append(dst, ':')
		dst = append(dst, port...)
	}
	dst = append(dst, prefix...)
	return append(dst, path...)
}

// firstTrustedValue returns the first comma-separated, trimmed value of a forwarded header
// (Symfony getTrustedValues()[0]), nil when absent or empty.
func firstTrustedValue(ctx *fasthttp.RequestCtx, name string) []byte {
	v := ctx.Request.Header.Peek(name)
	if i := bytes.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil
	}
	return v
}

func isHTTPSValue(v []byte) bool {
	return bytes.EqualFold(v, []byte("https")) || bytes.EqualFold(v, []byte("on")) ||
		bytes.EqualFold(v, []byte("ssl")) || string(v) == "1"
}

// splitHostPort splits "host:port" and "[v6]:port" the way Request::getPort/getHost do.
func splitHostPort(hp []byte) (host, port []byte) {
	if len(hp) > 0 && hp[0] == '[' {
		end := bytes.IndexByte(hp, ']')
		if end < 0 {
			return hp, nil
		}
		if end+1 < len(hp) && hp[end+1] == ':' {
			return hp[:end+1], hp[end+2:]
		}
		return hp[:end+1], nil
	}
	if i := bytes.LastIndexByte(hp, ':'); i >= 0 {
		return hp[:i], hp[i+1:]
	}
	return hp, nil
}

func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
