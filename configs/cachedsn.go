package configs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The nodes' REDIS_URL and MEMCACHED_URL are Symfony cache DSNs, read by
// RedisAdapter::createConnection and MemcachedAdapter::createConnection
// (symfony/cache 6.4 as mosparo 1.5.4 pins it; FACTS 11.8). The readers
// below follow that code step by step, quirks included, so the edge reads
// the keys where the nodes write them. What Symfony would read in a way the
// edge cannot follow (RedisArray, Redis Cluster, another memcached key
// distribution) is refused with the reason.

// CacheAddr is one cache server: a TCP host and port, or a unix socket.
type CacheAddr struct {
	// Host is a host name or IP address (without brackets); empty for a
	// unix socket.
	Host string
	// Port is the TCP port; 0 for a unix socket.
	Port int
	// Socket is the unix socket path; empty for TCP.
	Socket string
}

// Network is "unix" or "tcp".
func (a CacheAddr) Network() string {
	if a.Socket != "" {
		return "unix"
	}
	return "tcp"
}

// String is the dial address: host:port or the socket path.
func (a CacheAddr) String() string {
	if a.Socket != "" {
		return a.Socket
	}
	return joinHostPort(a.Host, a.Port)
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// RedisDSN is a REDIS_URL as Symfony reads it.
type RedisDSN struct {
	// TLS is set by the rediss: scheme, for the server and the sentinels.
	TLS bool
	// Addrs is the one Redis server, or with Sentinel the sentinels to ask.
	Addrs []CacheAddr
	// Username and Password authenticate to the server. The DSN's user
	// info is the password alone ("redis://secret@host"); "user:pass" is
	// an ACL user unless the user is empty or "default".
	Username, Password string
	// DB is the database index (path "/N" or the dbindex option).
	DB int
	// Sentinel is the redis_sentinel master name; empty without Sentinel.
	Sentinel string
	// SentinelPassword is the auth option, which Symfony hands to the
	// sentinels (and to the server when the DSN has no password).
	SentinelPassword string
	// TLSInsecure is ssl[verify_peer]=0 (or verify_peer_name=0).
	TLSInsecure bool
	// TLSCAFile and TLSServerName are ssl[cafile] and ssl[peer_name].
	TLSCAFile, TLSServerName string
}

// MemcachedServer is one server of a MEMCACHED_URL with its ketama weight.
type MemcachedServer struct {
	Addr CacheAddr
	// Weight as given (0 counts as 1, as in libmemcached).
	Weight int
}

// MemcachedDSN is a MEMCACHED_URL as Symfony and php-memcached read it:
// keys spread over Servers with libmemcached's weighted ketama (Symfony
// turns OPT_LIBKETAMA_COMPATIBLE on), stored under PrefixKey.
type MemcachedDSN struct {
	Servers []MemcachedServer
	// PrefixKey is the prefix_key option (php-memcached's OPT_PREFIX_KEY):
	// prepended to every stored key but not hashed for placement.
	PrefixKey string
	// Username and Password are SASL credentials; SASL is on when
	// either was given.
	Username, Password string
	SASL               bool
}

// ErrCacheDSN wraps every DSN refusal.
var ErrCacheDSN = errors.New("cache DSN")

func dsnErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCacheDSN}, args...)...)
}

// phpURL is what PHP's parse_url returns for the "file:" URL Symfony
// builds after cutting the user info off.
type phpURL struct {
	host    string // brackets removed
	port    int    // 0: none
	path    string
	hasPath bool
	query   string
}

// splitUserInfo applies Symfony's user-info regex: after "scheme:" and an
// optional "//", everything up to the first "@" in the whole DSN is the
// user info (even past "/" or "?"). It returns the rest as parse_url gets
// it, without the "file:" scheme.
func splitUserInfo(rest string) (slashes bool, info string, hasInfo bool, tail string) {
	if strings.HasPrefix(rest, "//") {
		slashes, rest = true, rest[2:]
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		return slashes, rest[:i], true, rest[i+1:]
	}
	return slashes, "", false, rest
}

