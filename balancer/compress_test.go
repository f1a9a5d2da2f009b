package balancer

import (
	"bytes"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/valyala/fasthttp"
)

// nodeAnswer is what a compressNode sends for one request.
type nodeAnswer struct {
	status int
	ctype  string
	body   []byte
	header [][2]string
}

// startAnswerNode is a node that answers every request with what fn
// returns for it, and records the If-None-Match it was sent.
func startAnswerNode(t *testing.T, fn func(ctx *fasthttp.RequestCtx) nodeAnswer) (spec NodeSpec, inm *chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 64)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		select {
		case seen <- string(ctx.Request.Header.Peek("If-None-Match")):
		default:
		}
		a := fn(ctx)
		ctx.SetStatusCode(a.status)
		if a.ctype != "" {
			ctx.SetContentType(a.ctype)
		} else {
			ctx.Response.Header.SetNoDefaultContentType(true)
		}
		for _, h := range a.header {
			ctx.Response.Header.Set(h[0], h[1])
		}
		ctx.SetBody(a.body)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return NodeSpec{Name: "n1", Address: ln.Addr().String(), Weight: 100}, &seen
}

const compressYAML = baseYAML + "compression: {enabled: true, min_bytes: 1024}\n"

// decoded undoes a Content-Encoding with decoders other than the encoders.
func decoded(t *testing.T, resp *fasthttp.Response) []byte {
	t.Helper()
	var r io.Reader
	switch ce := string(resp.Header.Peek("Content-Encoding")); ce {
	case "":
		return resp.Body()
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(resp.Body()))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brrr.NewReader(bytes.NewReader(resp.Body()))
	default:
		t.Fatalf("unexpected Content-Encoding %q", ce)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return b
}

func get(t *testing.T, addr, method, path string, hdr ...string) *fasthttp.Response {
	t.Helper()
	var raw strings.Builder
	raw.WriteString(method + " " + path + " HTTP/1.1\r\nHost: mosparo.example\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		raw.WriteString(hdr[i] + ": " + hdr[i+1] + "\r\n")
	}
	raw.WriteString("Connection: close\r\n\r\n")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw.String())); err != nil {
		t.Fatal(err)
	}
	resp := &fasthttp.Response{}
	resp.SkipBody = method == "HEAD"
	if err := resp.Read(newBufReader(c)); err != nil {
		t.Fatal(err)
	}
	return resp
}

var pageBody = []byte(strings.Repeat("<div class=\"mosparo__row\">mosparo protects this form</div>\n", 60))

