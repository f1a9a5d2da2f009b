package cssproxy

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
)

func TestMemcachedServesWhatPHPWrote(t *testing.T) {
	srv := cachetest.StartMemcached(t)
	dsn := "memcached://" + srv.Addr
	p := startProxy(t, testConfig(t, "memcached", dsn, ""), Options{})
	raw := memcache.New(srv.Addr)
	defer raw.Close()
	i := 0
	for _, compression := range []string{"fastlz", "zlib"} {
		for _, marshaller := range []string{"php", "igbinary"} {
			for _, size := range cssSizes {
				i++
				t.Run(fmt.Sprintf("%s/%s/%d", compression, marshaller, size), func(t *testing.T) {
					id := fmt.Sprintf("0b6e2a1c-7d3f-4e5a-9c8b-%012x", i)
					hash := testHash(i)
					css := testCSS(id, size)
					writeDesign(t, "memcached", dsn, marshaller, id, hash, css,
						"-d", "memcached.compression_type="+compression)
					wantFlags := map[string]uint32{"fastlz": 0x50, "zlib": 0x30}[compression]
					if size < 2000 {
						wantFlags = 0
					}
					assertStoredFlags(t, raw, id, wantFlags)

					ok, resp := serve(p, request{path: "/resources/" + id + "/" + hash + ".css"})
					if !ok {
						t.Fatalf("Serve(hashed) = false, want true; stats %+v", p.Stats())
					}
					if !bytes.Equal(resp.Body(), css) {
						t.Errorf("body: %d bytes, want the %d bytes PHP wrote", len(resp.Body()), len(css))
					}
					ok, resp = serve(p, request{path: "/resources/" + id + ".css", scheme: "http", host: "lb"})
					want := "http://lb/resources/" + id + "/" + hash + ".css"
					if got := string(resp.Header.Peek("Location")); !ok || got != want {
						t.Errorf("redirect = %v %q, want %q", ok, got, want)
					}
				})
			}
		}
	}
}

// assertStoredFlags checks the php-memcached flags word under the current
// namespace version, so the test really covers FastLZ, zlib and plain.
func assertStoredFlags(t *testing.T, c *memcache.Client, id string, want uint32) {
	t.Helper()
	ns, err := c.Get(memcachedNamespaceKey)
	if err != nil {
		t.Fatalf("get %q: %v", memcachedNamespaceKey, err)
	}
	v, err := decodePHPString(ns.Value, 64)
	if err != nil {
		t.Fatalf("namespace version %q: %v", ns.Value, err)
	}
	it, err := c.Get(string(v) + "design_" + id + "_content")
	if err != nil {
		t.Fatalf("get content: %v", err)
	}
	if it.Flags != want {
		t.Errorf("stored flags = %#x, want %#x", it.Flags, want)
	}
}