// parsePHPURL reads "file:" + ("//" if slashes) + s as parse_url would for
// the shapes Symfony documents; other shapes are refused.
func parsePHPURL(slashes bool, s string) (phpURL, error) {
	var u phpURL
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return u, dsnErrorf("has a fragment (%q)", s[i:])
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s, u.query = s[:i], s[i+1:]
	}
	if slashes {
		auth := s
		if i := strings.IndexByte(s, '/'); i >= 0 {
			auth, s = s[:i], s[i:]
		} else {
			s = ""
		}
		if strings.Contains(auth, "@") {
			return u, dsnErrorf("has a second %q in its host part", "@")
		}
		if auth != "" {
			host, port, err := splitHostPort(auth)
			if err != nil {
				return u, err
			}
			u.host, u.port = host, port
		}
	} else if s != "" && s[0] != '/' {
		return u, dsnErrorf("is neither scheme://host, scheme:///socket nor scheme:?host[...]")
	}
	if s != "" {
		u.path, u.hasPath = s, true
	}
	return u, nil
}

// splitHostPort reads "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(a string) (host string, port int, err error) {
	rest := ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", 0, dsnErrorf("has an unclosed %q in host %q", "[", a)
		}
		host, rest = a[1:end], a[end+1:]
		if rest != "" && rest[0] != ':' {
			return "", 0, dsnErrorf("has junk after the address in %q", a)
		}
	} else if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host, rest = a[:i], a[i:]
	} else {
		host = a
	}
	if host == "" {
		return "", 0, dsnErrorf("has an empty host in %q", a)
	}
	for _, c := range host {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("/\\[]%", c) {
			return "", 0, dsnErrorf("has a host with %q in it: %q", c, host)
		}
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(a, "[") {
		return "", 0, dsnErrorf("IPv6 address %q needs brackets", host)
	}
	if rest != "" {
		p, err := parsePort(rest[1:])
		if err != nil {
			return "", 0, err
		}
		port = p
	}
	return host, port, nil
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, dsnErrorf("port %q is not a number 1..65535", s)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > 65535 {
		return 0, dsnErrorf("port %d is not 1..65535", n)
	}
	return n, nil
}

// rawURLDecode is PHP's rawurldecode: %XX decoded, everything else (a
// lone %, +) kept.
func rawURLDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// urlDecode is PHP's urldecode (parse_str): rawurldecode plus "+" as space.
func urlDecode(s string) string {
	return rawURLDecode(strings.ReplaceAll(s, "+", " "))
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// phpQuery is parse_str's result for the shapes Symfony reads: scalars
// and one level of name[key]. Keys keep their first-seen order.
type phpQuery struct {
	scalars map[string]string
	arrays  map[string]*phpArray
}

type phpArray struct {
	keys   []string
	values map[string]string
}

// parsePHPQuery mirrors parse_str: pairs split on "&", names and values
// urldecoded, "." and " " in a top-level name become "_", later pairs win.
// Deeper nesting and "name[]" (numeric keys) are refused.
func parsePHPQuery(q string) (phpQuery, error) {
	pq := phpQuery{scalars: map[string]string{}, arrays: map[string]*phpArray{}}
	if q == "" {
		return pq, nil
	}
	for _, pair := range strings.Split(q, "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, value = urlDecode(name), urlDecode(value)
		if strings.ContainsRune(name+value, 0) {
			return pq, dsnErrorf("has a NUL byte in its query")
		}
		base, key, isArray := name, "", false
		if i := strings.IndexByte(name, '['); i > 0 {
			end := strings.IndexByte(name[i:], ']')
			if end < 0 {
				return pq, dsnErrorf("query name %q has no closing %q", name, "]")
			}
			if i+end+1 != len(name) {
				return pq, dsnErrorf("query name %q nests arrays, which the edge does not read", name)
			}
			base, key, isArray = name[:i], name[i+1:i+end], true
		}
		base = strings.NewReplacer(".", "_", " ", "_").Replace(base)
		if base == "" {
			return pq, dsnErrorf("query has an empty name")
		}
		if !isArray {
			delete(pq.arrays, base)
			pq.scalars[base] = value
			continue
		}
		if key == "" || strings.Trim(key, "0123456789") == "" {
			return pq, dsnErrorf("query %q needs a named key such as %s[10.0.0.5:6379]", name, base)
		}
		delete(pq.scalars, base)
		a := pq.arrays[base]
		if a == nil {
			a = &phpArray{values: map[string]string{}}
			pq.arrays[base] = a
		}
		if _, seen := a.values[key]; !seen {
			a.keys = append(a.keys, key)
		}
		a.values[key] = value
	}
	return pq, nil
}

// phpBool is FILTER_VALIDATE_BOOLEAN's true set.
func phpBool(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "on", "yes":
		return true
	}
	return false
}

