package mosparoemu

import (
	"strings"
	"testing"
)

func TestResourcesCSS(t *testing.T) {
	n := startNode(t, Options{Name: "r1"})
	css := DefaultCSS(DemoUUID)
	hash := CSSHash(css)
	hashPath := "/resources/" + DemoUUID + "/" + hash + ".css"

	r := get(t, n.URL()+"/resources/"+DemoUUID+".css")
	if r.status != 307 || r.header.Get("Location") != n.URL()+hashPath || r.header.Get("Cache-Control") != "no-cache, public" {
		t.Errorf("css = %d Location %q Cache-Control %q, want 307 %s no-cache, public",
			r.status, r.header.Get("Location"), r.header.Get("Cache-Control"), n.URL()+hashPath)
	}

	r = get(t, n.URL()+hashPath)
	if r.status != 200 || r.body != string(css) {
		t.Fatalf("hashed css = %d (%d bytes), want 200 with the CSS", r.status, len(r.body))
	}
	for name, want := range map[string]string{
		"Content-Type": "text/css; charset=UTF-8", "Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=31536000, public",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("hashed css %s = %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(r.body, ".mosparo__"+DemoUUID) || len(css) < 12*1024 || len(css) > 13*1024 {
		t.Errorf("css starts %.40q, %d bytes; want .mosparo__<uuid>, about 12 KiB", r.body, len(css))
	}

	r = get(t, n.URL()+"/resources/"+DemoUUID+"/"+strings.Repeat("0", 64)+".css")
	if r.status != 307 || r.header.Get("Location") != n.URL()+hashPath {
		t.Errorf("stale hash = %d %q, want 307 to the current hash", r.status, r.header.Get("Location"))
	}
	for _, path := range []string{"/resources/00000000-0000-0000-0000-000000000000.css", "/resources/00000000-0000-0000-0000-000000000000/" + hash + ".css"} {
		if r := get(t, n.URL()+path); r.status != 404 || r.body != "404 Not Found" {
			t.Errorf("GET %s = %d %q, want 404 text", path, r.status, r.body)
		}
	}
	if r := get(t, n.URL()+"/resources/"+DemoUUID+"/url"); r.status != 200 || r.body != n.URL()+hashPath {
		t.Errorf("css url = %d %q", r.status, r.body)
	}
	if r := get(t, n.URL()+"/resources/logo.svg"); r.status != 200 || r.header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("logo = %d %q", r.status, r.header.Get("Content-Type"))
	}
	if got := n.Count("resources-css"); got != 2 {
		t.Errorf("Count(resources-css) = %d, want 2", got)
	}
	if got := n.Count("resources-hash-css"); got != 3 {
		t.Errorf("Count(resources-hash-css) = %d, want 3", got)
	}
}

// TestResourcesForwardedHeaders: the absolute Location honours X-Forwarded-Host/-Proto/-Prefix
// only from a trusted proxy (FACTS 4, 5.3).
func TestResourcesForwardedHeaders(t *testing.T) {
	trusting := startNode(t, Options{})
	untrusting := startNode(t, Options{TrustedProxies: []string{}})
	tail := "/resources/" + DemoUUID + "/" + CSSHash(DefaultCSS(DemoUUID)) + ".css"
	fwd := []string{"X-Forwarded-Host: Forms.Example.com", "X-Forwarded-Proto: https", "X-Forwarded-Prefix: /mosparo/"}
	tests := []struct {
		name    string
		node    *Node
		headers []string
		want    string
	}{
		{"trusted full set", trusting, fwd, "https://forms.example.com/mosparo" + tail},
		{"trusted host with port", trusting, []string{"X-Forwarded-Host: a.example:8443", "X-Forwarded-Proto: https"}, "https://a.example:8443" + tail},
		{"default port dropped", trusting, []string{"X-Forwarded-Host: a.example:443", "X-Forwarded-Proto: https"}, "https://a.example" + tail},
		{"proto only keeps host port", trusting, []string{"Host: lb.example:8080", "X-Forwarded-Proto: https"}, "https://lb.example:8080" + tail},
		{"first value of a list", trusting, []string{"X-Forwarded-Host: one.example, two.example"}, "http://one.example" + tail},
		{"untrusted ignores all", untrusting, append([]string{"Host: direct.example"}, fwd...), "http://direct.example" + tail},
		{"plain host header", untrusting, []string{"Host: direct.example:80"}, "http://direct.example" + tail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, tt.node.URL()+"/resources/"+DemoUUID+".css", tt.headers...)
			if got := r.header.Get("Location"); r.status != 307 || got != tt.want {
				t.Errorf("Location = %d %q, want 307 %q", r.status, got, tt.want)
			}
		})
	}
}

func TestSetProjectCSS(t *testing.T) {
	n := startNode(t, Options{})
	_, oldHash, ok := n.ProjectCSS(DemoUUID)
	if !ok {
		t.Fatal("ProjectCSS: demo project missing")
	}
	css := []byte(".mosparo__" + DemoUUID + "{color:red}")
	if err := n.SetProjectCSS(DemoUUID, css); err != nil {
		t.Fatal(err)
	}
	newPath := "/resources/" + DemoUUID + "/" + CSSHash(css) + ".css"
	if r := get(t, n.URL()+"/resources/"+DemoUUID+"/"+oldHash+".css"); r.status != 307 || r.header.Get("Location") != n.URL()+newPath {
		t.Errorf("old hash = %d %q, want 307 to %s", r.status, r.header.Get("Location"), newPath)
	}
	if r := get(t, n.URL()+newPath); r.status != 200 || r.body != string(css) {
		t.Errorf("new hash = %d %q", r.status, r.body)
	}
	if err := n.SetProjectCSS("nope", css); err == nil {
		t.Error("SetProjectCSS(unknown) succeeded")
	}
}
