package mosparoemu

import (
	"net/http"
	"strings"
	"testing"
)

func sessionFrom(t *testing.T, r result) string {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "PHPSESSID" {
			if !c.HttpOnly || c.Path != "/" || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie %v: want HttpOnly, path /, SameSite Lax", c)
			}
			return c.Value
		}
	}
	return ""
}

// TestSetupNeedsAffinity: the wizard's session is a file on the node (FACTS 2.8, 3), so a
// wizard continued on another node starts over.
func TestSetupNeedsAffinity(t *testing.T) {
	db := NewDatabase()
	a := startNode(t, Options{Name: "a", Database: db})
	b := startNode(t, Options{Name: "b", Database: db})
	a.SetHealth(NotConfigured)
	b.SetHealth(NotConfigured)

	r := get(t, a.URL()+"/setup/")
	id := sessionFrom(t, r)
	if r.status != 200 || len(id) != 26 {
		t.Fatalf("/setup/ = %d, session %q", r.status, id)
	}
	cookie := "Cookie: PHPSESSID=" + id
	if r := get(t, a.URL()+"/setup/prerequisites", cookie); r.status != 200 {
		t.Errorf("same node next step = %d, want 200", r.status)
	}
	if !a.HasSession(id) || b.HasSession(id) {
		t.Errorf("HasSession a=%v b=%v, want true false", a.HasSession(id), b.HasSession(id))
	}
	r = get(t, b.URL()+"/setup/database", cookie)
	if r.status != 302 || r.header.Get("Location") != "/setup/" {
		t.Errorf("other node continuing = %d %q, want 302 /setup/", r.status, r.header.Get("Location"))
	}
	if r := get(t, a.URL()+"/setup/install-continuation", cookie); r.status != 302 {
		t.Errorf("skipping steps = %d, want 302", r.status)
	}
	for _, step := range setupSteps[2:] {
		if r := get(t, a.URL()+step, cookie); r.status != 200 {
			t.Fatalf("%s = %d, want 200", step, r.status)
		}
	}
	if a.HealthState() != Connected || b.HealthState() != NotConfigured {
		t.Errorf("after install a=%v b=%v, want connected not-configured", a.HealthState(), b.HealthState())
	}
	if r := get(t, a.URL()+"/setup/"); r.status != 302 || r.header.Get("Location") != "/" {
		t.Errorf("setup on installed node = %d %q, want 302 /", r.status, r.header.Get("Location"))
	}
	if got := a.Count("setup"); got != 8 {
		t.Errorf("Count(setup) = %d, want 8", got)
	}
}

func TestSetupSecureCookieBehindTLSProxy(t *testing.T) {
	n := startNode(t, Options{})
	n.SetHealth(NotConfigured)
	r := get(t, n.URL()+"/setup/", "X-Forwarded-Proto: https")
	if sc := r.header.Get("Set-Cookie"); !strings.Contains(sc, "; secure") {
		t.Errorf("Set-Cookie %q behind trusted https proxy, want secure", sc)
	}
}

func TestStaticAndAdmin(t *testing.T) {
	n := startNode(t, Options{})
	r := get(t, n.URL()+"/")
	if r.status != 302 || r.header.Get("Location") != "/project/" {
		t.Errorf("/ = %d %q, want 302 /project/", r.status, r.header.Get("Location"))
	}
	r = get(t, n.URL()+"/login")
	if r.status != 200 || len(r.body) < 1800 || len(r.body) > 2600 || !strings.Contains(r.header.Get("Set-Cookie"), "PHPSESSID=") {
		t.Errorf("/login = %d, %d bytes, Set-Cookie %q; want 200, about 2 KiB, a session cookie", r.status, len(r.body), r.header.Get("Set-Cookie"))
	}
	if r := get(t, n.URL()+"/login", "Cookie: PHPSESSID=abc"); r.header.Get("Set-Cookie") != "" {
		t.Errorf("/login with a session sets %q, want no cookie", r.header.Get("Set-Cookie"))
	}
	for path, ct := range map[string]string{
		"/build/mosparo-frontend.js": "application/javascript", "/favicon.ico": "image/x-icon", "/robots.txt": "text/plain",
	} {
		r := get(t, n.URL()+path)
		if r.status != 200 || r.header.Get("Content-Type") != ct || r.header.Get("Cache-Control") != "max-age=315360000" {
			t.Errorf("GET %s = %d %q %q", path, r.status, r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
		}
		if r2 := get(t, n.URL()+path, "If-None-Match: "+r.header.Get("ETag")); r2.status != 304 {
			t.Errorf("GET %s If-None-Match = %d, want 304", path, r2.status)
		}
	}
	if r := get(t, n.URL()+"/build/nope.js"); r.status != 404 {
		t.Errorf("unknown build file = %d, want 404", r.status)
	}
	if r := get(t, n.URL()+"/no/such/page", "Accept: application/json"); r.status != 404 || !strings.HasPrefix(r.body, `{"error":true`) {
		t.Errorf("unknown page with json accept = %d %s", r.status, r.body)
	}
	if got := n.Count("static"); got != 7 {
		t.Errorf("Count(static) = %d, want 7", got)
	}
	if got := n.Count("admin"); got != 3 {
		t.Errorf("Count(admin) = %d, want 3", got)
	}
	if got := n.Count("nope"); got != -1 {
		t.Errorf("Count(nope) = %d, want -1", got)
	}
}
