package cssproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// redisCacheBytes is rueidis' own client-side cache per connection. The
// proxy keeps its own decoded copy, so this only needs to hold what is
// between being read and being decoded; tracking itself does not depend on
// it (invalidations reach OnInvalidations either way).
const redisCacheBytes = 4 << 20

// redisReconnect bounds the backoff between attempts to build the client
// while Redis is unreachable at start.
const (
	redisReconnectMin = 100 * time.Millisecond
	redisReconnectMax = 5 * time.Second
)

// sentinelRefresh is how often the sentinels are asked for the master
// besides their +switch-master events.
const sentinelRefresh = 2 * time.Second

// errNotConnected is returned by lookups before Run has a client; it is a
// plain miss, not a failure that should open the breaker.
var errNotConnected = errors.New("cssproxy: redis client not connected yet")

// redisBackend reads the design keys from Redis as RedisAdapter writes
// them: bare keys, the marshalled string as the value (FACTS 5.4). With
// client tracking (RESP3) every key read is remembered by the server, which
// pushes an invalidation when mosparo rewrites it.
type redisBackend struct {
	opt      rueidis.ClientOption
	log      *zap.Logger
	maxValue int
	ttl      time.Duration // how long rueidis may keep a tracked value

	client   atomic.Pointer[rueidis.Client]
	tracking atomic.Bool
}

// redisSettings are the knobs of a redisBackend, taken from css_cache.
type redisSettings struct {
	timeout  time.Duration // one lookup, dial included
	ping     time.Duration // idle-connection PING period (revalidate_interval)
	tracking bool
	maxValue int
	ttl      time.Duration
}

// newRedisBackend reads url as Symfony does (configs.ParseRedisDSN); the
// connection is made by run, so a Redis that is down when the balancer
// starts is only a cold cache.
func newRedisBackend(url string, s redisSettings, log *zap.Logger,
	invalidate func(id projectID), invalidateAll func()) (*redisBackend, error) {
	opt, err := redisOptions(url)
	if err != nil {
		return nil, fmt.Errorf("css_cache.url: %w", err)
	}
	// rueidis PINGs an idle connection every Dialer.KeepAlive and drops it
	// when no answer comes within ConnWriteTimeout; dropping it flushes
	// the local copy (OnInvalidations(nil)). Hits are served locally, so
	// the connection is usually idle: without a short period a silently
	// lost connection (a partition, a hung server) would go unnoticed, and
	// with it every invalidation, for as long as the OS keep-alive takes.
	opt.Dialer = net.Dialer{Timeout: s.timeout, KeepAlive: s.ping}
	opt.Sentinel.Dialer = opt.Dialer
	if opt.Sentinel.MasterSet != "" {
		// rueidis follows +switch-master; the refresh catches a missed one.
		opt.Sentinel.TopologyRefreshInterval = sentinelRefresh
	}
	opt.ConnWriteTimeout = max(10*s.timeout, 250*time.Millisecond)
	opt.DisableRetry = true
	opt.ForceSingleClient = opt.Sentinel.MasterSet == ""
	opt.DisableCache = !s.tracking
	opt.CacheSizeEachConn = redisCacheBytes
	b := &redisBackend{opt: opt, log: log, maxValue: s.maxValue, ttl: s.ttl}
	b.opt.OnInvalidations = func(msgs []rueidis.RedisMessage) {
		if !b.tracking.Load() {
			// Without tracking the local copy never relied on
			// invalidations: entries age out by revalidate_interval and
			// are served up to max_stale while the cache is down.
			return
		}
		if msgs == nil {
			// Whole-db flush, or the connection closed: tracking promises
			// nothing about what happened meanwhile.
			invalidateAll()
			return
		}
		for i := range msgs {
			key, err := msgs[i].ToString()
			if err != nil {
				continue
			}
			if id, ok := projectIDFromKey(key); ok {
				invalidate(id)
			}
		}
	}
	b.tracking.Store(s.tracking)
	return b, nil
}

