package mosparoemu

import (
	"strings"
	"testing"
)

// TestVersionUpdateAndFinalize plays a rolling update on a cluster of two nodes sharing one
// installed version (FACTS 11.3): new code on n1 makes n1 drain; finalize on n1
// writes its version, after which n2 on the old code drains; finalize on n2 writes the old
// version back.
func TestVersionUpdateAndFinalize(t *testing.T) {
	db := NewDatabase()
	n1 := startNode(t, Options{Name: "n1", Database: db})
	n2 := startNode(t, Options{Name: "n2", Database: db})
	const js = "/build/mosparo-frontend.js"
	script := get(t, n1.URL()+js).body
	if s2 := get(t, n2.URL()+js).body; s2 != script {
		t.Fatalf("built files of one version differ: %.80q vs %.80q", script, s2)
	}
	entrypoints := get(t, n1.URL()+"/build/entrypoints.json")
	etag := get(t, n1.URL()+js).header.Get("ETag")

	n1.SetVersion("1.5.5")
	if got := get(t, n1.URL()+js); got.body == script || got.header.Get("ETag") == etag {
		t.Errorf("%s and its ETag did not change with the version", js)
	}
	// Encore without versioning: the entry points name the same files in every release.
	if got := get(t, n1.URL()+"/build/entrypoints.json"); got.body != entrypoints.body || got.header.Get("ETag") == entrypoints.header.Get("ETag") {
		t.Errorf("entrypoints.json: body changed %v, ETag kept %v; want the same text, a new mtime",
			got.body != entrypoints.body, got.header.Get("ETag") == entrypoints.header.Get("ETag"))
	}
	// A patch release with the same front-end sources builds the same files.
	n2.SetVersionAssets("1.5.3", "1.5.4")
	if got := get(t, n2.URL()+js).body; got != script {
		t.Errorf("1.5.3 with 1.5.4's assets serves other files")
	}
	n2.SetVersion("1.5.4")
	if got := n1.effectiveHealth(); got != UpdateNotFinished {
		t.Errorf("n1 on new code: %v, want update-not-finished", got)
	}
	if r := get(t, n1.URL()+"/api/v1/health/check"); !strings.Contains(r.body, "update-not-finished") {
		t.Errorf("n1 health: %s", r.body)
	}
	if got := n2.effectiveHealth(); got != Connected {
		t.Errorf("n2 on old code before finalize: %v, want connected", got)
	}
	r := get(t, n1.URL()+"/administration/update/finalize")
	if r.status != 302 || r.header.Get("Location") != "/administration/update/finalize/process?oldVersion=1.5.4" {
		t.Errorf("finalize on n1 = %d %q", r.status, r.header.Get("Location"))
	}
	if db.InstalledVersion() != "1.5.5" || n1.Finalized() != 1 {
		t.Errorf("after finalize on n1: installed %q, finalized %d", db.InstalledVersion(), n1.Finalized())
	}
	if n1.effectiveHealth() != Connected || n2.effectiveHealth() != UpdateNotFinished {
		t.Errorf("after finalize: n1 %v, n2 %v; want connected, update-not-finished", n1.effectiveHealth(), n2.effectiveHealth())
	}
	if r := get(t, n1.URL()+"/administration/update/finalize"); r.status != 302 || r.header.Get("Location") != "/project/" {
		t.Errorf("finalize again on n1 = %d %q, want 302 to the dashboard", r.status, r.header.Get("Location"))
	}
	// The old-code node writes its own version back.
	get(t, n2.URL()+"/administration/update/finalize")
	if db.InstalledVersion() != "1.5.4" || n1.effectiveHealth() != UpdateNotFinished {
		t.Errorf("finalize on old n2: installed %q, n1 %v", db.InstalledVersion(), n1.effectiveHealth())
	}
}

// TestFrontControllerPrefixes checks which spellings reach which route (FACTS 11.1).
func TestFrontControllerPrefixes(t *testing.T) {
	nginx := startNode(t, Options{Name: "nginx"})
	apache := startNode(t, Options{Name: "apache", ScriptName: ScriptApacheRoot})
	tests := []struct {
		node *Node
		path string
		want string // route counted
	}{
		{nginx, "/index.php/api/v1/health/check", "health"},
		{nginx, "/%69ndex.php/api/v1/health/check", "health"},
		{nginx, "/index%2ephp/cron-jobs/execute", "cron"},
		{nginx, "/index.php/resources/" + DemoUUID + ".css", "resources-css"},
		{nginx, "/index.php/build/mosparo-frontend.js", "not-found"},
		{nginx, "/INDEX.PHP/cron-jobs/execute", "not-found"},
		{nginx, "/public/cron-jobs/execute", "not-found"},
		{nginx, "/index.php/index.php/cron-jobs/execute", "not-found"},
		{apache, "/public/cron-jobs/execute", "cron"},
		{apache, "/public/index.php/api/v1/health/check", "health"},
		{apache, "/x/public/index.php/cron-jobs/execute", "cron"},
		{apache, "/index.php1234567/cron-jobs/execute", "cron"},
		{apache, "/cron-jobs/execute", "cron"},
	}
	for _, tt := range tests {
		before := tt.node.Count(tt.want)
		get(t, tt.node.URL()+tt.path)
		if tt.node.Count(tt.want) != before+1 {
			t.Errorf("%s %s did not reach %s", tt.node.Name(), tt.path, tt.want)
		}
	}
}

func TestPathInfo(t *testing.T) {
	tests := []struct{ uri, script, want string }{
		{"/login", ScriptNginx, "/login"},
		{"/index.php", ScriptNginx, "/"},
		{"/index.php/login?x=1", ScriptNginx, "/login"},
		{"/%69ndex.php/login", ScriptNginx, "/login"},
		{"/index.phplogin", ScriptNginx, "login"},
		{"/public/login", ScriptApacheRoot, "/login"},
		{"/public/index.php/login", ScriptApacheRoot, "/login"},
		{"/a/public/index.php/login", ScriptApacheRoot, "/login"},
		{"/login%2Fx", ScriptNginx, "/login/x"},
	}
	for _, tt := range tests {
		if got := string(PathInfo([]byte(tt.uri), tt.script)); got != tt.want {
			t.Errorf("PathInfo(%q, %q) = %q, want %q", tt.uri, tt.script, got, tt.want)
		}
	}
}