// ParseRedisDSN reads a REDIS_URL as RedisAdapter::createConnection does.
func ParseRedisDSN(dsn string) (RedisDSN, error) {
	var d RedisDSN
	var rest string
	switch {
	case strings.HasPrefix(dsn, "redis:"):
		rest = dsn[len("redis:"):]
	case strings.HasPrefix(dsn, "rediss:"):
		d.TLS, rest = true, dsn[len("rediss:"):]
	default:
		return d, dsnErrorf("does not start with redis: or rediss:")
	}
	slashes, info, hasInfo, tail := splitUserInfo(rest)
	if hasInfo {
		user, pass, hasUser := strings.Cut(info, ":")
		if !hasUser {
			user, pass = "", info
		}
		user, pass = rawURLDecode(user), rawURLDecode(pass)
		if user != "" && user != "default" {
			if pass == "" {
				return d, dsnErrorf("names user %q without a password", user)
			}
			d.Username = user
		}
		d.Password = pass
	}
	u, err := parsePHPURL(slashes, tail)
	if err != nil {
		return d, err
	}
	q, err := parsePHPQuery(u.query)
	if err != nil {
		return d, err
	}
	if _, ok := q.arrays["host"]; !ok {
		if _, ok := q.scalars["host"]; ok {
			return d, dsnErrorf("query parameter host must be an array: host[10.0.0.5:6379]")
		}
	}
	if err := d.readHosts(u, q); err != nil {
		return d, err
	}
	if err := d.readOptions(q); err != nil {
		return d, err
	}
	if d.Sentinel == "" && len(d.Addrs) > 1 {
		return d, dsnErrorf("lists %d hosts without redis_sentinel: phpredis then shards keys as a RedisArray, which the edge does not reproduce; point css_cache.url at one server or use Sentinel", len(d.Addrs))
	}
	return d, nil
}

// readHosts collects the servers: the DSN's own host or socket first,
// then the host[] entries, and the database index from the path.
func (d *RedisDSN) readHosts(u phpURL, q phpQuery) error {
	var extra []CacheAddr
	if a := q.arrays["host"]; a != nil {
		for _, k := range a.keys {
			if a.values[k] != "" {
				return dsnErrorf("per-host parameters (host[%s]=%s) are not read by the edge", k, a.values[k])
			}
			addr, err := redisQueryHost(k)
			if err != nil {
				return err
			}
			extra = append(extra, addr)
		}
	}
	qdb, hasQDB := q.scalars["dbindex"]
	dbText, hasDB := "", false
	if u.host != "" || u.hasPath {
		path := u.path
		if u.hasPath {
			if i := strings.LastIndexByte(path, '/'); i >= 0 && strings.Trim(path[i+1:], "0123456789") == "" {
				dbText, hasDB = path[i+1:], true
				if dbText == "" {
					dbText = "0"
					if hasQDB {
						dbText = qdb
					}
				}
				path = path[:i]
			} else if u.host != "" {
				return dsnErrorf("path %q is not a database number such as /0", u.path)
			}
		}
		var first CacheAddr
		if u.host != "" {
			first = CacheAddr{Host: u.host, Port: u.port}
			if first.Port == 0 {
				first.Port = 6379
			}
		} else {
			if path == "" {
				return dsnErrorf("has an empty socket path")
			}
			first = CacheAddr{Socket: path}
		}
		extra = append([]CacheAddr{first}, extra...)
	}
	if len(extra) == 0 {
		return dsnErrorf("has no host; write it like redis://10.0.0.5:6379/0")
	}
	if hasDB && hasQDB && dbText != qdb {
		return dsnErrorf("path and query dbindex differ (%q, %q)", dbText, qdb)
	}
	if !hasDB && hasQDB {
		dbText, hasDB = qdb, true
	}
	if hasDB {
		n, err := strconv.Atoi(dbText)
		if err != nil || n < 0 || n > 1<<20 {
			return dsnErrorf("database index %q is not a number 0..1048576", dbText)
		}
		d.DB = n
	}
	d.Addrs = extra
	return nil
}

// redisQueryHost reads a host[] key as Symfony does: the part after the
// last ":" is the port; a port that reads as 0 makes the rest a socket.
func redisQueryHost(k string) (CacheAddr, error) {
	i := strings.LastIndexByte(k, ':')
	if i < 0 {
		if strings.HasPrefix(k, "/") {
			return CacheAddr{Socket: k}, nil // phpredis takes a leading "/" as a socket
		}
		host, _, err := splitHostPort(k)
		return CacheAddr{Host: host, Port: 6379}, err
	}
	if strings.Trim(k[i+1:], "0") == "" {
		if !strings.HasPrefix(k, "/") {
			return CacheAddr{}, dsnErrorf("host[%s] has port 0 but is no socket path", k)
		}
		return CacheAddr{Socket: k[:i]}, nil
	}
	host, port, err := splitHostPort(k)
	if err != nil {
		return CacheAddr{}, err
	}
	if port == 0 {
		port = 6379
	}
	return CacheAddr{Host: host, Port: port}, nil
}

