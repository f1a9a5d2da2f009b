package balancer

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/valyala/fasthttp"
)

// FuzzForwarding parses arbitrary request bytes the way the server does and
// runs the header rules on them: no panic, no hop-by-hop header left, and an
// untrusted client's X-Forwarded-For is exactly the peer.
func FuzzForwarding(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n"), false)
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Hop, ,, keep-alive\r\nX-Hop: 1\r\nTE: trailers\r\n\r\n"), false)
	f.Add([]byte("POST /api/v1/frontend/check-form-data HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Forwarded-Host: a,b\r\nX-Forwarded-Proto: https, http\r\n\r\nabc"), true)
	f.Add([]byte("GET /cron-jobs/execute/ HTTP/1.0\r\nX-Forwarded-Foo: 1\r\nx-forwarded-for: 1.2.3.4\r\nX-FORWARDED-FOR: 5.6.7.8\r\n\r\n"), true)
	f.Add([]byte("GET //api/v1/health/check/../check HTTP/1.1\r\nHost: [::1]:80\r\nConnection: Connection\r\n\r\n"), false)
	// Issue 11, item 5: CDN client-address headers in every spelling, httpoxy.
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nCF-Connecting-IP: 1\r\ncf_connecting_ip: 2\r\nTRUE_CLIENT_IP: 3\r\nProxy: http://e\r\nX_Forwarded_For: 4\r\nx-client-address: 5\r\n\r\n"), false)
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nProxy: a\r\nproxy: b\r\nCloudFront-Viewer-Address: 1:2\r\n\r\n"), true)
	fwd := &forwarder{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, prefix: []byte("/mosparo"), strip: newNameSet([]string{"X-Client-Address"})}
	ours := map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "X-Forwarded-Prefix": true}
	f.Fuzz(func(t *testing.T, raw []byte, trusted bool) {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return
		}
		peer := netip.MustParseAddr("198.51.100.7")
		if trusted {
			peer = netip.MustParseAddr("10.1.2.3")
		}
		_ = Classify(req.URI().Path())
		fwd.clientFacing(&req.Header, peer, false, nil)
		removeHopByHop(&req.Header)
		req.Header.ResetConnectionClose()
		fwd.apply(&req.Header, peer, false, nil)
		for _, k := range hopHeaders {
			if v := req.Header.Peek(k); len(v) > 0 {
				t.Fatalf("hop-by-hop %s: %q survived", k, v)
			}
		}
		for k := range req.Header.All() {
			if fwd.strip.match(k, trusted) && !ours[string(k)] {
				t.Fatalf("header %q survived for a peer trusted=%v", k, trusted)
			}
		}
		if !trusted {
			if got := string(req.Header.Peek("X-Forwarded-For")); got != peer.String() {
				t.Fatalf("untrusted X-Forwarded-For = %q, want %q", got, peer)
			}
			if v := req.Header.Peek("Forwarded"); len(v) > 0 {
				t.Fatalf("untrusted Forwarded survived: %q", v)
			}
		}
		var out bytes.Buffer
		if err := req.Write(bufio.NewWriter(&out)); err != nil {
			return
		}
	})
}

// FuzzClientRequest runs the client-request rules on arbitrary request
// bytes (issue 11, items 6, 8, 9): no panic; a request let through has
// token header names, a Host the URL parser reads as exactly that host, and
// an absolute-form target's authority as its Host.
func FuzzClientRequest(f *testing.F) {
	f.Add([]byte("GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n"))
	f.Add([]byte("GET http:///x HTTP/1.1\r\nHost: b.example\r\n\r\n"))
	f.Add([]byte("GET HTTPS://u@[::1]:443?q HTTP/1.0\r\n\r\n"))
	f.Add([]byte("GET /x HTTP/1.1\r\nHost: [::1]:80\r\nX A: b\r\n\r\n"))
	f.Add([]byte("GET /x HTTP/1.1\r\nHost: a.example:65536\r\n\r\n"))
	f.Add([]byte("OPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("GET /x HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ctx fasthttp.RequestCtx
		if err := ctx.Request.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return
		}
		target := append([]byte(nil), ctx.Request.Header.RequestURI()...)
		if !checkRequest(&ctx) {
			if ctx.Response.StatusCode() != fasthttp.StatusBadRequest {
				t.Fatalf("refused with %d, want 400", ctx.Response.StatusCode())
			}
			return
		}
		for k := range ctx.Request.Header.All() {
			if !isToken(k) {
				t.Fatalf("header name %q let through", k)
			}
		}
		host := ctx.Request.Header.Host()
		if !isOriginForm(target) && !bytes.Equal(host, ctx.Request.URI().Host()) {
			t.Fatalf("absolute-form %q: Host %q, URI host %q", target, host, ctx.Request.URI().Host())
		}
		if len(host) == 0 {
			return
		}
		u, err := url.Parse("https://" + string(host) + "/")
		if err != nil || !strings.EqualFold(u.Host, string(host)) || u.User != nil {
			t.Fatalf("Host %q let through, read by net/url as %q (%v)", host, u, err)
		}
		loc := "https://" + string(hostOnly(host)) + "/"
		if u, err := url.Parse(loc); err != nil || u.Port() != "" || !strings.EqualFold(u.Hostname(), strings.Trim(string(hostOnly(host)), "[]")) {
			t.Fatalf("Location %q from Host %q reads as %v (%v)", loc, host, u, err)
		}
	})
}

