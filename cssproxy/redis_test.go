package cssproxy

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
)

// cssSizes are the sizes the spec names: below php-memcached's 2000-byte
// compression threshold, around 12 KiB, and over 64 KiB (FastLZ level 2).
var cssSizes = []int{1500, 12 << 10, 70 << 10}

func TestRedisServesWhatPHPWrote(t *testing.T) {
	srv := cachetest.StartRedis(t)
	dsn := "redis://" + srv.Addr
	p := startProxy(t, testConfig(t, "redis", dsn, ""), Options{})
	waitConnected(t, p)
	for i, tc := range []struct {
		marshaller string
		size       int
	}{
		{"php", cssSizes[0]}, {"php", cssSizes[1]}, {"php", cssSizes[2]},
		{"igbinary", cssSizes[0]}, {"igbinary", cssSizes[1]}, {"igbinary", cssSizes[2]},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.marshaller, tc.size), func(t *testing.T) {
			id := fmt.Sprintf("0b6e2a1c-7d3f-4e5a-9c8b-%012x", i)
			hash := testHash(i)
			css := testCSS(id, tc.size)
			writeDesign(t, "redis", dsn, tc.marshaller, id, hash, css)

			ok, resp := serve(p, request{path: "/resources/" + id + "/" + hash + ".css"})
			if !ok {
				t.Fatalf("Serve(hashed) = false, want true; stats %+v", p.Stats())
			}
			if !bytes.Equal(resp.Body(), css) {
				t.Errorf("body: %d bytes, want the %d bytes PHP wrote", len(resp.Body()), len(css))
			}
			ok, resp = serve(p, request{path: "/resources/" + id + ".css", scheme: "https", host: "m.example:8443", prefix: "/mosparo"})
			if !ok {
				t.Fatal("Serve(unhashed) = false, want true")
			}
			want := "https://m.example:8443/mosparo/resources/" + id + "/" + hash + ".css"
			if got := string(resp.Header.Peek("Location")); resp.StatusCode() != 307 || got != want {
				t.Errorf("redirect = %d %q, want 307 %q", resp.StatusCode(), got, want)
			}
		})
	}
}

func TestRedisRewriteSeenAtOnce(t *testing.T) {
	srv := cachetest.StartRedis(t)
	dsn := "redis://" + srv.Addr
	// A long revalidation interval proves freshness comes from tracking.
	p := startProxy(t, testConfig(t, "redis", dsn, "  revalidate_interval: 1h\n"), Options{})
	waitConnected(t, p)
	id := "1c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f"
	css1, css2 := testCSS(id, 12<<10), testCSS(id+"x", 12<<10)

	writeDesign(t, "redis", dsn, "igbinary", id, testHash(1), css1)
	if ok, resp := serve(p, request{path: "/resources/" + id + "/" + testHash(1) + ".css"}); !ok || !bytes.Equal(resp.Body(), css1) {
		t.Fatalf("first read: ok=%v, %d bytes", ok, len(resp.Body()))
	}
	writeDesign(t, "redis", dsn, "php", id, testHash(2), css2)
	// The invalidation push races the PHP process' exit by microseconds;
	// allow a short bound, far below any revalidation.
	deadline := time.Now().Add(time.Second)
	for {
		ok, resp := serve(p, request{path: "/resources/" + id + ".css"})
		if ok && bytes.HasSuffix(resp.Header.Peek("Location"), []byte(testHash(2)+".css")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rewrite: ok=%v Location %q, want the new hash", ok, resp.Header.Peek("Location"))
		}
		time.Sleep(time.Millisecond)
	}
	ok, resp := serve(p, request{path: "/resources/" + id + "/" + testHash(2) + ".css"})
	if !ok || !bytes.Equal(resp.Body(), css2) {
		t.Errorf("new hash: ok=%v, body %d bytes, want the rewritten CSS", ok, len(resp.Body()))
	}
	if ok, _ := serve(p, request{path: "/resources/" + id + "/" + testHash(1) + ".css"}); ok {
		t.Error("old hash still served after rewrite")
	}
}

// TestRedisOutageCostsNothing stops redis-server while requests run: every
// request must either be answered or declined fast (the balancer then asks
// a node), never hang or fail.
func TestRedisOutageCostsNothing(t *testing.T) {
	srv := cachetest.StartRedis(t)
	dsn := "redis://" + srv.Addr
	p := startProxy(t, testConfig(t, "redis", dsn, "  timeout: 25ms\n  breaker: {failures: 2, cooldown: 200ms}\n"), Options{})
	waitConnected(t, p)
	const projects = 20
	hashes := make([]string, projects)
	for i := range projects {
		id := fmt.Sprintf("2c7f3b2d-8e4a-4f6b-ad9c-%012x", i)
		hashes[i] = testHash(i)
		writeDesign(t, "redis", dsn, "igbinary", id, hashes[i], testCSS(id, 3000))
	}
	outageLoad(t, p, hashes, "2c7f3b2d-8e4a-4f6b-ad9c-%012x", 2*outageSlow, srv.Stop, srv.Start)
}

