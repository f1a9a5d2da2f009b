package cssproxy

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
)

// TestMemcachedTwoServersWrittenByPHP has php-memcached (through Symfony's
// MemcachedAdapter, as mosparo's CacheFactory builds it) spread projects
// over two real memcached servers, then reads every one back at the edge
// byte-exact, and checks each key sits on the server ketama names (FACTS
// 11.8).
func TestMemcachedTwoServersWrittenByPHP(t *testing.T) {
	a, b := cachetest.StartMemcached(t), cachetest.StartMemcached(t)
	for _, tc := range []struct{ name, dsn, prefix string }{
		{"host list", fmt.Sprintf("memcached:?host[%s]&host[%s]", a.Addr, b.Addr), ""},
		{"weighted with prefix_key", fmt.Sprintf("memcached://%s/5?host[%s]=5&prefix_key=mosparo_", a.Addr, b.Addr), "mosparo_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := configs.ParseMemcachedDSN(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			k := newKetama(d.Servers, d.PrefixKey)
			p := startProxy(t, testConfig(t, "memcached", `"`+tc.dsn+`"`, ""), Options{})
			raw := []*memcache.Client{memcache.New(a.Addr), memcache.New(b.Addr)}
			perServer := [2]int{}
			for i := range 12 {
				id := fmt.Sprintf("5a1d0c3e-0000-4000-8000-%012x", i+len(tc.prefix))
				hash, css := testHash(i), testCSS(id, 3000+i*97)
				marshaller := []string{"php", "igbinary"}[i%2]
				writeDesign(t, "memcached", tc.dsn, marshaller, id, hash, css)
				ok, resp := serve(p, request{path: "/resources/" + id + "/" + hash + ".css"})
				if !ok || !bytes.Equal(resp.Body(), css) {
					t.Fatalf("project %d: Serve = %v with %d bytes, want the %d bytes PHP wrote; stats %+v", i, ok, len(resp.Body()), len(css), p.Stats())
				}
				ns := namespaceOn(t, raw, tc.prefix)
				key := ns + "design_" + id + "_content"
				want := k.server(key)
				perServer[want]++
				if _, err := raw[want].Get(tc.prefix + key); err != nil {
					t.Errorf("project %d: %s not on server %d that ketama names: %v", i, key, want, err)
				}
				if _, err := raw[1-want].Get(tc.prefix + key); err == nil {
					t.Errorf("project %d: %s also on the other server", i, key)
				}
			}
			if perServer[0] == 0 || perServer[1] == 0 {
				t.Errorf("keys per server = %v; a real spread was expected", perServer)
			}
			for _, c := range raw {
				c.Close()
			}
		})
	}
}

// namespaceOn finds Symfony's namespace version on whichever server holds
// ":" (under the prefix).
func namespaceOn(t *testing.T, raw []*memcache.Client, prefix string) string {
	t.Helper()
	for _, c := range raw {
		if it, err := c.Get(prefix + memcachedNamespaceKey); err == nil {
			v, err := decodePHPString(it.Value, 64)
			if err != nil {
				t.Fatal(err)
			}
			return string(v)
		}
	}
	t.Fatal("no namespace version on any server")
	return ""
}

func TestKetamaWeights(t *testing.T) {
	servers := []configs.MemcachedServer{
		{Addr: configs.CacheAddr{Host: "10.0.0.1", Port: 11211}, Weight: 3},
		{Addr: configs.CacheAddr{Host: "10.0.0.2", Port: 11212}, Weight: 1},
	}
	k := newKetama(servers, "")
	// floor(3/4 * 160/4 * 2) * 4 = 240 and floor(1/4 * 40 * 2) * 4 = 80.
	if len(k.points) != 320 {
		t.Fatalf("points = %d, want 320", len(k.points))
	}
	n := [2]int{}
	for i := range 4000 {
		n[k.server(fmt.Sprintf("key-%d", i))]++
	}
	if n[0] < 2400 || n[0] > 3600 {
		t.Errorf("keys on the weight-3 server = %d of 4000, want about 3000", n[0])
	}
	if _, err := k.PickServer("other_key"); err != nil {
		t.Errorf("PickServer without prefix configured = %v", err)
	}
	kp := newKetama(servers, "p_")
	if _, err := kp.PickServer("q_key"); err == nil {
		t.Error("PickServer accepted a key without the prefix")
	}
	if a, _ := kp.PickServer("p_key-7"); a.String() != k.servers[k.server("key-7")].String() {
		t.Error("the prefix changed placement; libmemcached hashes the key without it")
	}
}
