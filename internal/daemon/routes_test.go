package daemon

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/valyala/fasthttp"
)

// raw sends one request with target written byte for byte (clients
// normalize paths; an attacker does not) and returns the answer.
func raw(t *testing.T, c *cluster, method, target, headers, body string) *fasthttp.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(c.lb, "http://"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if body != "" {
		headers += fmt.Sprintf("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n", len(body))
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: mosparo.example\r\nConnection: close\r\n%s\r\n%s", method, target, headers, body)
	resp := &fasthttp.Response{}
	if method == "HEAD" {
		resp.SkipBody = true
	}
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

var spellings = []string{"", "/index.php", "/%69ndex.php", "/index%2ephp", "/public", "/public/index.php",
	"/index.php/public/index.php/index.php", "/a/../index.php/."}

// TestFrontControllerSpellingsKeepGuardsAndPools: every spelling of the
// health check and the web cron that reaches the controller is refused from
// an address not listed, and every spelling of a route reaches its pool with
// the canonical path (FACTS 11.1).
func TestFrontControllerSpellingsKeepGuardsAndPools(t *testing.T) {
	nodes := startNodes(t, 3)
	c := startCluster(t, nodes, `
edge: {allow_cron_from: ["192.0.2.1"], allow_health_from: ["192.0.2.1"]}
balancing:
  policy: round_robin
  pools: {admin: [n1], setup: [n1], cron: [n1], api: [n2], frontend: [n2], resources: [n3], static: [n3], health: [n2]}
`)
	for _, p := range spellings {
		for _, route := range []string{"/api/v1/health/check", "/api/v1/health/check/", "/cron-jobs/execute?key=" + mosparoemu.DemoCronKey} {
			if resp := raw(t, c, "GET", p+route, "", ""); resp.StatusCode() != 403 || len(resp.Header.Peek("X-Mosparo-Node")) != 0 {
				t.Errorf("GET %s%s from a refused address = %d from node %q, want the edge's 403", p, route, resp.StatusCode(), resp.Header.Peek("X-Mosparo-Node"))
			}
		}
	}
	for _, n := range nodes {
		if got := n.Count("cron"); got != 0 {
			t.Errorf("%s ran the web cron %d times for a refused client", n.Name(), got)
		}
	}
	// Paths Symfony would cut differently per web server are refused.
	for _, target := range []string{"/x/public/index.php/cron-jobs/execute", "/index.php1234567/cron-jobs/execute", "/INDEX.PHP/api/v1/health/check"} {
		if resp := raw(t, c, "GET", target, "", ""); resp.StatusCode() != 404 || len(resp.Header.Peek("X-Mosparo-Node")) != 0 {
			t.Errorf("GET %s = %d from %q, want 404 at the edge", target, resp.StatusCode(), resp.Header.Peek("X-Mosparo-Node"))
		}
	}
	form := "publicKey=" + mosparoemu.DemoPublicKey + "&pageTitle=t&pageUrl=https%3A%2F%2Fexample.com%2F"
	for _, p := range spellings {
		for _, tt := range []struct{ method, route, body, node string }{
			{"POST", "/api/v1/frontend/request-submit-token", form, "n2"},
			{"GET", "/resources/" + mosparoemu.DemoUUID + ".css", "", "n3"},
			{"GET", "/build/mosparo-frontend.js", "", "n3"},
			{"GET", "/login", "", "n1"},
		} {
			before := nodeByName(nodes, tt.node).Requests(tt.method, tt.route)
			resp := raw(t, c, tt.method, p+tt.route, "", tt.body)
			if node := string(resp.Header.Peek("X-Mosparo-Node")); node != tt.node || resp.StatusCode() >= 400 {
				t.Errorf("%s %s%s = %d from %q, want an answer from %s", tt.method, p, tt.route, resp.StatusCode(), node, tt.node)
			}
			if nodeByName(nodes, tt.node).Requests(tt.method, tt.route) != before+1 {
				t.Errorf("%s %s%s did not reach %s as %s", tt.method, p, tt.route, tt.node, tt.route)
			}
		}
	}
}

func nodeByName(nodes []*mosparoemu.Node, name string) *mosparoemu.Node {
	for _, n := range nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// TestEdgeCSSForEverySpelling: the CSS edge answers every spelling of the
// resource URLs, and its 307 carries the Location a node sends, with a
// trusted proxy's X-Forwarded-Proto "on" and the prefix read as Symfony
// reads them (FACTS 11.1, 11.7). The cache holds a hash the node does not
// know, so the coherence check (TestEdgeCSSCoherenceAndCacheHealth) is off.
func TestEdgeCSSForEverySpelling(t *testing.T) {
	redis := cachetest.StartRedis(t)
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, fmt.Sprintf("trusted_proxies: [\"127.0.0.1/32\"]\ncss_cache: {backend: redis, url: \"redis://%s/0\", coherence_interval: 0s}\n", redis.Addr))
	css := ".mosparo__" + mosparoemu.DemoUUID + "{color:red}"
	hash := cssHash(css)
	storeProjectCSS(t, redis.Addr, css, hash)
	hashed := "/resources/" + mosparoemu.DemoUUID + "/" + hash + ".css"
	var resp *fasthttp.Response
	if !eventually(5*time.Second, func() bool { resp = raw(t, c, "GET", hashed, "", ""); return resp.StatusCode() == 200 && atEdge(resp) }) {
		t.Fatalf("hashed CSS never served at the edge: %d", resp.StatusCode())
	}
	for _, p := range spellings {
		resp := raw(t, c, "GET", p+hashed, "", "")
		if resp.StatusCode() != 200 || len(resp.Header.Peek("X-Mosparo-Node")) != 0 || string(resp.Body()) != css {
			t.Errorf("GET %s%s = %d from node %q, want the edge's 200", p, hashed, resp.StatusCode(), resp.Header.Peek("X-Mosparo-Node"))
		}
	}
	headers := "X-Forwarded-Proto: on\r\nX-Forwarded-Host: Forms.Example:443\r\nX-Forwarded-Prefix: /mosparo/, /x\r\n"
	want := "https://forms.example/mosparo" + hashed
	for _, p := range spellings {
		resp := raw(t, c, "GET", p+"/resources/"+mosparoemu.DemoUUID+".css", headers, "")
		if resp.StatusCode() != 307 || string(resp.Header.Peek("Location")) != want || len(resp.Header.Peek("X-Mosparo-Node")) != 0 {
			t.Errorf("unhashed %s: %d Location %q from node %q, want the edge's 307 to %s", p, resp.StatusCode(), resp.Header.Peek("Location"), resp.Header.Peek("X-Mosparo-Node"), want)
		}
	}
}

// TestDrainingNodesGetNoGETTheyRedirect: with an update pending on every
// node, the GETs a draining node would answer with 302 to the finalize page
// get a clear 503 from the LB, while what draining nodes answer themselves
// still reaches them (FACTS 11.2).
func TestDrainingNodesGetNoGETTheyRedirect(t *testing.T) {
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, "edge: {allow_cron_from: [\"127.0.0.1\"]}\nbalancing: {policy: round_robin}\n")
	nodes[1].SetVersion("1.5.5")
	waitState(t, c, "n2", "draining")
	// With n1 up, n2 gets nothing but the update routes.
	if got := spread(t, c, "GET", "/resources/"+mosparoemu.DemoUUID+".css", "", 6); got["n1:307"] != 6 {
		t.Errorf("CSS with n1 up: %v, want all on n1", got)
	}
	for _, n := range nodes {
		n.SetVersion("1.5.5")
	}
	waitState(t, c, "n1", "draining")
	for _, path := range []string{"/resources/" + mosparoemu.DemoUUID + ".css", "/resources/logo.svg", "/login", "/setup/",
		"/api/v1/statistic/by-date", "/project/"} {
		if got := spread(t, c, "GET", path, "", 4); got[":503"] != 4 {
			t.Errorf("GET %s with every node draining: %v, want 503 from the LB", path, got)
		}
	}
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/api/v1/frontend/request-submit-token", frontendForm},
		{"GET", "/cron-jobs/execute?key=wrong", ""},
		{"GET", "/build/mosparo-frontend.js", ""},
		{"HEAD", "/login", ""},
		{"GET", "/administration/update/finalize", ""},
	} {
		code, node, err := do(t, &fasthttp.Client{}, tt.method, c.lb+tt.path, tt.body)
		if err != nil || node == "" || code == 503 {
			t.Errorf("%s %s with every node draining = %d from %q, %v; want a node's answer", tt.method, tt.path, code, node, err)
		}
	}
}

// TestFreshClusterServesStaticFromSetupNodes: before installation the setup
// wizard's CSS and JS come from the setup nodes (FACTS 11.4).
func TestFreshClusterServesStaticFromSetupNodes(t *testing.T) {
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, "")
	for _, n := range nodes {
		n.SetHealth(mosparoemu.NotConfigured)
	}
	waitState(t, c, "n1", "setup")
	waitState(t, c, "n2", "setup")
	for _, path := range []string{"/build/mosparo-frontend.js", "/build/mosparo-frontend.css", "/favicon.ico", "/robots.txt"} {
		if got := spread(t, c, "GET", path, "", 2); got["n1:200"]+got["n2:200"] != 2 {
			t.Errorf("GET %s on a fresh cluster: %v, want 200 from a setup node", path, got)
		}
	}
	if got := spread(t, c, "POST", "/api/v1/frontend/request-submit-token", frontendForm, 2); got[":503"] != 2 {
		t.Errorf("frontend on a fresh cluster: %v, want 503", got)
	}
}
