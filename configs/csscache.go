package configs

import (
	"strings"
	"time"
)

// CacheBackend is a css_cache.backend value, spelled as in the file (the
// nodes' MOSPARO_CACHE_ADAPTER).
type CacheBackend string

// Cache backends; cssproxy.New maps each to its reader. Empty disables the
// edge cache.
const (
	CacheRedis     CacheBackend = "redis"
	CacheMemcached CacheBackend = "memcached"
)

// CSSCache serves mosparo's prepared CSS from the shared cache the nodes
// write it to (FACTS 5). Off when Backend is empty. Every miss, mismatch or
// cache failure falls through to a node, so these knobs trade freshness and
// latency, never correctness.
type CSSCache struct {
	// Backend is redis or memcached, the value of the nodes'
	// MOSPARO_CACHE_ADAPTER. Empty disables the edge cache.
	Backend CacheBackend `yaml:"backend"`
	// URL is the nodes' REDIS_URL (redis://[user:pass@]host[:6379][/db],
	// rediss:// for TLS) or MEMCACHED_URL (memcached://host[:11211], one
	// server: php-memcached spreads keys over several servers with ketama,
	// which this reader does not reproduce). Required with Backend.
	URL string `yaml:"url"`
	// Timeout bounds one lookup in the shared cache, dialing included; a
	// request that misses the local cache waits at most this long before it
	// goes to a node. Default 25ms.
	Timeout Duration `yaml:"timeout"`
	// Breaker stops asking a failing cache so an outage costs nothing.
	Breaker CSSCacheBreaker `yaml:"breaker"`
	// MaxBytes bounds the local in-memory copy (CSS, its gzip and brotli forms and
	// bookkeeping), in bytes. Default 32 MiB; at least 64 KiB.
	MaxBytes int `yaml:"max_bytes"`
	// MaxValueBytes is the largest CSS accepted from the cache, in bytes
	// (decoded); larger values are served by the nodes. It also bounds what a
	// corrupt length field can make the decoders allocate. Default 1 MiB, or
	// half of max_bytes when that is smaller.
	MaxValueBytes int `yaml:"max_value_bytes"`
	// RevalidateInterval is how long a locally held entry is served before it
	// is re-read in the background: always with memcached, and with Redis
	// when ClientTracking is off. With tracking it is the PING period of the
	// idle Redis connection instead, bounding how long a silently lost
	// connection (and the invalidations it would carry) goes unnoticed
	// before the local copy is dropped. Default 2s.
	RevalidateInterval Duration `yaml:"revalidate_interval"`
	// MaxStale is how long past RevalidateInterval an entry may still be
	// served while re-reading it fails (cache down); older entries fall
	// through to the nodes. Default 30s.
	MaxStale Duration `yaml:"max_stale"`
	// ClientTracking uses Redis 6+ server-assisted client-side caching
	// (RESP3 CLIENT TRACKING): a rewrite by mosparo invalidates the local
	// copy at once and no revalidation traffic is needed. Redis only.
	// Default true; servers without RESP3 fall back to revalidation.
	ClientTracking *bool `yaml:"client_tracking"`
	// CoherenceInterval is how often, per project, one request for the
	// unhashed /resources/<uuid>.css is left to a node so its redirect can
	// be compared with the cached hash (mosparo answers it from the
	// database; FACTS 11.5). While they disagree (project deleted, shared
	// cache flag turned off, cache not yet regenerated) the edge leaves that
	// project's unhashed URL to the nodes. 0s turns the check off. Default
	// 30s; otherwise 1s..24h.
	CoherenceInterval *Duration `yaml:"coherence_interval"`
}

// CSSCacheBreaker opens after Failures consecutive failed lookups and then
// skips the cache for Cooldown before one probe lookup may close it again.
type CSSCacheBreaker struct {
	Failures int      `yaml:"failures"` // consecutive failures that open it, 1..1000. Default 3.
	Cooldown Duration `yaml:"cooldown"` // how long it stays open. Default 5s.
}

