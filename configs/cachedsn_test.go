package configs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The expectations follow symfony/cache 6.4's RedisTrait::createConnection
// line by line (FACTS 11.8); comments name the quirk a row pins.
func TestParseRedisDSN(t *testing.T) {
	tcp := func(h string, p int) CacheAddr { return CacheAddr{Host: h, Port: p} }
	for _, tc := range []struct {
		name, dsn string
		want      RedisDSN
	}{
		{"bare host", "redis://localhost", RedisDSN{Addrs: []CacheAddr{tcp("localhost", 6379)}}},
		{"user info is the password", "redis://secret@10.0.0.5", RedisDSN{Addrs: []CacheAddr{tcp("10.0.0.5", 6379)}, Password: "secret"}},
		{"acl user", "redis://app:pw@h:6380/2", RedisDSN{Addrs: []CacheAddr{tcp("h", 6380)}, Username: "app", Password: "pw", DB: 2}},
		{"default user is no user", "redis://default:pw@h", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}, Password: "pw"}},
		{"empty user", "redis://:pw@h", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}, Password: "pw"}},
		{"password percent-decoded, + kept", "redis://p%40ss+w@h", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}, Password: "p@ss+w"}},
		{"empty password is none", "redis://@h", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}}},
		{"trailing slash is db 0", "redis://h/", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}}},
		{"db from query", "redis://h?dbindex=4", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}, DB: 4}},
		{"slash then query db", "redis://h/?dbindex=5", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}, DB: 5}},
		{"tls", "rediss://h:6380", RedisDSN{TLS: true, Addrs: []CacheAddr{tcp("h", 6380)}}},
		{"tls options", "rediss://h?ssl[verify_peer]=0&ssl[cafile]=/ca.pem&ssl[peer_name]=r.example", RedisDSN{TLS: true, Addrs: []CacheAddr{tcp("h", 6379)},
			TLSInsecure: true, TLSCAFile: "/ca.pem", TLSServerName: "r.example"}},
		{"socket", "redis:///var/run/redis.sock", RedisDSN{Addrs: []CacheAddr{{Socket: "/var/run/redis.sock"}}}},
		{"socket with password and db", "redis://secret@/var/run/redis.sock/13", RedisDSN{Addrs: []CacheAddr{{Socket: "/var/run/redis.sock"}}, Password: "secret", DB: 13}},
		{"ipv6", "redis://[::1]:7000", RedisDSN{Addrs: []CacheAddr{tcp("::1", 7000)}}},
		{"sentinel", "redis:?host[s1:26379]&host[s2:26380]&host[s3]&redis_sentinel=mymaster", RedisDSN{
			Addrs: []CacheAddr{tcp("s1", 26379), tcp("s2", 26380), tcp("s3", 6379)}, Sentinel: "mymaster"}},
		{"sentinel, host first, auth option", "redis://pw@s1:26379/1?host[s2:26379]&redis_sentinel=m&auth=spw", RedisDSN{
			Addrs: []CacheAddr{tcp("s1", 26379), tcp("s2", 26379)}, Sentinel: "m", Password: "pw", SentinelPassword: "spw", DB: 1}},
		{"auth option alone authenticates the server", "redis://h?auth=x", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}, Password: "x", SentinelPassword: "x"}},
		{"socket in host[] with port 0", "redis:?host[/tmp/r.sock:0]", RedisDSN{Addrs: []CacheAddr{{Socket: "/tmp/r.sock"}}}},
		{"ignored connection options", "redis://h?timeout=3&persistent=1&lazy=1&read_timeout=2&class=Redis", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}}},
		{"cluster off", "redis://h?redis_cluster=0", RedisDSN{Addrs: []CacheAddr{tcp("h", 6379)}}},
		// Symfony's user-info regex runs to the first "@" anywhere.
		{"at sign in the query is user info", "redis://h/0?x=@k", RedisDSN{Addrs: []CacheAddr{tcp("k", 6379)}, Password: "h/0?x="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRedisDSN(tc.dsn)
			if err != nil {
				t.Fatalf("ParseRedisDSN(%q) = %v", tc.dsn, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseRedisDSN(%q) = %+v, want %+v", tc.dsn, got, tc.want)
			}
		})
	}
}

func TestParseRedisDSNRefused(t *testing.T) {
	for _, tc := range []struct{ name, dsn, want string }{
		{"wrong scheme", "memcached://h", "redis:"},
		{"no host", "redis://", "no host"},
		{"query only without hosts", "redis:?dbindex=1", "no host"},
		{"db not a number", "redis://h/x", "database number"},
		{"db mismatch", "redis://h/1?dbindex=2", "differ"},
		{"db too large", "redis://h/99999999999999999999", "0..1048576"},
		{"db from query not a number", "redis://h?dbindex=x", "not a number"},
		{"port too large", "redis://h:99999", "1..65535"},
		{"port not a number", "redis://h:x", "not a number"},
		{"empty port", "redis://h:", "not a number"},
		{"redis array", "redis:?host[a]&host[b]", "RedisArray"},
		{"cluster", "redis://h?redis_cluster=1", "Cluster"},
		{"host scalar", "redis:?host=a", "array"},
		{"host[] numeric key", "redis:?host[]=a", "named key"},
		{"nested", "redis:?host[a][b]=1", "nests"},
		{"per-host parameters", "redis:?host[a]=alias%3Dx", "per-host"},
		{"unknown option", "redis://h?prefix=x", "prefix"},
		{"ssl without tls", "redis://h?ssl[verify_peer]=0", "rediss"},
		{"unknown ssl", "rediss://h?ssl[local_cert]=/c", "local_cert"},
		{"fragment", "redis://h#x", "fragment"},
		{"second at", "redis://a@b@c", "second"},
		{"opaque", "redis:h:6379", "neither"},
		{"bare ipv6", "redis://::1", "brackets"},
		{"user without password", "redis://app:@h", "without a password"},
		{"empty sentinel", "redis:?host[a]&redis_sentinel=", "empty"},
		{"host with space", "redis://a%20b", ""},
		{"nul in query", "redis://h?auth=%00", "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRedisDSN(tc.dsn)
			if err == nil {
				if tc.want == "" {
					return // accepted verbatim, as parse_url does
				}
				t.Fatalf("ParseRedisDSN(%q) = %+v, want an error", tc.dsn, got)
			}
			if !errors.Is(err, ErrCacheDSN) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseRedisDSN(%q) = %v, want ErrCacheDSN mentioning %q", tc.dsn, err, tc.want)
			}
		})
	}
}

