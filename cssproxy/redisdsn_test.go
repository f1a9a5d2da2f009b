package cssproxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
)

// TestRedisDSNAuthAndSocket checks the DSN spellings operators copy from
// the nodes' REDIS_URL against real servers (FACTS 11.8): the user info of
// redis://secret@host is a password (requirepass), user:pass is an ACL
// user, and a socket path reaches the same keys. PHP writes where it can
// (Debian's Symfony 5.4 sends no ACL user, so that row is written raw).
func TestRedisDSNAuthAndSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "redis.sock")
	srv := cachetest.StartRedisWith(t, "--requirepass", "s3cr%t", "--unixsocket", sock, "--unixsocketperm", "700",
		"--user", "mosparo", "on", ">app-pw", "~*", "+@all")
	for i, tc := range []struct {
		name, dsn string
		php       bool
	}{
		{"password only", "redis://s3cr%25t@" + srv.Addr, true},
		{"password with db", "redis://s3cr%25t@" + srv.Addr + "/3", true},
		{"socket with password", "redis://s3cr%25t@" + sock, true},
		{"acl user", "redis://mosparo:app-pw@" + srv.Addr + "/2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, testConfig(t, "redis", `"`+tc.dsn+`"`, ""), Options{})
			waitConnected(t, p)
			id := fmt.Sprintf("7e57a0b1-0000-4000-8000-%012x", i)
			hash, css := testHash(i), testCSS(id, 4096)
			if tc.php {
				writeDesign(t, "redis", tc.dsn, "php", id, hash, css)
			} else {
				setRaw(t, tc.dsn, id, hash, css)
			}
			ok, resp := serve(p, request{path: "/resources/" + id + "/" + hash + ".css"})
			if !ok || !bytes.Equal(resp.Body(), css) {
				t.Fatalf("Serve = %v with %d bytes, want the %d bytes written; stats %+v", ok, len(resp.Body()), len(css), p.Stats())
			}
		})
	}
	t.Run("wrong password is a miss, not an answer", func(t *testing.T) {
		p := startProxy(t, testConfig(t, "redis", "redis://wrong@"+srv.Addr, ""), Options{})
		if ok, _ := serve(p, request{path: "/resources/7e57a0b1-0000-4000-8000-000000000000/" + testHash(0) + ".css"}); ok {
			t.Error("answered without being able to log in")
		}
	})
}

// TestRedisTLSWrittenByPHP: rediss:// with ssl[cafile] and ssl[peer_name],
// as phpredis takes them (a stream context), against a real TLS-only Redis:
// PHP writes through the DSN, the edge reads byte-exact through the same
// text (FACTS 11.8). Without the CA the edge cannot verify the server, so
// it reads nothing, as PHP would not either.
func TestRedisTLSWrittenByPHP(t *testing.T) {
	srv, ca := cachetest.StartRedisTLS(t)
	for i, tc := range []struct{ name, dsn string }{
		{"cafile", "rediss://" + srv.Addr + "?ssl[cafile]=" + ca},
		{"cafile and peer_name", "rediss://" + srv.Addr + "/1?ssl[cafile]=" + ca + "&ssl[peer_name]=" + cachetest.TLSName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, testConfig(t, "redis", `"`+tc.dsn+`"`, ""), Options{})
			waitConnected(t, p)
			id := fmt.Sprintf("7e57a0b1-0000-4000-8000-0000000075%02x", i)
			hash, css := testHash(60+i), testCSS(id, 5000)
			writeDesign(t, "redis", tc.dsn, "php", id, hash, css)
			ok, resp := serve(p, request{path: "/resources/" + id + "/" + hash + ".css"})
			if !ok || !bytes.Equal(resp.Body(), css) {
				t.Fatalf("Serve = %v with %d bytes, want the %d bytes PHP wrote; stats %+v", ok, len(resp.Body()), len(css), p.Stats())
			}
		})
	}
	t.Run("unknown CA reads nothing", func(t *testing.T) {
		p := startProxy(t, testConfig(t, "redis", `"rediss://`+srv.Addr+`"`, ""), Options{})
		id := "7e57a0b1-0000-4000-8000-000000007500"
		if ok, _ := serve(p, request{path: "/resources/" + id + "/" + testHash(60) + ".css"}); ok {
			t.Error("answered over a connection whose certificate could not be verified")
		}
	})
}