func TestCompressAnswers(t *testing.T) {
	text := func(h ...[2]string) nodeAnswer {
		return nodeAnswer{status: 200, ctype: "text/html; charset=UTF-8", body: pageBody, header: h}
	}
	for _, tt := range []struct {
		name, method, ae string
		cfg              string
		a                nodeAnswer
		wantCE, wantVary string
		wantETag         string
	}{
		{"br preferred", "GET", "gzip, deflate, br", "", text(), "br", "Accept-Encoding", ""},
		{"gzip", "GET", "gzip", "", text(), "gzip", "Accept-Encoding", ""},
		{"q prefers gzip", "GET", "br;q=0.4, gzip;q=0.9", "", text(), "gzip", "Accept-Encoding", ""},
		{"no Accept-Encoding", "GET", "", "", text(), "", "Accept-Encoding", ""},
		{"identity only", "GET", "identity", "", text(), "", "Accept-Encoding", ""},
		{"identity refused too", "GET", "identity;q=0", "", text(), "", "Accept-Encoding", ""},
		{"star refused", "GET", "*;q=0", "", text(), "", "Accept-Encoding", ""},
		{"star", "GET", "*", "", text(), "br", "Accept-Encoding", ""},
		{"hostile value", "GET", "gzip;q=9, br;q=-1, ;;,,=, \xff\xfe", "", text(), "", "Accept-Encoding", ""},
		{"gzip only configured", "GET", "gzip, br", "algorithms: [gzip]", text(), "gzip", "Accept-Encoding", ""},
		{"json", "GET", "br", "", nodeAnswer{status: 200, ctype: "application/json", body: pageBody}, "br", "Accept-Encoding", ""},
		{"svg", "GET", "br", "", nodeAnswer{status: 200, ctype: "image/svg+xml", body: pageBody}, "br", "Accept-Encoding", ""},
		{"js upper case", "GET", "br", "", nodeAnswer{status: 200, ctype: "Application/JavaScript", body: pageBody}, "br", "Accept-Encoding", ""},
		{"404 page", "GET", "br", "", nodeAnswer{status: 404, ctype: "text/html", body: pageBody}, "br", "Accept-Encoding", ""},
		{"png", "GET", "br", "", nodeAnswer{status: 200, ctype: "image/png", body: pageBody}, "", "", ""},
		{"no type", "GET", "br", "", nodeAnswer{status: 200, body: pageBody}, "", "", ""},
		{"type not listed", "GET", "br", "types: [text/css]", text(), "", "", ""},
		{"tiny", "GET", "br", "", nodeAnswer{status: 200, ctype: "text/html", body: pageBody[:1023]}, "", "", ""},
		{"min_bytes exact", "GET", "br", "", nodeAnswer{status: 200, ctype: "text/html", body: pageBody[:1024]}, "br", "Accept-Encoding", ""},
		{"already encoded", "GET", "gzip, br", "", text([2]string{"Content-Encoding", "deflate"}), "deflate", "", ""},
		{"partial", "GET", "gzip, br", "", nodeAnswer{status: 206, ctype: "text/html", body: pageBody,
			header: [][2]string{{"Content-Range", "bytes 0-3599/9000"}}}, "", "", ""},
		{"content-range on 200", "GET", "br", "", text([2]string{"Content-Range", "bytes 0-3599/3600"}), "", "", ""},
		{"no-transform", "GET", "br", "", text([2]string{"Cache-Control", "public, No-Transform"}), "", "", ""},
		{"no-store is fine", "GET", "br", "", text([2]string{"Cache-Control", "no-store"}), "br", "Accept-Encoding", ""},
		{"head", "HEAD", "br", "", text(), "", "", ""},
		{"204", "GET", "br", "", nodeAnswer{status: 204}, "", "", ""},
		{"vary merged", "GET", "br", "", text([2]string{"Vary", "Cookie"}), "br", "Cookie, Accept-Encoding", ""},
		{"vary kept", "GET", "br", "", text([2]string{"Vary", "accept-encoding"}), "br", "accept-encoding", ""},
		{"vary star", "GET", "br", "", text([2]string{"Vary", "*"}), "br", "*", ""},
		{"strong etag", "GET", "br", "", text([2]string{"ETag", `"abc"`}), "br", "Accept-Encoding", `"abc-br"`},
		{"strong etag gzip", "GET", "gzip", "", text([2]string{"ETag", `"abc"`}), "gzip", "Accept-Encoding", `"abc-gz"`},
		{"weak etag", "GET", "br", "", text([2]string{"ETag", `W/"abc"`}), "br", "Accept-Encoding", `W/"abc"`},
		{"malformed etag dropped", "GET", "br", "", text([2]string{"ETag", `abc`}), "br", "Accept-Encoding", ``},
		{"identity keeps etag", "GET", "", "", text([2]string{"ETag", `"abc"`}), "", "Accept-Encoding", `"abc"`},
		{"disabled", "GET", "gzip, br", "enabled: false", text([2]string{"ETag", `"abc"`}), "", "", `"abc"`},
		{"incompressible", "GET", "br", "", nodeAnswer{status: 200, ctype: "text/plain", body: noise(4096)}, "", "Accept-Encoding", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec, _ := startAnswerNode(t, func(*fasthttp.RequestCtx) nodeAnswer { return tt.a })
			yaml := compressYAML
			switch {
			case strings.HasPrefix(tt.cfg, "enabled:"):
				yaml = baseYAML + "compression: {" + tt.cfg + "}\n"
			case tt.cfg != "":
				yaml = baseYAML + "compression: {enabled: true, min_bytes: 1024, " + tt.cfg + "}\n"
			}
			_, addr := startLB(t, testConfig(t, yaml), []NodeSpec{spec})
			var hdr []string
			if tt.ae != "" {
				hdr = []string{"Accept-Encoding", tt.ae}
			}
			resp := get(t, addr, tt.method, "/login", hdr...)
			if resp.StatusCode() != tt.a.status {
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.a.status)
			}
			if ce := string(resp.Header.Peek("Content-Encoding")); ce != tt.wantCE {
				t.Errorf("Content-Encoding %q, want %q", ce, tt.wantCE)
			}
			if v := string(resp.Header.Peek("Vary")); v != tt.wantVary {
				t.Errorf("Vary %q, want %q", v, tt.wantVary)
			}
			if e := string(resp.Header.Peek("ETag")); e != tt.wantETag {
				t.Errorf("ETag %q, want %q", e, tt.wantETag)
			}
			if tt.method == "HEAD" || tt.a.status == 204 {
				return
			}
			body := resp.Body()
			if tt.wantCE == "br" || tt.wantCE == "gzip" {
				if len(body) >= len(tt.a.body) {
					t.Errorf("compressed to %d bytes from %d", len(body), len(tt.a.body))
				}
				if len(resp.Header.Peek("Accept-Ranges")) != 0 {
					t.Error("Accept-Ranges kept on a compressed nodeAnswer")
				}
				body = decoded(t, resp)
			}
			if !bytes.Equal(body, tt.a.body) {
				t.Errorf("body differs from the node's (%d bytes, want %d)", len(body), len(tt.a.body))
			}
			if cl := resp.Header.ContentLength(); cl != len(resp.Body()) {
				t.Errorf("Content-Length %d, body %d", cl, len(resp.Body()))
			}
		})
	}
}

