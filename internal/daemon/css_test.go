package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/cssproxy"
	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"github.com/valyala/fasthttp"
)

// redisSet writes one key with the raw protocol, the way a node's
// RedisAdapter stores a PHP-serialized string (FACTS 5.4).
func redisSet(t *testing.T, addr, key, value string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(value), value)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("SET %s: %q %v", key, line, err)
	}
}

func phpString(s string) string { return fmt.Sprintf("s:%d:\"%s\";", len(s), s) }

func TestEdgeCSSThroughTheLB(t *testing.T) {
	redis := cachetest.StartRedis(t)
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, fmt.Sprintf("css_cache: {backend: redis, url: \"redis://%s/0\"}\n", redis.Addr))
	css := ".mosparo__" + mosparoemu.DemoUUID + "{color:red}" + strings.Repeat(".x{margin:0}", 1000)
	hash := cssHash(css)
	storeProjectCSS(t, redis.Addr, css, hash)

	cl := &fasthttp.Client{}
	get := func(path string) *fasthttp.Response { return hostGet(t, c, cl, path) }
	var resp *fasthttp.Response
	if !eventually(5*time.Second, func() bool {
		resp = get("/resources/" + mosparoemu.DemoUUID + "/" + hash + ".css")
		return resp.StatusCode() == 200 && atEdge(resp)
	}) {
		t.Fatalf("hashed CSS never served at the edge: %d from node %q", resp.StatusCode(), resp.Header.Peek("X-Mosparo-Node"))
	}
	if string(resp.Body()) != css {
		t.Errorf("edge CSS differs from what the node wrote (%d vs %d bytes)", len(resp.Body()), len(css))
	}
	if got := string(resp.Header.ContentType()); !strings.HasPrefix(got, "text/css") {
		t.Errorf("Content-Type = %q, want text/css", got)
	}
	// The node's database agrees with the cache: after the first unhashed
	// request (the coherence check, answered by the node) the edge answers.
	if err := nodes[0].SetProjectCSS(mosparoemu.DemoUUID, []byte(css)); err != nil {
		t.Fatal(err)
	}
	wantLoc := "http://mosparo.example/resources/" + mosparoemu.DemoUUID + "/" + hash + ".css"
	for i, fromNode := range []bool{true, false, false} {
		resp = get("/resources/" + mosparoemu.DemoUUID + ".css")
		if resp.StatusCode() != 307 || string(resp.Header.Peek("Location")) != wantLoc {
			t.Errorf("unhashed CSS #%d: %d Location %q, want 307 %q", i, resp.StatusCode(), resp.Header.Peek("Location"), wantLoc)
		}
		if got := len(resp.Header.Peek("X-Mosparo-Node")) != 0; got != fromNode {
			t.Errorf("unhashed CSS #%d answered by a node = %v, want %v", i, got, fromNode)
		}
	}
	// A hash the cache does not hold goes to a node unchanged.
	resp = get("/resources/" + mosparoemu.DemoUUID + "/" + strings.Repeat("0", 64) + ".css")
	if len(resp.Header.Peek("X-Mosparo-Node")) == 0 {
		t.Error("a stale hash was answered at the edge; it must reach a node")
	}
	// The cache going away costs no error: the node answers.
	redis.Stop()
	for i := 0; i < 20; i++ {
		if resp = get("/resources/" + mosparoemu.DemoUUID + ".css"); resp.StatusCode() >= 500 {
			t.Fatalf("with Redis stopped: %d", resp.StatusCode())
		}
	}
	if !strings.Contains(statusJSON(t, c.d), "redis") {
		t.Error("status has no css_cache section")
	}
}