func (c *CSSCache) defaults() {
	setDuration(&c.Timeout, "25ms")
	setInt(&c.Breaker.Failures, 3)
	setDuration(&c.Breaker.Cooldown, "5s")
	setInt(&c.MaxBytes, 32<<20)
	setInt(&c.MaxValueBytes, min(1<<20, c.MaxBytes/2))
	setDuration(&c.RevalidateInterval, "2s")
	setDuration(&c.MaxStale, "30s")
	if c.CoherenceInterval == nil {
		d := Duration(30 * time.Second)
		c.CoherenceInterval = &d
	}
	if c.ClientTracking == nil {
		t := true
		c.ClientTracking = &t
	}
}

func (c *CSSCache) validate(v *validator, path string) {
	switch c.Backend {
	case "":
	case CacheRedis, CacheMemcached:
		if c.URL == "" {
			v.Errorf(path+".url", "is required when css_cache.backend is set")
		} else if msg := checkCacheURL(c.Backend, c.URL); msg != "" {
			v.Errorf(path+".url", "%s", msg)
		}
	default:
		v.Errorf(path+".backend", "must be redis or memcached (or empty to disable), got %q", c.Backend)
	}
	if d := c.Timeout.D(); d < time.Millisecond || d > 5*time.Second {
		v.Errorf(path+".timeout", "must be 1ms..5s (it is added to every miss), got %s", d)
	}
	if n := c.Breaker.Failures; n < 1 || n > 1000 {
		v.Errorf(path+".breaker.failures", "must be 1..1000, got %d", n)
	}
	if d := c.Breaker.Cooldown.D(); d < 100*time.Millisecond || d > 10*time.Minute {
		v.Errorf(path+".breaker.cooldown", "must be 100ms..10m, got %s", d)
	}
	if c.MaxBytes < 64<<10 || c.MaxBytes > 16<<30 {
		v.Errorf(path+".max_bytes", "must be 65536..17179869184 bytes, got %d", c.MaxBytes)
	}
	if c.MaxValueBytes < 1024 || c.MaxValueBytes > 64<<20 {
		v.Errorf(path+".max_value_bytes", "must be 1024..67108864 bytes, got %d", c.MaxValueBytes)
	} else if c.MaxValueBytes > c.MaxBytes/2 {
		v.Errorf(path+".max_value_bytes", "must be at most half of css_cache.max_bytes (%d), got %d", c.MaxBytes/2, c.MaxValueBytes)
	}
	if d := c.RevalidateInterval.D(); d < 10*time.Millisecond || d > time.Hour {
		v.Errorf(path+".revalidate_interval", "must be 10ms..1h, got %s", d)
	}
	if d := c.CoherenceInterval.D(); d != 0 && (d < time.Second || d > 24*time.Hour) {
		v.Errorf(path+".coherence_interval", "must be 0s (off) or 1s..24h, got %s", d)
	}
	if d := c.MaxStale.D(); d > 24*time.Hour {
		v.Errorf(path+".max_stale", "must be 0..24h, got %s", d)
	}
}

// checkCacheURL returns what is wrong with u for backend, or "": the DSN
// must read as Symfony reads it (cachedsn.go) and name nothing the edge
// cannot follow.
func checkCacheURL(backend CacheBackend, u string) string {
	switch backend {
	case CacheRedis:
		if !strings.HasPrefix(u, "redis:") && !strings.HasPrefix(u, "rediss:") {
			return "scheme does not match backend redis; write it like " + exampleCacheURL(backend)
		}
		if _, err := ParseRedisDSN(u); err != nil {
			return strings.TrimPrefix(err.Error(), ErrCacheDSN.Error()+": ")
		}
	case CacheMemcached:
		if !strings.HasPrefix(u, "memcached:") {
			return "scheme does not match backend memcached; write it like " + exampleCacheURL(backend)
		}
		// SASL credentials are read as php-memcached uses them: binary
		// protocol, SASL PLAIN (cssproxy/memcachedsasl.go).
		if _, err := ParseMemcachedDSN(u); err != nil {
			return strings.TrimPrefix(err.Error(), ErrCacheDSN.Error()+": ")
		}
	}
	return ""
}

func exampleCacheURL(backend CacheBackend) string {
	if backend == CacheRedis {
		return "redis://10.0.0.5:6379/0"
	}
	return "memcached://10.0.0.5:11211"
}