// noise is n bytes that do not compress.
func noise(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// A node's strong validator survives compression: the client gets a
// per-coding variant, sends it back, and the node, which only knows its
// own tag, still answers 304, with the variant the client holds.
func TestCompressConditional(t *testing.T) {
	spec, seen := startAnswerNode(t, func(ctx *fasthttp.RequestCtx) nodeAnswer {
		inm := string(ctx.Request.Header.Peek("If-None-Match"))
		h := [][2]string{{"ETag", `"v1"`}, {"Cache-Control", "public, max-age=60"}}
		if strings.Contains(inm, `"v1"`) {
			return nodeAnswer{status: 304, header: h}
		}
		return nodeAnswer{status: 200, ctype: "application/javascript", body: pageBody, header: h}
	})
	_, addr := startLB(t, testConfig(t, compressYAML), []NodeSpec{spec})
	for _, tt := range []struct {
		name, ae, inm     string
		status            int
		wantETag, nodeSaw string
		wantVary          string
	}{
		{"first br", "gzip, br", "", 200, `"v1-br"`, "", "Accept-Encoding"},
		{"revalidate br", "gzip, br", `"v1-br"`, 304, `"v1-br"`, `"v1"`, "Accept-Encoding"},
		{"revalidate gzip", "gzip", `"v1-gz"`, 304, `"v1-gz"`, `"v1"`, "Accept-Encoding"},
		{"gzip copy, br now", "gzip, br", `"v1-gz"`, 304, `"v1-gz"`, `"v1"`, "Accept-Encoding"},
		{"identity", "", `"v1"`, 304, `"v1"`, `"v1"`, ""},
		{"weak form of a variant", "br", `W/"v1-br"`, 200, `"v1-br"`, `W/"v1-br"`, "Accept-Encoding"},
		{"list", "br", `"old-gz", "v1-br"`, 304, `"v1-br"`, `"old", "v1"`, "Accept-Encoding"},
		{"stale", "br", `"v0-br"`, 200, `"v1-br"`, `"v0"`, "Accept-Encoding"},
		{"star", "br", `*`, 200, `"v1-br"`, `*`, "Accept-Encoding"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hdr := []string{}
			if tt.ae != "" {
				hdr = append(hdr, "Accept-Encoding", tt.ae)
			}
			if tt.inm != "" {
				hdr = append(hdr, "If-None-Match", tt.inm)
			}
			for len(*seen) > 0 {
				<-*seen
			}
			resp := get(t, addr, "GET", "/build/mosparo-frontend.js", hdr...)
			if resp.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.status)
			}
			if e := string(resp.Header.Peek("ETag")); e != tt.wantETag {
				t.Errorf("ETag %q, want %q", e, tt.wantETag)
			}
			if v := string(resp.Header.Peek("Vary")); v != tt.wantVary {
				t.Errorf("Vary %q, want %q", v, tt.wantVary)
			}
			if got := <-*seen; got != tt.nodeSaw {
				t.Errorf("node got If-None-Match %q, want %q", got, tt.nodeSaw)
			}
			if tt.status == 200 && !bytes.Equal(decoded(t, resp), pageBody) {
				t.Error("body differs from the node's")
			}
		})
	}
}

// With curl as the client: --compressed decodes to the node's exact bytes,
// and an explicit br request gets brotli that Go decodes to them too.
func TestCompressCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (scripts/install-test-deps.sh)")
	}
	body := append(bytes.Clone(pageBody), []byte(strings.Repeat(`{"k":"\u00e9"},`, 200))...)
	spec, _ := startAnswerNode(t, func(*fasthttp.RequestCtx) nodeAnswer {
		return nodeAnswer{status: 200, ctype: "text/css; charset=UTF-8", body: body}
	})
	_, addr := startLB(t, testConfig(t, compressYAML), []NodeSpec{spec})
	url := "http://" + addr + "/build/app.css"
	curl := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-sS", "-m", "10"}, append(args, url)...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return out
	}
	if got := curl("--compressed"); !bytes.Equal(got, body) {
		t.Errorf("curl --compressed: %d bytes, want the node's %d", len(got), len(body))
	}
	head := string(curl("--compressed", "-o", "/dev/null", "-D", "-"))
	if !strings.Contains(strings.ToLower(head), "content-encoding: br") {
		t.Errorf("curl --compressed was not answered with br:\n%s", head)
	}
	for _, ae := range []string{"br", "gzip"} {
		raw := curl("-H", "Accept-Encoding: "+ae)
		resp := &fasthttp.Response{}
		resp.Header.Set("Content-Encoding", ae)
		resp.SetBodyRaw(raw)
		if got := decoded(t, resp); !bytes.Equal(got, body) {
			t.Errorf("curl -H 'Accept-Encoding: %s': decodes to %d bytes, want %d", ae, len(got), len(body))
		}
		if len(raw) >= len(body) {
			t.Errorf("%s: %d bytes on the wire for %d", ae, len(raw), len(body))
		}
	}
}