// redisOptions turns a REDIS_URL into rueidis options: the server or the
// sentinels, credentials, database and TLS exactly as RedisAdapter uses
// them (FACTS 11.8).
func redisOptions(url string) (rueidis.ClientOption, error) {
	d, err := configs.ParseRedisDSN(url)
	if err != nil {
		return rueidis.ClientOption{}, err
	}
	opt := rueidis.ClientOption{Username: d.Username, Password: d.Password, SelectDB: d.DB}
	for _, a := range d.Addrs {
		opt.InitAddress = append(opt.InitAddress, a.String())
	}
	if d.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: d.TLSServerName, InsecureSkipVerify: d.TLSInsecure} //nolint:gosec // ssl[verify_peer]=0 is the operator's choice, as on the nodes
		if d.TLSCAFile != "" {
			pem, err := os.ReadFile(d.TLSCAFile)
			if err != nil {
				return opt, fmt.Errorf("ssl[cafile]: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return opt, fmt.Errorf("ssl[cafile] %s: no PEM certificate", d.TLSCAFile)
			}
		}
		opt.TLSConfig = tc
	}
	if d.Sentinel != "" {
		// Symfony hands the auth option (not the DSN password) to the
		// sentinels, over TLS with rediss: as well.
		opt.Sentinel = rueidis.SentinelOption{MasterSet: d.Sentinel, Password: d.SentinelPassword, TLSConfig: opt.TLSConfig}
	}
	opt.DialCtxFn = dialRedis
	return opt, nil
}

// dialRedis dials a unix socket for a path (phpredis treats a host
// starting with "/" as one, never with TLS), else TCP with tc.
func dialRedis(ctx context.Context, dst string, d *net.Dialer, tc *tls.Config) (net.Conn, error) {
	if strings.HasPrefix(dst, "/") {
		return d.DialContext(ctx, "unix", dst)
	}
	if tc != nil {
		return (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", dst)
	}
	return d.DialContext(ctx, "tcp", dst)
}

func (b *redisBackend) name() string { return "redis" }

// invalidates reports whether held entries stay valid until the server
// says otherwise (tracking on and a client connected).
func (b *redisBackend) invalidates() bool { return b.tracking.Load() && b.client.Load() != nil }

// run connects (retrying with backoff while Redis is unreachable), then
// holds the client until ctx ends.
func (b *redisBackend) run(ctx context.Context) error {
	wait := redisReconnectMin
	for {
		c, err := rueidis.NewClient(b.opt)
		if errors.Is(err, rueidis.ErrNoCache) && !b.opt.DisableCache {
			// Redis before 6 or without RESP3: no tracking, so fall back to
			// revalidating like memcached.
			b.log.Warn("redis has no client tracking; revalidating on an interval", zap.Error(err))
			b.opt.DisableCache = true
			b.tracking.Store(false)
			continue
		}
		if err == nil {
			b.client.Store(&c)
			b.log.Info("connected to css cache", zap.String("backend", "redis"),
				zap.Bool("tracking", b.tracking.Load()))
			<-ctx.Done()
			b.client.Store(nil)
			c.Close()
			return nil
		}
		// Warn once per outage, then keep retrying quietly.
		lvl := zap.DebugLevel
		if wait == redisReconnectMin {
			lvl = zap.WarnLevel
		}
		b.log.Log(lvl, "css cache unreachable", zap.String("backend", "redis"), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, redisReconnectMax)
	}
}

// ping sends PING to the server (through Sentinel: the current master).
func (b *redisBackend) ping(ctx context.Context) error {
	cp := b.client.Load()
	if cp == nil {
		return errNotConnected
	}
	c := *cp
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

// lookup reads both keys in one round trip. A missing key is nil content
// or hash without an error.
func (b *redisBackend) lookup(ctx context.Context, id projectID) (content, hash []byte, err error) {
	cp := b.client.Load()
	if cp == nil {
		return nil, nil, errNotConnected
	}
	c := *cp
	var resps []rueidis.RedisResult
	if b.tracking.Load() {
		resps = c.DoMultiCache(ctx,
			rueidis.CT(c.B().Get().Key(id.contentKey()).Cache(), b.ttl),
			rueidis.CT(c.B().Get().Key(id.hashKey()).Cache(), b.ttl))
	} else {
		resps = c.DoMulti(ctx,
			c.B().Get().Key(id.contentKey()).Build(),
			c.B().Get().Key(id.hashKey()).Build())
	}
	var raw [2][]byte
	for i, r := range resps {
		v, err := r.AsBytes()
		if rueidis.IsRedisNil(err) {
			// Both keys are needed (FACTS 5.3); one missing is a miss.
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("redis get: %w", err)
		}
		raw[i] = v
	}
	// AsBytes aliases rueidis' immutable string; the decoders only reslice.
	if content, err = decodePHPString(raw[0], b.maxValue); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", id.contentKey(), err)
	}
	if hash, err = decodePHPString(raw[1], maxHashLen); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", id.hashKey(), err)
	}
	return content, hash, nil
}

// Interface guards.
var _ backend = (*redisBackend)(nil)