// redisIgnored are options that change nothing about where keys are read.
var redisIgnored = map[string]bool{
	"class": true, "persistent": true, "persistent_id": true, "timeout": true, "read_timeout": true,
	"retry_interval": true, "tcp_keepalive": true, "lazy": true, "failover": true, "dbindex": true,
}

func (d *RedisDSN) readOptions(q phpQuery) error {
	for name, v := range q.scalars {
		switch {
		case name == "redis_sentinel":
			if v == "" {
				return dsnErrorf("redis_sentinel is empty; give the master name")
			}
			d.Sentinel = v
		case name == "redis_cluster":
			if phpBool(v) {
				return dsnErrorf("redis_cluster is not read by the edge; leave css_cache off for a Redis Cluster")
			}
		case name == "auth":
			d.SentinelPassword = v
			if d.Password == "" && d.Username == "" {
				d.Password = v
			}
		case redisIgnored[name]:
		default:
			return dsnErrorf("option %q is not one the edge knows; remove it or leave css_cache off", name)
		}
	}
	for name, a := range q.arrays {
		switch name {
		case "host":
		case "ssl":
			if err := d.readSSL(a); err != nil {
				return err
			}
		default:
			return dsnErrorf("option %s[...] is not one the edge knows", name)
		}
	}
	if q.scalars["redis_cluster"] != "" && d.Sentinel != "" && phpBool(q.scalars["redis_cluster"]) {
		return dsnErrorf("cannot use both redis_cluster and redis_sentinel")
	}
	return nil
}

func (d *RedisDSN) readSSL(a *phpArray) error {
	if !d.TLS {
		return dsnErrorf("has ssl[...] options without the rediss: scheme")
	}
	for _, k := range a.keys {
		v := a.values[k]
		switch k {
		case "verify_peer", "verify_peer_name":
			if !phpBool(v) {
				d.TLSInsecure = true
			}
		case "cafile":
			d.TLSCAFile = v
		case "peer_name":
			d.TLSServerName = v
		default:
			return dsnErrorf("ssl[%s] is not read by the edge (it knows verify_peer, verify_peer_name, cafile, peer_name)", k)
		}
	}
	return nil
}

// ParseMemcachedDSN reads a MEMCACHED_URL as
// MemcachedAdapter::createConnection does.
func ParseMemcachedDSN(dsn string) (MemcachedDSN, error) {
	var d MemcachedDSN
	if !strings.HasPrefix(dsn, "memcached:") {
		return d, dsnErrorf("does not start with memcached:")
	}
	slashes, info, hasInfo, tail := splitUserInfo(dsn[len("memcached:"):])
	// PHP's empty(): "" and "0" are no user info at all.
	if hasInfo && info != "" && info != "0" {
		user, pass, hasPass := strings.Cut(info, ":")
		d.Username, d.SASL = rawURLDecode(user), true
		if hasPass {
			d.Password = rawURLDecode(pass)
		}
	}
	u, err := parsePHPURL(slashes, tail)
	if err != nil {
		return d, err
	}
	q, err := parsePHPQuery(u.query)
	if err != nil {
		return d, err
	}
	var hosts []MemcachedServer
	if a := q.arrays["host"]; a != nil {
		for _, k := range a.keys {
			s, err := memcachedQueryHost(k, a.values[k])
			if err != nil {
				return d, err
			}
			hosts = append(hosts, s)
		}
	} else if _, ok := q.scalars["host"]; ok {
		return d, dsnErrorf("query parameter host must be an array: host[10.0.0.5:11211]")
	}
	if u.host == "" && !u.hasPath {
		if len(hosts) == 0 {
			return d, dsnErrorf("has no host or socket; write it like memcached://10.0.0.5:11211")
		}
		// memcached:?host[a]&host[b]: Symfony takes the hosts and skips
		// every other query option (prefix_key included), so do we.
		d.Servers = hosts
		return d, nil
	}
	first := MemcachedServer{}
	path := u.path
	if i := strings.LastIndexByte(path, '/'); i >= 0 && i < len(path)-1 && strings.Trim(path[i+1:], "0123456789") == "" {
		w, err := parseWeight(path[i+1:])
		if err != nil {
			return d, err
		}
		first.Weight, path = w, path[:i]
	}
	if u.host != "" {
		// Symfony ignores a path after the host (except the weight).
		first.Addr = CacheAddr{Host: u.host, Port: u.port}
		if first.Addr.Port == 0 {
			first.Addr.Port = 11211
		}
	} else {
		if path == "" {
			return d, dsnErrorf("has an empty socket path")
		}
		first.Addr = CacheAddr{Socket: path}
	}
	d.Servers = append([]MemcachedServer{first}, hosts...)
	if err := d.readOptions(q); err != nil {
		return d, err
	}
	return d, nil
}