func TestMemcachedRewriteSeenWithinInterval(t *testing.T) {
	srv := cachetest.StartMemcached(t)
	dsn := "memcached://" + srv.Addr
	const interval = 200 * time.Millisecond
	p := startProxy(t, testConfig(t, "memcached", dsn, "  revalidate_interval: 200ms\n"), Options{})
	id := "1c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f"
	css1, css2 := testCSS(id, 12<<10), testCSS(id+"x", 12<<10)
	writeDesign(t, "memcached", dsn, "igbinary", id, testHash(1), css1)
	if ok, resp := serve(p, request{path: "/resources/" + id + "/" + testHash(1) + ".css"}); !ok || !bytes.Equal(resp.Body(), css1) {
		t.Fatalf("first read: ok=%v, %d bytes", ok, len(resp.Body()))
	}
	writeDesign(t, "memcached", dsn, "igbinary", id, testHash(2), css2)
	written := time.Now()
	for {
		ok, resp := serve(p, request{path: "/resources/" + id + ".css"})
		if ok && bytes.HasSuffix(resp.Header.Peek("Location"), []byte(testHash(2)+".css")) {
			break
		}
		// One interval until the entry is stale, then one background
		// lookup; the 30 s are a hang guard only (a loaded, shared CI
		// machine may take seconds).
		if time.Since(written) > interval+30*time.Second {
			t.Fatalf("rewrite not seen %s after it was written (interval %s)", time.Since(written), interval)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("rewrite seen after %s", time.Since(written))
	ok, resp := serve(p, request{path: "/resources/" + id + "/" + testHash(2) + ".css"})
	if !ok || !bytes.Equal(resp.Body(), css2) {
		t.Errorf("new hash: ok=%v, body %d bytes, want the rewritten CSS", ok, len(resp.Body()))
	}
}

func TestMemcachedOutageCostsNothing(t *testing.T) {
	srv := cachetest.StartMemcached(t)
	dsn := "memcached://" + srv.Addr
	p := startProxy(t, testConfig(t, "memcached", dsn,
		"  timeout: 25ms\n  revalidate_interval: 50ms\n  max_stale: 200ms\n  breaker: {failures: 2, cooldown: 200ms}\n"), Options{})
	const projects = 20
	hashes := make([]string, projects)
	for i := range projects {
		id := fmt.Sprintf("3c7f3b2d-8e4a-4f6b-ad9c-%012x", i)
		hashes[i] = testHash(i)
		writeDesign(t, "memcached", dsn, "php", id, hashes[i], testCSS(id, 3000))
	}
	outageLoad(t, p, hashes, "3c7f3b2d-8e4a-4f6b-ad9c-%012x", 2*outageSlow, srv.Stop, srv.Start)
}

// TestMemcachedNamespaceClear: PHP's clear() moves the namespace version
// under ":", orphaning every earlier key; the proxy must follow it.
func TestMemcachedNamespaceClear(t *testing.T) {
	srv := cachetest.StartMemcached(t)
	dsn := "memcached://" + srv.Addr
	p := startProxy(t, testConfig(t, "memcached", dsn, "  revalidate_interval: 50ms\n"), Options{})
	id := "4c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f"
	css1, css2 := testCSS(id, 3000), testCSS(id+"y", 3000)
	writeDesign(t, "memcached", dsn, "php", id, testHash(1), css1)
	if ok, _ := serve(p, request{path: "/resources/" + id + "/" + testHash(1) + ".css"}); !ok {
		t.Fatal("first read missed")
	}
	clearAndWriteDesign(t, "memcached", dsn, "php", id, testHash(2), css2)
	waitFor(t, func() bool {
		ok, resp := serve(p, request{path: "/resources/" + id + "/" + testHash(2) + ".css"})
		return ok && bytes.Equal(resp.Body(), css2)
	})
}

// TestMemcachedCorruptValueIsAMiss stores bytes php-memcached would never
// write under the real key: a miss, one error, one log line, no panic.
func TestMemcachedCorruptValueIsAMiss(t *testing.T) {
	srv := cachetest.StartMemcached(t)
	dsn := "memcached://" + srv.Addr
	core, logs := observer.New(zap.WarnLevel)
	p := startProxy(t, testConfig(t, "memcached", dsn, ""), Options{Logger: zap.New(core)})
	id := "5c7f3b2d-8e4a-4f6b-ad9c-2a3b4c5d6e7f"
	writeDesign(t, "memcached", dsn, "igbinary", id, testHash(1), testCSS(id, 3000))
	raw := memcache.New(srv.Addr)
	defer raw.Close()
	ns, err := raw.Get(memcachedNamespaceKey)
	if err != nil {
		t.Fatal(err)
	}
	nsv, err := decodePHPString(ns.Value, 64)
	if err != nil {
		t.Fatal(err)
	}
	// FastLZ flags, a length claiming 4 GiB, garbage after it.
	bad := &memcache.Item{Key: string(nsv) + "design_" + id + "_content", Flags: 0x50, Value: []byte{0xff, 0xff, 0xff, 0xff, 0x1f, 'x'}}
	if err := raw.Set(bad); err != nil {
		t.Fatal(err)
	}
	if ok, _ := serve(p, request{path: "/resources/" + id + "/" + testHash(1) + ".css"}); ok {
		t.Error("Serve = true for a corrupt value")
	}
	if ok, _ := serve(p, request{path: "/resources/" + id + ".css"}); ok {
		t.Error("Serve(unhashed) = true for a corrupt value")
	}
	if s := p.Stats(); s.Errors != 1 || s.Misses != 2 {
		t.Errorf("Stats = %+v, want 1 error and 2 misses", s)
	}
	if n := logs.FilterMessage("undecodable css cache value").Len(); n != 1 {
		t.Errorf("%d log lines for the corrupt value, want 1", n)
	}
}

// TestMemcachedHungCostsNothing freezes memcached (SIGSTOP) longer than
// outageSlow; see TestRedisHungCostsNothing.
func TestMemcachedHungCostsNothing(t *testing.T) {
	srv := cachetest.StartMemcached(t)
	dsn := "memcached://" + srv.Addr
	p := startProxy(t, testConfig(t, "memcached", dsn,
		"  timeout: 25ms\n  revalidate_interval: 50ms\n  max_stale: 200ms\n  breaker: {failures: 2, cooldown: 200ms}\n"), Options{})
	hashes := make([]string, 10)
	for i := range hashes {
		id := fmt.Sprintf("9c7f3b2d-8e4a-4f6b-ad9c-%012x", i)
		hashes[i] = testHash(i)
		writeDesign(t, "memcached", dsn, "igbinary", id, hashes[i], testCSS(id, 3000))
	}
	outageLoad(t, p, hashes, "9c7f3b2d-8e4a-4f6b-ad9c-%012x", 2*outageSlow, srv.Pause, srv.Resume)
	waitFor(t, func() bool {
		ok, _ := serve(p, request{path: fmt.Sprintf("/resources/9c7f3b2d-8e4a-4f6b-ad9c-%012x.css", 0)})
		return ok
	})
}