// The expectations follow symfony/cache 6.4's
// MemcachedAdapter::createConnection.
func TestParseMemcachedDSN(t *testing.T) {
	srv := func(h string, p, w int) MemcachedServer {
		return MemcachedServer{Addr: CacheAddr{Host: h, Port: p}, Weight: w}
	}
	for _, tc := range []struct {
		name, dsn string
		want      MemcachedDSN
	}{
		{"bare host", "memcached://localhost", MemcachedDSN{Servers: []MemcachedServer{srv("localhost", 11211, 0)}}},
		{"port and weight", "memcached://h:11212/33", MemcachedDSN{Servers: []MemcachedServer{srv("h", 11212, 33)}}},
		{"path after host ignored", "memcached://h/x", MemcachedDSN{Servers: []MemcachedServer{srv("h", 11211, 0)}}},
		{"several servers", "memcached:?host[a:11211]&host[b:11212]=20", MemcachedDSN{Servers: []MemcachedServer{srv("a", 11211, 0), srv("b", 11212, 20)}}},
		// With only host[] Symfony skips the other options.
		{"prefix ignored in host-only form", "memcached:?host[a]&host[b]&prefix_key=p_", MemcachedDSN{Servers: []MemcachedServer{srv("a", 11211, 0), srv("b", 11211, 0)}}},
		{"prefix with a host", "memcached://a?host[b]&prefix_key=p_", MemcachedDSN{Servers: []MemcachedServer{srv("a", 11211, 0), srv("b", 11211, 0)}, PrefixKey: "p_"}},
		{"prefix upper case", "memcached://a?PREFIX_KEY=q", MemcachedDSN{Servers: []MemcachedServer{srv("a", 11211, 0)}, PrefixKey: "q"}},
		{"socket with weight", "memcached:///var/run/memcached.sock/5", MemcachedDSN{Servers: []MemcachedServer{{Addr: CacheAddr{Socket: "/var/run/memcached.sock"}, Weight: 5}}}},
		{"sasl", "memcached://u:p%3A@h", MemcachedDSN{Servers: []MemcachedServer{srv("h", 11211, 0)}, Username: "u", Password: "p:", SASL: true}},
		{"sasl user only", "memcached://u@h", MemcachedDSN{Servers: []MemcachedServer{srv("h", 11211, 0)}, Username: "u", SASL: true}},
		// PHP's empty("0") is true: no credentials.
		{"user info 0", "memcached://0@h", MemcachedDSN{Servers: []MemcachedServer{srv("h", 11211, 0)}}},
		{"harmless options", "memcached://h?compression=0&binary_protocol=1&libketama_compatible=1&hash=md5&tcp_nodelay=1", MemcachedDSN{Servers: []MemcachedServer{srv("h", 11211, 0)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMemcachedDSN(tc.dsn)
			if err != nil {
				t.Fatalf("ParseMemcachedDSN(%q) = %v", tc.dsn, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseMemcachedDSN(%q) = %+v, want %+v", tc.dsn, got, tc.want)
			}
		})
	}
}

func TestParseMemcachedDSNRefused(t *testing.T) {
	for _, tc := range []struct{ name, dsn, want string }{
		{"wrong scheme", "redis://h", "memcached:"},
		{"no host", "memcached://", "no host"},
		{"query without hosts", "memcached:?prefix_key=x", "no host"},
		{"distribution", "memcached://h?distribution=modula", "distribution"},
		{"hash", "memcached://h?hash=crc", "hash"},
		{"ketama off", "memcached://h?libketama_compatible=0", "ketama"},
		{"prefix with space", "memcached://h?prefix_key=a+b", "prefix_key"},
		{"prefix too long", "memcached://h?prefix_key=" + strings.Repeat("p", 129), "128"},
		{"unknown option", "memcached://h?use_udp=1", "use_udp"},
		{"bad weight", "memcached:?host[a]=x", "weight"},
		{"socket with port", "memcached:?host[/s:1]", "socket"},
		{"bad port", "memcached://h:0", "1..65535"},
		{"two hosts comma", "memcached://a:1,b:2", ""},
		{"host scalar", "memcached:?host=a", "array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMemcachedDSN(tc.dsn)
			if err == nil {
				t.Fatalf("ParseMemcachedDSN(%q) = %+v, want an error", tc.dsn, got)
			}
			if !errors.Is(err, ErrCacheDSN) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseMemcachedDSN(%q) = %v, want ErrCacheDSN mentioning %q", tc.dsn, err, tc.want)
			}
		})
	}
}