// FuzzClassifyGuards sends arbitrary request targets through the edge's path
// handling (fasthttp's normalization, Canonical, the path forwarded) and asks
// the model of Symfony's base-URL detection (mosparoemu.PathInfo, for nginx
// and for Apache's root .htaccess) what route the node would run: whenever it
// is the health check or the web cron, the edge must have classified the
// request as that class, or refused it (FACTS 11.1).
func FuzzClassifyGuards(f *testing.F) {
	for _, s := range []string{
		"/index.php/cron-jobs/execute", "/%69ndex.php/api/v1/health/check", "/index%2ephp/cron-jobs/execute/",
		"/public/index.php/public/api/v1/health/check", "/x/public/index.php/cron-jobs/execute",
		"/index.php1234567/cron-jobs/execute", "/index.php/%2563ron-jobs/execute", "/a/../index.php/./cron-jobs/execute?x=/public/index.php",
	} {
		f.Add(s)
	}
	guarded := map[string]Class{"/api/v1/health/check": Health, "/cron-jobs/execute": Cron}
	f.Fuzz(func(t *testing.T, target string) {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"))); err != nil {
			return
		}
		path := req.URI().Path()
		canon, routable := Canonical(path)
		class := classify(canon)
		if !routable {
			return // answered 404 at the edge
		}
		setPath(&req, canon, nil)
		forwarded := req.URI().RequestURI()
		for _, script := range []string{mosparoemu.ScriptNginx, mosparoemu.ScriptApacheRoot} {
			route := strings.TrimRight(string(mosparoemu.PathInfo(forwarded, script)), "/")
			if want, ok := guarded[route]; ok && class != want {
				t.Fatalf("%q: forwarded as %q, which %s routes to %s; classified %v", target, forwarded, script, route, class)
			}
		}
	})
}

// FuzzProxyHeader frames and parses arbitrary bytes as a PROXY header,
// read whole and in chunks of a fuzzed size: no panic, the same verdict
// and client either way, and the bytes kept after a header are exactly
// those that followed it.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 203.0.113.1 40000 443\r\nGET / HTTP/1.1\r\n\r\n"), uint8(0))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n"), uint8(3))
	f.Add([]byte("PROXY UNKNOWN\r\n"), uint8(1))
	f.Add([]byte("PROXY TCP4 "+strings.Repeat("9", 120)), uint8(7))
	f.Add(proxyV2(f, "192.0.2.7:1", "203.0.113.1:2", someTLVs...), uint8(5))
	f.Add(proxyV2(f, "[2001:db8::7]:1", "[2001:db8::1]:2"), uint8(0))
	f.Add(proxyV2Local(f), uint8(2))
	f.Add(proxyV2Unix(f), uint8(9))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x07\x03\x00\x04\xa9\xb8\x7e\x8f"), uint8(1)) // HAProxy's LOCAL health check
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		h1, rest1, err1 := readProxyHeader(bytes.NewReader(data))
		h2, rest2, err2 := readProxyHeader(&chunkReader{b: data, n: 1 + int(chunk%32)})
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %v, in chunks of %d: %v", err1, 1+chunk%32, err2)
		}
		if err1 != nil {
			return
		}
		c1, ok1 := proxiedClient(h1)
		c2, ok2 := proxiedClient(h2)
		if c1 != c2 || ok1 != ok2 {
			t.Fatalf("client whole %v %v, in chunks %v %v", c1, ok1, c2, ok2)
		}
		n, err := proxyHeaderLen(data)
		if err != nil || n <= 0 || n > len(data) {
			t.Fatalf("parsed a header proxyHeaderLen calls %d, %v", n, err)
		}
		for _, rest := range [][]byte{rest1, rest2} {
			if !bytes.HasPrefix(data[n:], rest) {
				t.Fatalf("kept %q, but %q followed the header", rest, data[n:])
			}
		}
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	m := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[m:]
	return m, nil
}

// FuzzCompressHeaders: a node's Content-Type, Cache-Control and Vary never
// panic the compression checks.
func FuzzCompressHeaders(f *testing.F) {
	f.Add([]byte("text/html; charset=UTF-8"), []byte("public, no-transform"))
	f.Add([]byte(" ;"), []byte(",,=;"))
	f.Add([]byte("TEXT/"), []byte("No-Transform=1"))
	c, err := newCompressor(testConfigTB(f, "compression: {enabled: true}\n").Compression)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ct, cc []byte) {
		c.compressible(ct)
		hasToken(cc, strNoTransform)
		hasToken(cc, valStar)
	})
}

// FuzzClientAddr runs the client-address rule on arbitrary X-Forwarded-For
// lines from a trusted peer: no panic, and when the last entry is an
// untrusted address the client is that entry, whatever came before it
// (issue 15: a client cannot choose its own rate-limit bucket).
func FuzzClientAddr(f *testing.F) {
	f.Add("203.0.113.9", "")
	f.Add("198.51.100.1, 203.0.113.9", "10.0.0.2")
	f.Add("[2001:db8::1]:443,,", "fe80::1%eth0")
	f.Add("::ffff:1.2.3.4:5", " , ")
	fwd := &forwarder{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	peer := netip.MustParseAddr("10.1.2.3")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		h.Add("X-Forwarded-For", line1)
		if line2 != "" {
			h.Add("X-Forwarded-For", line2)
		}
		got := fwd.clientAddr(&h, peer)
		if !got.IsValid() {
			t.Fatalf("clientAddr(%q, %q) = invalid address", line1, line2)
		}
		// The entry the last (trusted) proxy wrote.
		all := line1
		if line2 != "" {
			all += "," + line2
		}
		parts := strings.Split(all, ",")
		last := strings.TrimSpace(parts[len(parts)-1])
		if a, ok := parseForwardedFor([]byte(last)); ok && !fwd.isTrusted(a) && got != a {
			t.Fatalf("clientAddr(%q, %q) = %s, want the last entry %s", line1, line2, got, a)
		}
	})
}
