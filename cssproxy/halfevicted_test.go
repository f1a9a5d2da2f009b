package cssproxy

import (
	"testing"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
)

// TestHalfEvictedProjectIsLeftToTheNodes: when _content is in the cache but
// _hash is gone (one key evicted), mosparo answers the unhashed URL with a
// 307 to itself, a redirect loop (FACTS 11.5). The edge serves by URL hash
// only when both keys are present, so it answers neither URL and leaves
// both to a node, with real Redis and memcached written by PHP.
func TestHalfEvictedProjectIsLeftToTheNodes(t *testing.T) {
	for _, backend := range []string{"redis", "memcached"} {
		t.Run(backend, func(t *testing.T) {
			var dsn string
			var dropHash func(id string)
			switch backend {
			case "redis":
				srv := cachetest.StartRedis(t)
				dsn = "redis://" + srv.Addr
				dropHash = func(id string) {
					if got := cachetest.CLI(t, srv.Addr, "DEL", keyPrefix+id+hashSuffix); got != "1" {
						t.Fatalf("DEL %s = %q, want 1", id, got)
					}
				}
			case "memcached":
				srv := cachetest.StartMemcached(t)
				dsn = "memcached://" + srv.Addr
				dropHash = func(id string) {
					c := memcache.New(srv.Addr)
					defer c.Close()
					ns := namespaceOn(t, []*memcache.Client{c}, "")
					if err := c.Delete(ns + keyPrefix + id + hashSuffix); err != nil {
						t.Fatalf("delete %s: %v", id, err)
					}
				}
			}
			id, hash := "3e1f0a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b", testHash(7)
			writeDesign(t, backend, dsn, "php", id, hash, testCSS(id, 3000))
			dropHash(id)
			p := startProxy(t, testConfig(t, backend, dsn, ""), Options{})
			if backend == "redis" {
				waitConnected(t, p)
			}
			for _, path := range []string{"/resources/" + id + "/" + hash + ".css", "/resources/" + id + ".css"} {
				if ok, resp := serve(p, request{path: path}); ok {
					t.Errorf("%s answered at the edge (%d, Location %q) with _hash missing; want it left to a node",
						path, resp.StatusCode(), resp.Header.Peek("Location"))
				}
			}
			if s := p.Stats(); s.Misses == 0 {
				t.Errorf("stats %+v: no miss counted", s)
			}
		})
	}
}
