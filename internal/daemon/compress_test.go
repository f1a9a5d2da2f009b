package daemon

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
	"github.com/mosparo-lb/mosparo-lb/internal/chromiumtest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
)

// TestCompressionThroughTheLB: the whole daemon with compression on and the
// CSS edge, driven by curl. The edge's precompressed CSS and a node's
// compressed frontend script decode (in curl and in Go) to the exact bytes
// the cache and the node hold, and every form revalidates to a 304.
func TestCompressionThroughTheLB(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (scripts/install-test-deps.sh): the test did NOT run")
	}
	redis := cachetest.StartRedis(t)
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, fmt.Sprintf("css_cache: {backend: redis, url: \"redis://%s/0\"}\ncompression: {enabled: true}\n", redis.Addr))
	css := ".mosparo__" + mosparoemu.DemoUUID + "{color:red}" + strings.Repeat(".mosparo__row{margin:0 4px}", 600)
	hash := cssHash(css)
	storeProjectCSS(t, redis.Addr, css, hash)
	cssURL := c.lb + "/resources/" + mosparoemu.DemoUUID + "/" + hash + ".css"
	jsURL := c.lb + "/build/mosparo-frontend.js"

	// curl -D - -o body: the header block and the raw body.
	curl := func(t *testing.T, url string, args ...string) (head string, body []byte) {
		t.Helper()
		f := t.TempDir() + "/body"
		out, err := exec.Command("curl", append([]string{"-sS", "-m", "10", "-D", "-", "-o", f, "-H", "Host: mosparo.example"}, append(args, url)...)...).Output()
		if err != nil {
			t.Fatalf("curl %v %s: %v", args, url, err)
		}
		body, err = os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) { // no file: no body (304)
			t.Fatal(err)
		}
		return string(out), body
	}
	// The edge answers once it has read the cache, and in brotli once its
	// packing goroutine has made the forms.
	var head string
	if !eventually(10*time.Second, func() bool {
		head, _ = curl(t, cssURL, "-H", "Accept-Encoding: br")
		return strings.HasPrefix(head, "HTTP/1.1 200") && headerValue(head, "x-mosparo-node") == "" && headerValue(head, "content-encoding") == "br"
	}) {
		t.Fatalf("hashed CSS never served at the edge:\n%s", head)
	}
	_, nodeJS := curl(t, nodes[0].URL()+"/build/mosparo-frontend.js")

	for _, tt := range []struct {
		name, url string
		want      []byte
		edge      bool
	}{
		{"edge css", cssURL, []byte(css), true},
		{"proxied js", jsURL, nodeJS, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			head, body := curl(t, tt.url, "--compressed")
			if headerValue(head, "content-encoding") != "br" || headerValue(head, "vary") != "Accept-Encoding" {
				t.Errorf("curl --compressed not answered with br and Vary:\n%s", head)
			}
			if !bytes.Equal(body, tt.want) {
				t.Errorf("curl --compressed: %d bytes, want the exact %d", len(body), len(tt.want))
			}
			if fromNode := headerValue(head, "x-mosparo-node") != ""; fromNode == tt.edge {
				t.Errorf("answered by a node = %v, want %v", fromNode, !tt.edge)
			}
			etags := map[string]string{}
			for _, ae := range []string{"br", "gzip", "identity"} {
				head, raw := curl(t, tt.url, "-H", "Accept-Encoding: "+ae)
				if got := decode(t, ae, raw); !bytes.Equal(got, tt.want) {
					t.Errorf("Accept-Encoding %s: decodes to %d bytes, want the exact %d", ae, len(got), len(tt.want))
				}
				if ae != "identity" && len(raw) >= len(tt.want) {
					t.Errorf("Accept-Encoding %s: %d bytes on the wire for %d", ae, len(raw), len(tt.want))
				}
				etag := headerValue(head, "etag")
				if etag == "" {
					t.Fatalf("Accept-Encoding %s: no ETag", ae)
				}
				etags[ae] = etag
				// The form's own validator revalidates it.
				head, _ = curl(t, tt.url, "-H", "Accept-Encoding: "+ae, "-H", "If-None-Match: "+etag)
				if !strings.HasPrefix(head, "HTTP/1.1 304") || headerValue(head, "etag") != etag {
					t.Errorf("If-None-Match %s with Accept-Encoding %s:\n%s", etag, ae, head)
				}
			}
			if etags["br"] == etags["gzip"] || etags["br"] == etags["identity"] || etags["gzip"] == etags["identity"] {
				t.Errorf("forms share an ETag: %v", etags)
			}
		})
	}
}

