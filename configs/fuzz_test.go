package configs

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it must return a config or
// a *Error, never panic or hang.
func FuzzParse(f *testing.F) {
	f.Add(Demo())
	f.Add(Reference())
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("x: &a [*a]\n"))                      // self-referencing alias
	f.Add([]byte("a: &a [*a,*a,*a,*a,*a,*a,*a,*a]\n")) // alias blow-up
	f.Add([]byte("nodes: [{name: n, address: \"${X:-10.0.0.1:80}\", weight: 1e9}]\n"))
	f.Add([]byte("timeouts: {connect: 9999999999h}\n"))
	f.Add([]byte("balancing: {pools: {admin: [[a]]}}\n"))
	f.Add([]byte("\xff\xfe\x00"))
	// Issue 11, item 13: expansion into typed keys, values holding "${".
	f.Add([]byte("limits: {max_body_bytes: \"${N}\"}\nlog: {access_log: \"${B:-true}\"}\n"))
	f.Add([]byte("admin: {token: \"${Y}$${Y}${X}\"}\nhealth:\n  interval: ${D:-300ms}\n"))
	f.Add([]byte("cron: {standalone: '${Y}'}\nnodes: [{name: n, address: \"${X}:80\", weight: \"${N}${N}\"}]\n"))
	f.Add([]byte("admin: {token: \"${\"}\n"))
	// Issue 15: rate limits at and past their bounds.
	f.Add([]byte("rate_limits: {frontend: {rate: .inf, burst: 1e99}, api: {rate: 1000000}, ipv6_prefix: -1, max_entries: ${N}, exempt: [\"::ffff:0:0/96\"]}\n"))
	// Issue 14: ACME sections, hostile domains and storage paths.
	f.Add([]byte("listen: [{address: \":443\", tls: {acme: {domains: [\"*.a\", \"../x.example\", \"${X}.example\"], challenges: [http-01, x]}}}]\nacme: {storage_dir: ../x, consul_prefix: /a/../b}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env := func(k string) (string, bool) {
			switch k {
			case "X":
				return "v", true
			case "Y":
				return "${X}", true
			case "N":
				return "2048", true
			}
			return "", false
		}
		c, err := Parse("fuzz.yaml", b, env)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T (%v) is not a *configs.Error", err, err)
			}
			return
		}
		if c == nil || len(c.Listen) == 0 || c.Balancing.Retries == nil {
			t.Fatal("accepted config without defaults")
		}
	})
}

// FuzzCacheDSN feeds arbitrary text to both DSN readers: an answer or an
// ErrCacheDSN, never a panic; what they accept must be usable (a server
// to dial, ports in range).
func FuzzCacheDSN(f *testing.F) {
	for _, s := range []string{
		"redis://secret@10.0.0.5:6379/3", "rediss://u:p@h/0?ssl[verify_peer]=0",
		"redis:?host[a:26379]&host[b:26379]&redis_sentinel=mymaster&dbindex=2",
		"redis://secret@/var/run/redis.sock/13", "redis:///var/run/redis.sock",
		"redis://h/x?a=@b", "redis:?host[/tmp/r.sock:0]", "redis://[::1]:6379",
		"memcached:?host[a:11211]=10&host[b]", "memcached://u:p@h?prefix_key=x",
		"memcached:///var/run/memcached.sock/5", "memcached://h:1/x%zz?host[c:2]=3",
		"redis://%ff%00@h", "memcached://0@h", "redis://h?host=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseRedisDSN(s); err != nil {
			if !errors.Is(err, ErrCacheDSN) {
				t.Fatalf("ParseRedisDSN(%q) error %v is not ErrCacheDSN", s, err)
			}
		} else {
			checkAddrs(t, s, len(r.Addrs), func(i int) CacheAddr { return r.Addrs[i] })
		}
		if m, err := ParseMemcachedDSN(s); err != nil {
			if !errors.Is(err, ErrCacheDSN) {
				t.Fatalf("ParseMemcachedDSN(%q) error %v is not ErrCacheDSN", s, err)
			}
		} else {
			checkAddrs(t, s, len(m.Servers), func(i int) CacheAddr { return m.Servers[i].Addr })
		}
	})
}

func checkAddrs(t *testing.T, dsn string, n int, at func(int) CacheAddr) {
	t.Helper()
	if n == 0 {
		t.Fatalf("%q accepted without a server", dsn)
	}
	for i := range n {
		a := at(i)
		if (a.Socket == "") == (a.Host == "") {
			t.Fatalf("%q: server %d is neither TCP nor socket: %+v", dsn, i, a)
		}
		if a.Socket == "" && (a.Port < 1 || a.Port > 65535) {
			t.Fatalf("%q: server %d port %d", dsn, i, a.Port)
		}
	}
}