// memcachedQueryHost reads host[k]=weight: the port after the last ":"
// (11211 without one).
func memcachedQueryHost(k, weight string) (MemcachedServer, error) {
	s := MemcachedServer{}
	if weight != "" {
		w, err := parseWeight(weight)
		if err != nil {
			return s, err
		}
		s.Weight = w
	}
	if strings.HasPrefix(k, "/") {
		if i := strings.LastIndexByte(k, ':'); i >= 0 {
			return s, dsnErrorf("socket host[%s] cannot carry a port", k)
		}
		s.Addr = CacheAddr{Socket: k}
		return s, nil
	}
	host, port, err := splitHostPort(k)
	if err != nil {
		return s, err
	}
	if port == 0 {
		port = 11211
	}
	s.Addr = CacheAddr{Host: host, Port: port}
	return s, nil
}

func parseWeight(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<16 {
		return 0, dsnErrorf("weight %q is not a number 0..65536", s)
	}
	return n, nil
}

// memcachedIgnored are options (upper-cased, as Symfony does) that change
// neither key placement nor the stored bytes the edge reads.
var memcachedIgnored = map[string]bool{
	"BINARY_PROTOCOL": true, "NO_BLOCK": true, "TCP_NODELAY": true, "TCP_KEEPALIVE": true,
	"CONNECT_TIMEOUT": true, "RETRY_TIMEOUT": true, "SEND_TIMEOUT": true, "RECV_TIMEOUT": true,
	"POLL_TIMEOUT": true, "SERVER_FAILURE_LIMIT": true, "DEAD_TIMEOUT": true, "COMPRESSION": true,
	"COMPRESSION_TYPE": true, "SERIALIZER": true, "BUFFER_WRITES": true, "SOCKET_SEND_SIZE": true,
	"SOCKET_RECV_SIZE": true, "NOREPLY": true, "NUMBER_OF_REPLICAS": true, "RANDOMIZE_REPLICA_READ": true,
	"REMOVE_FAILED_SERVERS": true, "USER_FLAGS": true, "VERIFY_KEY": true,
	"PERSISTENT_ID": true, "USERNAME": true, "PASSWORD": true, "WEIGHT": true, "LAZY": true,
}

func (d *MemcachedDSN) readOptions(q phpQuery) error {
	for name, v := range q.scalars {
		switch up := strings.ToUpper(name); {
		case up == "PREFIX_KEY":
			if len(v) > 128 {
				return dsnErrorf("prefix_key is %d bytes, php-memcached allows 128", len(v))
			}
			for i := 0; i < len(v); i++ {
				if v[i] <= ' ' || v[i] == 0x7f {
					return dsnErrorf("prefix_key has byte %#x, which memcached keys cannot carry", v[i])
				}
			}
			d.PrefixKey = v
		case up == "LIBKETAMA_COMPATIBLE":
			if strings.TrimSpace(v) != "1" {
				return dsnErrorf("libketama_compatible=%s changes the key distribution away from ketama; the edge reads only Symfony's default (1)", v)
			}
		case up == "HASH":
			if !strings.EqualFold(v, "md5") {
				return dsnErrorf("hash=%s changes where keys live; the edge reads only the ketama default (md5)", v)
			}
		case up == "DISTRIBUTION":
			return dsnErrorf("distribution=%s changes where keys live; the edge reads only Symfony's default (weighted ketama)", v)
		case memcachedIgnored[up]:
		default:
			return dsnErrorf("option %q is not one the edge knows; remove it or leave css_cache off", name)
		}
	}
	for name := range q.arrays {
		if name != "host" {
			return dsnErrorf("option %s[...] is not one the edge knows", name)
		}
	}
	return nil
}