// headerValue is the first value of the named header in a curl -D block.
func headerValue(head, name string) string {
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// decode undoes a Content-Encoding with decoders other than the LB's.
func decode(t *testing.T, ce string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch ce {
	case "br":
		r = brrr.NewReader(bytes.NewReader(b))
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	default:
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", ce, err)
	}
	return out
}

// TestCompressionInChromium: headless Chromium (which asks for "gzip,
// deflate, br, zstd") loads the edge's CSS and a proxied stylesheet through
// the LB, is answered in brotli, shows exactly the bytes the cache and the
// node hold, and applies the decoded rules as a stylesheet.
func TestCompressionInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	b := chromiumtest.Start(t)
	redis := cachetest.StartRedis(t)
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, fmt.Sprintf("css_cache: {backend: redis, url: \"redis://%s/0\"}\ncompression: {enabled: true}\n", redis.Addr))
	// No '<', '>' or '&', so the text Chromium shows is the CSS unescaped;
	// one colour per source, so the applied rules tell which one loaded.
	const rules = 400
	rep := strings.Repeat(".mosparo__label{font-weight:600;padding:2px}", rules)
	css := ".mosparo__" + mosparoemu.DemoUUID + "{color:rgb(255, 0, 0)}" + rep
	hash := cssHash(css)
	storeProjectCSS(t, redis.Addr, css, hash)
	// The node's own CSS differs from the cache's: a node answers its hash,
	// and the LB compresses its answer.
	if err := nodes[0].SetProjectCSS(mosparoemu.DemoUUID, []byte(".mosparo__"+mosparoemu.DemoUUID+"{color:rgb(0, 0, 255)}"+rep)); err != nil {
		t.Fatal(err)
	}
	nodeCSS, nodeHash, _ := nodes[0].ProjectCSS(mosparoemu.DemoUUID)
	edgeURL := c.lb + "/resources/" + mosparoemu.DemoUUID + "/" + hash + ".css"
	var out []byte
	if !eventually(10*time.Second, func() bool {
		out, _ = exec.Command("curl", "-sS", "-m", "5", "-o", "/dev/null", "-D", "-", "-H", "Accept-Encoding: br", edgeURL).Output()
		return strings.HasPrefix(string(out), "HTTP/1.1 200") && headerValue(string(out), "x-mosparo-node") == "" &&
			headerValue(string(out), "content-encoding") == "br"
	}) {
		t.Fatalf("hashed CSS never served at the edge:\n%s", out)
	}
	for _, tt := range []struct {
		name, path, color string
		want              []byte
		fromNode          bool
	}{
		{"edge", "/resources/" + mosparoemu.DemoUUID + "/" + hash + ".css", "rgb(255, 0, 0)", []byte(css), false},
		{"proxied", "/resources/" + mosparoemu.DemoUUID + "/" + nodeHash + ".css", "rgb(0, 0, 255)", nodeCSS, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := b.Navigate(t, c.lb+tt.path)
			h := func(name string) string {
				for k, v := range resp.Headers {
					if strings.EqualFold(k, name) {
						s, _ := v.(string)
						return s
					}
				}
				return ""
			}
			if resp.Status != 200 || h("content-encoding") != "br" {
				t.Fatalf("Chromium got %d with Content-Encoding %q, want 200 in br; headers %v", resp.Status, h("content-encoding"), resp.Headers)
			}
			if fromNode := h("x-mosparo-node") != ""; fromNode != tt.fromNode {
				t.Errorf("answered by a node = %v, want %v", fromNode, tt.fromNode)
			}
			// Chromium shows a stylesheet as the text of one <pre>.
			if got := b.EvalString(t, "document.contentType + ' ' + document.querySelectorAll('pre').length"); got != "text/css 1" {
				t.Errorf("document = %q, want text/css in one <pre>", got)
			}
			if got := b.EvalString(t, "document.querySelector('pre').textContent"); got != string(tt.want) {
				t.Errorf("Chromium shows %d bytes (%.80q...), want the exact %d", len(got), got, len(tt.want))
			}
			// The same URL as a stylesheet of the page (same origin, so its
			// rules are readable): the decoded rules apply.
			got := b.EvalAwait(t, `new Promise((resolve, reject) => {
				const link = document.createElement('link');
				link.rel = 'stylesheet';
				link.href = location.href;
				link.onload = () => {
					const el = document.createElement('div');
					el.className = 'mosparo__`+mosparoemu.DemoUUID+`';
					document.body.append(el);
					resolve(link.sheet.cssRules.length + ' ' + getComputedStyle(el).color);
				};
				link.onerror = () => reject(new Error('stylesheet did not load'));
				document.head.append(link);
			})`)
			if want := fmt.Sprintf("\"%d %s\"", rules+1, tt.color); got != want {
				t.Errorf("as a stylesheet: rules and colour = %s, want %s", got, want)
			}
			if p := b.Problems(); len(p) > 0 {
				t.Errorf("console errors: %q", p)
			}
		})
	}
}
