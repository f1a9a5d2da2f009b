package cssproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
)

// refreshWorkers revalidate stale entries in the background; a couple are
// plenty since each lookup is one round trip to the cache.
const refreshWorkers = 2

// refreshQueue bounds pending background revalidations; when full, the
// entry is revalidated on a later request instead.
const refreshQueue = 1024

// redisCacheTTL is how long rueidis may keep a tracked value in its own
// cache. Tracking invalidates it earlier on any rewrite.
const redisCacheTTL = time.Minute

// Options are the dependencies of a Proxy; the zero value logs nothing and
// uses the system clock.
type Options struct {
	// Logger receives connection changes, breaker transitions and one line
	// per corrupt value. Nil means no logging. The caller names it.
	Logger *zap.Logger
	// Clock is used for revalidation and the breaker. Nil means
	// clock.System.
	Clock clock.Clock
}

// Stats is a snapshot of the proxy for /status and metrics.
type Stats struct {
	// Backend is "redis" or "memcached".
	Backend string `json:"backend"`
	// Hits are requests answered at the edge (200, 304 or 307).
	Hits uint64 `json:"hits"`
	// Redirects and NotModified are the 307 and 304 part of Hits.
	Redirects   uint64 `json:"redirects"`
	NotModified uint64 `json:"not_modified"`
	// Misses are CSS requests left to a node: keys absent, hash mismatch,
	// corrupt value, or the cache unavailable.
	Misses uint64 `json:"misses"`
	// Errors are failed cache lookups (timeouts, connection errors) plus
	// values that could not be decoded.
	Errors uint64 `json:"errors"`
	// Breaker is closed, open or half_open.
	Breaker string `json:"breaker"`
	// Entries and Bytes describe the local copy (bounded by
	// css_cache.max_bytes).
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
	// CoherenceChecks are unhashed requests left to a node to compare its
	// redirect with the cached hash; Disagreements are node answers that
	// differed (another hash, or 404); Disagreeing is how many projects'
	// unhashed URLs the edge leaves to the nodes now (FACTS 11.5).
	// Reachable is whether the shared cache answered its last probes
	// (every css_cache.revalidate_interval); null before the first probe.
	// mosparo's health API does not cover the cache (FACTS 11.9).
	Reachable *bool `json:"reachable"`
	// DownSince and LastError describe the current outage.
	DownSince       *time.Time `json:"down_since,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	CoherenceChecks uint64     `json:"coherence_checks"`
	Disagreements   uint64     `json:"disagreements"`
	Disagreeing     int        `json:"disagreeing_projects"`
	// Stale are the part of Hits answered while every node that could
	// take them had an unfinished update (ServeStale).
	Stale uint64 `json:"stale_while_updating"`
}

// backend is what the proxy needs from a shared cache.
type backend interface {
	name() string
	// lookup returns the decoded CSS and design hash of a project; both nil
	// (and no error) when either key is absent. Transport failures and
	// decode failures (wrapping ErrCorrupt, ErrNotString, ErrTooLarge) are
	// errors.
	lookup(ctx context.Context, id projectID) (content, hash []byte, err error)
	// invalidates reports whether the server pushes invalidations, so that
	// entries need no revalidation.
	invalidates() bool
	// run owns the backend's connections until ctx ends.
	run(ctx context.Context) error
	// ping reports whether every server of the cache answers now.
	ping(ctx context.Context) error
}

// Proxy answers /resources CSS requests from the shared cache. The zero
// value is not usable: create it with New, start Run, and call Serve from
// the request handler. Its methods are safe for concurrent use. A Proxy
// belongs to one configuration; a reload builds a new one (cold cache).
type Proxy struct {
	backend    backend
	store      *store
	breaker    *breaker
	log        *zap.Logger
	clock      clock.Clock
	timeout    time.Duration
	revalidate time.Duration
	maxStale   time.Duration

	coh     *coherence
	probe   *probe
	refresh chan projectID
	bufs    sync.Pool // *[]byte for building Location headers

	// pack queues new entries for their compressed forms (withForms).
	pack chan *entry

	hits, redirects, notModified, misses, errs atomic.Uint64
	stale                                      atomic.Uint64
}

// New builds a proxy for cfg. It does not connect: Run does, so a cache
// that is down at start only means every request goes to a node. cfg must
// have been loaded through configs (defaults applied, validated).
func New(cfg configs.CSSCache, opts Options) (*Proxy, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	clk := clock.OrSystem(opts.Clock)
	if cfg.MaxBytes <= 0 || cfg.MaxValueBytes <= 0 || cfg.Timeout <= 0 || cfg.Breaker.Failures <= 0 || cfg.ClientTracking == nil || cfg.CoherenceInterval == nil {
		return nil, errors.New("cssproxy: css_cache without defaults; load it through configs")
	}
	p := &Proxy{
		store:      newStore(cfg.MaxBytes),
		breaker:    newBreaker(cfg.Breaker.Failures, cfg.Breaker.Cooldown.D()),
		log:        log,
		clock:      clk,
		timeout:    cfg.Timeout.D(),
		revalidate: cfg.RevalidateInterval.D(),
		maxStale:   cfg.MaxStale.D(),
		refresh:    make(chan projectID, refreshQueue),
		pack:       make(chan *entry, refreshQueue),
		coh:        newCoherence(cfg.CoherenceInterval.D()),
		probe:      newProbe(cfg.RevalidateInterval.D(), cfg.Timeout.D()),
	}
	p.bufs.New = func() any { b := make([]byte, 0, 256); return &b }
	switch cfg.Backend {
	case configs.CacheRedis:
		tracking := *cfg.ClientTracking
		b, err := newRedisBackend(cfg.URL, redisSettings{
			timeout: p.timeout, ping: p.revalidate, tracking: tracking,
			maxValue: cfg.MaxValueBytes, ttl: redisCacheTTL,
		}, log, p.store.invalidate, p.store.invalidateAll)
		if err != nil {
			return nil, fmt.Errorf("cssproxy: %w", err)
		}
		p.backend = b
	case configs.CacheMemcached:
		b, err := newMemcachedBackend(cfg.URL, p.timeout, cfg.MaxValueBytes, log)
		if err != nil {
			return nil, fmt.Errorf("cssproxy: %w", err)
		}
		p.backend = b
	default:
		return nil, fmt.Errorf("cssproxy: backend %q is not redis or memcached", cfg.Backend)
	}
	return p, nil
}

// Run connects to the cache and revalidates stale entries in the
// background until ctx ends; it returns after every goroutine it started
// has exited. Serve works without Run, but then never connects to Redis
// and never refreshes in the background.
func (p *Proxy) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var berr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		berr = p.backend.run(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.probe.run(ctx, p.backend.ping, p.clock, p.log, p.backend.name())
	}()
	for range refreshWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.refreshLoop(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.packLoop(ctx)
	}()
	wg.Wait()
	if berr != nil {
		return fmt.Errorf("cssproxy: %s: %w", p.backend.name(), berr)
	}
	return nil
}

// Stats returns a snapshot of the counters and the local cache.
func (p *Proxy) Stats() Stats {
	n, b := p.store.usage()
	since, lastErr := p.probe.down()
	var downSince *time.Time
	if !since.IsZero() {
		downSince = &since
	}
	return Stats{
		Reachable:   p.probe.reachable(),
		DownSince:   downSince,
		LastError:   lastErr,
		Backend:     p.backend.name(),
		Hits:        p.hits.Load(),
		Redirects:   p.redirects.Load(),
		NotModified: p.notModified.Load(),
		Misses:      p.misses.Load(),
		Errors:      p.errs.Load(),
		Breaker:     p.breaker.current().String(),
		Entries:     n,
		Bytes:       int64(b),

		CoherenceChecks: p.coh.checks.Load(),
		Disagreements:   p.coh.disagreements.Load(),
		Disagreeing:     p.coh.disagreeing(),
		Stale:           p.stale.Load(),
	}
}

// Reachable reports whether the shared cache may be used: false only once
// probes have failed (unknown before the first probe counts as reachable,
// so a restart does not look like an outage). Cheap; for VRRP tracking.
func (p *Proxy) Reachable() bool { return p.probe.state.Load() != reachDown }

// entryFor returns what is known about id, looking it up in the shared
// cache when nothing usable is held. The result may be a negative entry,
// or nil when the cache could not be asked.
func (p *Proxy) entryFor(id projectID) *entry {
	e := p.store.get(id)
	if e == nil {
		return p.load(id)
	}
	if p.backend.invalidates() {
		return e
	}
	age := p.clock.Now().Sub(e.fetched)
	if age < p.revalidate {
		return e
	}
	if age < p.revalidate+p.maxStale {
		p.scheduleRefresh(e)
		return e
	}
	// Too old to trust (revalidation kept failing): ask now.
	return p.load(id)
}

// scheduleRefresh queues one background revalidation of a stale entry.
func (p *Proxy) scheduleRefresh(e *entry) {
	if !e.refreshing.CompareAndSwap(false, true) {
		return
	}
	select {
	case p.refresh <- e.id:
	default:
		e.refreshing.Store(false)
	}
}

func (p *Proxy) refreshLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-p.refresh:
			p.revalidateOne(id)
		}
	}
}

// revalidateOne re-reads one stale entry (or joins a request already doing
// so). On failure the old copy stays, served up to max_stale, and its flag
// is cleared so a later request can schedule another try.
func (p *Proxy) revalidateOne(id projectID) {
	if p.load(id) != nil {
		return // a new entry (with a clear flag) replaced the old one
	}
	if old := p.store.get(id); old != nil {
		old.refreshing.Store(false)
	}
}

// load performs (or joins) the lookup of id and waits for its result.
func (p *Proxy) load(id projectID) *entry {
	f, leader := p.store.begin(id)
	if !leader {
		<-f.done
		return f.result
	}
	e := p.fetch(id)
	p.store.finish(id, f, e)
	if e != nil && e.found && !e.packed {
		select {
		case p.pack <- e:
		default:
			// Full: served uncompressed until a later lookup queues it.
		}
	}
	return e
}

// packLoop gives new entries their gzip and brotli forms, one at a time at
// the best levels, so no request waits for that compression.
func (p *Proxy) packLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-p.pack:
			p.packOne(e)
		}
	}
}

// packOne compresses e and swaps the result in, unless e was replaced
// meanwhile.
func (p *Proxy) packOne(e *entry) {
	p.store.upgrade(e, e.withForms())
}

// fetch asks the shared cache through the breaker and builds the entry. It
// returns nil only when the cache could not answer; absent keys and
// undecodable values become negative entries.
func (p *Proxy) fetch(id projectID) *entry {
	now := p.clock.Now()
	if !p.breaker.allow(now) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	content, hash, err := p.backend.lookup(ctx, id)
	cancel()
	now = p.clock.Now()
	switch {
	case errors.Is(err, errNotConnected):
		return nil
	case errors.Is(err, ErrNotString):
		p.recordSuccess()
		return newMissEntry(id, now)
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrTooLarge):
		p.recordSuccess()
		p.errs.Add(1)
		p.log.Warn("undecodable css cache value", zap.String("project", string(id[:])), zap.Error(err))
		return newMissEntry(id, now)
	case err != nil:
		p.errs.Add(1)
		if p.breaker.failure(now) {
			p.log.Warn("css cache breaker open", zap.String("backend", p.backend.name()),
				zap.String("state", BreakerOpen.String()), zap.Error(err))
		}
		return nil
	}
	p.recordSuccess()
	if content == nil {
		return newMissEntry(id, now)
	}
	if old := p.store.get(id); old != nil && old.found && bytes.Equal(old.hash, hash) && bytes.Equal(old.body, content) {
		// Revalidated and unchanged (the common case with memcached): keep
		// the gzip and brotli forms and ETags instead of computing them again.
		return old.renewed(now)
	}
	e, err := newEntry(id, content, hash, now)
	if err != nil {
		p.errs.Add(1)
		p.log.Warn("undecodable css cache value", zap.String("project", string(id[:])), zap.Error(err))
		return newMissEntry(id, now)
	}
	return e
}

func (p *Proxy) recordSuccess() {
	if p.breaker.success() {
		p.log.Info("css cache breaker closed", zap.String("backend", p.backend.name()),
			zap.String("state", BreakerClosed.String()))
	}
}