// setRaw writes PHP-serialized design keys the way RedisAdapter stores
// them (FACTS 5.4), through the proxy's own DSN reading.
func setRaw(t *testing.T, dsn, id, hash string, css []byte) {
	t.Helper()
	opt, err := redisOptions(dsn)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for k, v := range map[string]string{
		"design_" + id + "_content": fmt.Sprintf("s:%d:\"%s\";", len(css), css),
		"design_" + id + "_hash":    fmt.Sprintf("s:%d:\"%s\";", len(hash), hash),
	} {
		if err := c.Do(ctx, c.B().Set().Key(k).Value(v).Build()).Error(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
}

// TestRedisSentinelFailoverUnderLoad reads through Sentinel
// (redis:?host[...]&redis_sentinel=NAME, written by PHP through the same
// DSN), kills the master under load, and checks that no request got a
// wrong answer or hung: each was answered byte-exact or left to a node.
// After the failover the edge reads from the new master, including a
// project PHP wrote there.
func TestRedisSentinelFailoverUnderLoad(t *testing.T) {
	master := cachetest.StartRedisWith(t)
	replica := cachetest.StartRedisWith(t, "--replicaof", hostOf(master.Addr), portOf(master.Addr))
	sentinel := cachetest.StartSentinel(t, master, "mosparo")
	dsn := fmt.Sprintf("redis:?host[%s]&redis_sentinel=mosparo", sentinel.Addr)
	waitLong(t, "sentinel to see the replica", func() bool {
		return redisCLI(t, sentinel.Addr, "SENTINEL", "REPLICAS", "mosparo") != ""
	})

	const projects = 6
	ids, hashes, bodies := make([]string, projects), make([]string, projects), make([][]byte, projects)
	for i := range projects {
		ids[i] = fmt.Sprintf("5e471e10-0000-4000-8000-%012x", i)
		hashes[i], bodies[i] = testHash(i), testCSS(ids[i], 5000+i)
		writeDesign(t, "redis", dsn, "php", ids[i], hashes[i], bodies[i])
	}
	waitLong(t, "the replica to hold every key", func() bool {
		return redisCLI(t, replica.Addr, "DBSIZE") == fmt.Sprint(2*projects)
	})
	p := startProxy(t, testConfig(t, "redis", `"`+dsn+`"`, "  revalidate_interval: 100ms\n"), Options{})
	waitConnected(t, p)
	for i := range projects {
		if ok, _ := serve(p, request{path: "/resources/" + ids[i] + "/" + hashes[i] + ".css"}); !ok {
			t.Fatalf("before failover: project %d not answered; stats %+v", i, p.Stats())
		}
	}

	var (
		stop                    atomic.Bool
		answered, declined, bad atomic.Int64
		slow                    atomic.Int64
		wg                      sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				n := i % projects
				start := time.Now()
				ok, resp := serve(p, request{path: "/resources/" + ids[n] + "/" + hashes[n] + ".css"})
				// The stopped master resets its connections: a request
				// only hangs when no timeout holds it, which hangGuard tells.
				if time.Since(start) > hangGuard {
					slow.Add(1)
				}
				switch {
				case !ok:
					declined.Add(1)
				case resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), bodies[n]):
					bad.Add(1)
				default:
					answered.Add(1)
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	waitLong(t, "the load to be answered before the master stops", func() bool { return answered.Load() > 0 })
	master.Stop()
	waitLong(t, "sentinel to promote the replica", func() bool {
		return redisCLI(t, sentinel.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mosparo") == hostOf(replica.Addr)+"\n"+portOf(replica.Addr)
	})
	// PHP asks the sentinels afresh and writes to the new master.
	fresh := "5e471e10-0000-4000-8000-0000000000ff"
	freshHash, freshCSS := testHash(99), testCSS(fresh, 4000)
	writeDesign(t, "redis", dsn, "php", fresh, freshHash, freshCSS)
	before := answered.Load()
	waitLong(t, "hits from the new master", func() bool {
		ok, resp := serve(p, request{path: "/resources/" + fresh + "/" + freshHash + ".css"})
		return ok && bytes.Equal(resp.Body(), freshCSS) && answered.Load() > before+20
	})
	stop.Store(true)
	wg.Wait()
	t.Logf("answered %d, declined %d (to a node), wrong %d, slow %d; stats %+v",
		answered.Load(), declined.Load(), bad.Load(), slow.Load(), p.Stats())
	if bad.Load() != 0 {
		t.Errorf("%d requests got a wrong answer during the failover", bad.Load())
	}
	if slow.Load() != 0 {
		t.Errorf("%d requests took over %s", slow.Load(), hangGuard)
	}
}

// waitLong polls cond for up to 30s (a busy machine; Sentinel needs a few
// seconds to fail over).
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisCLI runs one command and returns its raw output, trimmed; "" on error.
func redisCLI(t *testing.T, addr string, args ...string) string {
	t.Helper()
	return cachetest.CLI(t, addr, args...)
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