// TestEdgeCSSCoherenceAndCacheHealth runs the whole LB against Redis and a
// node whose database hash differs from the cached one (FACTS 11.5: a
// deleted project or the shared-cache flag turned off leaves stale keys).
// The edge must keep sending the unhashed URL to the node, count the
// disagreement in /metrics, answer again once the cache agrees, and show
// the cache going down in /status and /metrics (FACTS 11.9).
func TestEdgeCSSCoherenceAndCacheHealth(t *testing.T) {
	redis := cachetest.StartRedis(t)
	nodes := startNodes(t, 1)
	c := startCluster(t, nodes, fmt.Sprintf("css_cache: {backend: redis, url: \"redis://%s\", revalidate_interval: 100ms, coherence_interval: 1h}\n", redis.Addr))
	nodeCSS, nodeHash, _ := nodes[0].ProjectCSS(mosparoemu.DemoUUID)
	stale := ".mosparo__" + mosparoemu.DemoUUID + "{color:blue}"
	storeProjectCSS(t, redis.Addr, stale, cssHash(stale))

	cl := &fasthttp.Client{}
	get := func(path string) *fasthttp.Response { return hostGet(t, c, cl, path) }
	// Wait until the edge reads the cache (its client connects in the
	// background): the stale hashed URL is then answered at the edge.
	staleURL := "/resources/" + mosparoemu.DemoUUID + "/" + cssHash(stale) + ".css"
	if !eventually(10*time.Second, func() bool { resp := get(staleURL); return resp.StatusCode() == 200 && atEdge(resp) }) {
		t.Fatal("the edge never read the cache")
	}
	unhashed := "/resources/" + mosparoemu.DemoUUID + ".css"
	nodeLoc := "http://mosparo.example/resources/" + mosparoemu.DemoUUID + "/" + nodeHash + ".css"
	for i := range 5 {
		resp := get(unhashed)
		if string(resp.Header.Peek("Location")) != nodeLoc || len(resp.Header.Peek("X-Mosparo-Node")) == 0 {
			t.Fatalf("unhashed #%d: %d %q from node %q, want the node's redirect %q",
				i, resp.StatusCode(), resp.Header.Peek("Location"), resp.Header.Peek("X-Mosparo-Node"), nodeLoc)
		}
	}
	if f := scrape(t, c)["mosparo_lb_css_cache_disagreements_total"]; f == nil || sum(f) < 1 {
		t.Errorf("disagreements_total = %v, want >= 1", f)
	}

	// mosparo regenerates the cache: the edge answers the unhashed URL again.
	storeProjectCSS(t, redis.Addr, string(nodeCSS), nodeHash)
	if !eventually(10*time.Second, func() bool {
		resp := get(unhashed)
		return string(resp.Header.Peek("Location")) == nodeLoc && atEdge(resp)
	}) {
		t.Fatal("the edge never answered the unhashed URL after the cache caught up")
	}

	up := func() float64 {
		f := scrape(t, c)["mosparo_lb_css_cache_up"]
		if f == nil {
			return -1
		}
		return sum(f)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		if !eventually(15*time.Second, cond) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	waitUntil("css_cache_up 1", func() bool { return up() == 1 })
	redis.Stop()
	waitUntil("css_cache_up 0", func() bool { return up() == 0 })
	if b, err := json.Marshal(c.d.Snapshot()); err != nil || !strings.Contains(string(b), `"reachable":false`) || !strings.Contains(string(b), `"down_since":`) {
		t.Errorf("/status while Redis is down has no reachable:false and down_since: %s %v", b, err)
	}
	if c.d.cssReachable() {
		t.Error("VRRP's track_css_cache input says reachable while Redis is down")
	}
	redis.Start()
	waitUntil("css_cache_up 1 again", func() bool { return up() == 1 })
	if !c.d.cssReachable() {
		t.Error("VRRP's track_css_cache input says unreachable after Redis came back")
	}
}

// TestEdgeCSSWhileEveryNodeIsUpdating: with every node draining for an
// unfinished update, the nodes would answer CSS with a 302 to the finalize
// page (FACTS 11.2); the edge serves what the cache holds instead, stale
// entries and unhashed URLs due for a coherence check included, and a
// project it does not hold gets the LB's 503, never a node's 302.
func TestEdgeCSSWhileEveryNodeIsUpdating(t *testing.T) {
	redis := cachetest.StartRedis(t)
	nodes := startNodes(t, 2)
	c := startCluster(t, nodes, fmt.Sprintf("css_cache: {backend: redis, url: \"redis://%s\", client_tracking: false, "+
		"revalidate_interval: 100ms, max_stale: 200ms, coherence_interval: 1s}\n", redis.Addr))
	nodeCSS, nodeHash, _ := nodes[0].ProjectCSS(mosparoemu.DemoUUID)
	storeProjectCSS(t, redis.Addr, string(nodeCSS), nodeHash)
	cl := &fasthttp.Client{}
	get := func(path string) (int, string, string, string) {
		resp := hostGet(t, c, cl, path)
		return resp.StatusCode(), string(resp.Header.Peek("X-Mosparo-Node")), string(resp.Header.Peek("Location")), string(resp.Body())
	}
	hashed := "/resources/" + mosparoemu.DemoUUID + "/" + nodeHash + ".css"
	if !eventually(10*time.Second, func() bool { code, node, _, _ := get(hashed); return code == 200 && node == "" }) {
		t.Fatal("the edge never read the cache")
	}
	for _, n := range nodes {
		n.SetVersion("1.6.0")
	}
	waitState(t, c, "n1", "draining")
	waitState(t, c, "n2", "draining")

	unhashed := "/resources/" + mosparoemu.DemoUUID + ".css"
	wantLoc := "http://mosparo.example" + hashed
	css := func() cssproxy.Stats { return *c.d.Snapshot().CSSCache }
	// until asks for path until done says the awaited event happened; every
	// answer on the way must pass check (no fixed sleep: a check's event,
	// not a duration, ends each wait).
	until := func(what, path string, check func(code int, node, loc, body string) bool, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !done() {
			if code, node, loc, body := get(path); !check(code, node, loc, body) {
				t.Fatalf("%s: %s = %d from %q (Location %q, %d bytes)", what, path, code, node, loc, len(body))
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s; css_cache %+v", what, css())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Two coherence checks come due (the first at once, the second
	// coherence_interval later); each due request, like every other, gets
	// the edge's 307.
	edge307 := func(code int, node, loc, _ string) bool { return code == 307 && node == "" && loc == wantLoc }
	for i := range 2 {
		checks := css().CoherenceChecks
		until(fmt.Sprintf("unhashed while updating, coherence check #%d", i), unhashed, edge307,
			func() bool { return css().CoherenceChecks > checks })
	}
	// Redis gone: once the entry is past max_stale the edge serves it as
	// stale (counted), the same CSS as before.
	redis.Stop()
	edgeCSS := func(code int, node, _, body string) bool { return code == 200 && node == "" && body == string(nodeCSS) }
	stale := css().Stale
	until("stale hashed CSS while updating", hashed, edgeCSS, func() bool { return css().Stale > stale })
	other := "/resources/00000000-0000-4000-8000-000000000000.css"
	if code, node, _, body := get(other); code != 503 || node != "" || !strings.Contains(body, "not finalized") {
		t.Errorf("uncached project while updating = %d from %q: %s, want the LB's 503", code, node, body)
	}
	if b, _ := json.Marshal(c.d.Snapshot()); !strings.Contains(string(b), `"stale_while_updating":`) || strings.Contains(string(b), `"stale_while_updating":0`) {
		t.Errorf("/status css_cache has no stale_while_updating count: %s", b)
	}
}