// TestRedisWithoutTracking: client_tracking off revalidates on the
// interval like memcached; also covers a database index in the URL.
func TestRedisWithoutTracking(t *testing.T) {
	srv := cachetest.StartRedis(t)
	dsn := "redis://" + srv.Addr + "/2"
	p := startProxy(t, testConfig(t, "redis", dsn, "  client_tracking: false\n  revalidate_interval: 50ms\n"), Options{})
	waitConnected(t, p)
	if p.backend.invalidates() {
		t.Fatal("tracking on although configured off")
	}
	id := "6c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f"
	writeDesign(t, "redis", dsn, "php", id, testHash(1), testCSS(id, 2500))
	if ok, _ := serve(p, request{path: "/resources/" + id + "/" + testHash(1) + ".css"}); !ok {
		t.Fatal("first read missed")
	}
	css2 := testCSS(id+"z", 2500)
	writeDesign(t, "redis", dsn, "php", id, testHash(2), css2)
	waitFor(t, func() bool {
		ok, resp := serve(p, request{path: "/resources/" + id + "/" + testHash(2) + ".css"})
		return ok && bytes.Equal(resp.Body(), css2)
	})
	// Without tracking, a lost connection does not empty the local copy:
	// it is served up to max_stale (30s) while Redis is down. It was
	// emptied before, leaving nothing to serve while the nodes update.
	srv.Stop()
	waitFor(t, func() bool { return !p.Reachable() }) // the drop is noticed (pings every 50ms)
	if ok, resp := serve(p, request{path: "/resources/" + id + "/" + testHash(2) + ".css"}); !ok || !bytes.Equal(resp.Body(), css2) {
		t.Errorf("with Redis down: Serve = %v, want the held copy", ok)
	}
}

// TestRedisDownAtStart: the balancer may start before Redis; requests fall
// through until Run connects, then hit.
func TestRedisDownAtStart(t *testing.T) {
	srv := cachetest.StartRedis(t)
	srv.Stop()
	dsn := "redis://" + srv.Addr
	p := startProxy(t, testConfig(t, "redis", dsn, ""), Options{})
	id := "7c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f"
	start := time.Now()
	if ok, _ := serve(p, request{path: "/resources/" + id + ".css"}); ok {
		t.Error("Serve = true with Redis down")
	}
	if d := time.Since(start); d > hangGuard {
		t.Errorf("Serve took %s with Redis down", d)
	}
	srv.Start()
	waitConnected(t, p)
	writeDesign(t, "redis", dsn, "igbinary", id, testHash(1), testCSS(id, 1000))
	waitFor(t, func() bool {
		ok, _ := serve(p, request{path: "/resources/" + id + ".css"})
		return ok
	})
}

// TestRedisHungCostsNothing freezes redis-server (SIGSTOP) longer than
// outageSlow: connections stay open and silent, so only the lookup
// timeout and the breaker keep requests from hanging with it.
func TestRedisHungCostsNothing(t *testing.T) {
	srv := cachetest.StartRedis(t)
	dsn := "redis://" + srv.Addr
	// revalidate_interval is also the PING period that notices the silent
	// connection and flushes what can no longer be invalidated.
	p := startProxy(t, testConfig(t, "redis", dsn, "  timeout: 25ms\n  revalidate_interval: 200ms\n  breaker: {failures: 2, cooldown: 200ms}\n"), Options{})
	waitConnected(t, p)
	hashes := make([]string, 10)
	for i := range hashes {
		id := fmt.Sprintf("8c7f3b2d-8e4a-4f6b-ad9c-%012x", i)
		hashes[i] = testHash(i)
		writeDesign(t, "redis", dsn, "php", id, hashes[i], testCSS(id, 3000))
	}
	outageLoad(t, p, hashes, "8c7f3b2d-8e4a-4f6b-ad9c-%012x", 2*outageSlow, srv.Pause, srv.Resume)
	// Thawed with its data: answers come back once reconnected.
	waitFor(t, func() bool {
		ok, _ := serve(p, request{path: fmt.Sprintf("/resources/8c7f3b2d-8e4a-4f6b-ad9c-%012x.css", 0)})
		return ok
	})
}
