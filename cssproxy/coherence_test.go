package cssproxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// nodeAnswer runs Observe as the balancer does after forwarding path to a
// node that answered status with location.
func nodeAnswer(p *Proxy, path string, status int, location string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI(path)
	ctx.Response.SetStatusCode(status)
	if location != "" {
		ctx.Response.Header.Set("Location", location)
	}
	p.Observe(&ctx)
}

// TestCoherenceCheck follows FACTS 11.5: the unhashed 307 is mosparo's
// database hash, the cache may hold another one (project deleted, flag
// turned off). One request per interval goes to a node; while the node
// disagrees, the edge leaves the unhashed URL to the nodes.
func TestCoherenceCheck(t *testing.T) {
	p, fb, clk := newFakeProxy(t, "  coherence_interval: 10s\n")
	fb.set(tid, testCSS(tid, 4096), thash)
	unhashed := "/resources/" + tid + ".css"
	other := fmt.Sprintf("%064x", 7)
	loc := func(h string) string { return "https://m.example/resources/" + tid + "/" + h + ".css" }
	step := func(name string, wantEdge bool) {
		t.Helper()
		if ok, _ := serve(p, request{path: unhashed}); ok != wantEdge {
			t.Fatalf("%s: answered at the edge = %v, want %v; stats %+v", name, ok, wantEdge, p.Stats())
		}
	}

	step("first request is the check", false)
	nodeAnswer(p, unhashed, 307, loc(thash))
	step("agreeing node: edge answers", true)
	step("within the interval: still the edge", true)

	clk.Advance(11 * time.Second)
	step("next interval: check again", false)
	nodeAnswer(p, unhashed, 307, loc(other)) // the database moved on, the cache did not
	step("disagreeing: left to the nodes", false)
	step("still disagreeing", false)
	if st := p.Stats(); st.Disagreements != 1 || st.Disagreeing != 1 || st.CoherenceChecks != 2 {
		t.Errorf("stats %+v, want 2 checks, 1 disagreement, 1 project disagreeing", st)
	}
	// The hashed URL the cache holds is still mosparo's own answer (it
	// serves by URL hash from the cache, FACTS 5.3).
	if ok, _ := serve(p, request{path: "/resources/" + tid + "/" + thash + ".css"}); !ok {
		t.Error("hashed URL with the cached hash not answered")
	}

	// mosparo regenerates the cache: it agrees again without waiting.
	fb.set(tid, testCSS(tid, 4096), other)
	p.store.invalidate(projectIDOf(t, tid))
	step("cache caught up", true)

	clk.Advance(11 * time.Second)
	step("check", false)
	nodeAnswer(p, unhashed, 404, "") // project deleted; its keys stay (FACTS 9.6)
	step("deleted project: left to the nodes", false)
	clk.Advance(11 * time.Second)
	step("check after deletion", false)
	nodeAnswer(p, unhashed, 404, "")
	step("still gone", false)

	clk.Advance(11 * time.Second)
	step("check", false)
	// A draining node's 302 to the finalize page (FACTS 11.2), an error,
	// or a redirect for another project say nothing about the hash.
	nodeAnswer(p, unhashed, 302, "https://m.example/administration/update/finalize")
	nodeAnswer(p, unhashed, 503, "")
	nodeAnswer(p, unhashed, 307, "https://m.example/resources/"+"1c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f/"+other+".css")
	step("unchanged verdict (gone)", false)
}

func TestCoherenceOff(t *testing.T) {
	p, fb, _ := newFakeProxy(t, "  coherence_interval: 0s\n")
	fb.set(tid, testCSS(tid, 4096), thash)
	nodeAnswer(p, "/resources/"+tid+".css", 404, "")
	if ok, _ := serve(p, request{path: "/resources/" + tid + ".css"}); !ok {
		t.Error("with the check off the edge must answer")
	}
}

func TestLocationHash(t *testing.T) {
	id := projectIDOf(t, tid)
	for _, tc := range []struct {
		loc, want string
		ok        bool
	}{
		{"https://h/resources/" + tid + "/" + thash + ".css", thash, true},
		{"/p/resources/" + tid + "/abc.css?x=1", "abc", true},
		{"/resources/" + tid + "/abc.css#f", "abc", true},
		{"/resources/" + tid + ".css", "", false},
		{"/resources/1c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f/abc.css", "", false},
		{"/resources/" + tid + "/.css", "", false},
		{tid + "/abc.css", "", false},
		{"x" + tid + "/abc.css", "", false},
		{"", "", false},
		{".css", "", false},
	} {
		got, ok := locationHash([]byte(tc.loc), id)
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("locationHash(%q) = %q, %v, want %q, %v", tc.loc, got, ok, tc.want, tc.ok)
		}
	}
}

func projectIDOf(t *testing.T, s string) projectID {
	t.Helper()
	id, ok := parseProjectID([]byte(s))
	if !ok {
		t.Fatalf("bad uuid %q", s)
	}
	return id
}
