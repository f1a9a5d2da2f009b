package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// DefaultMaxEntries is the table size when Config.MaxEntries is 0.
const DefaultMaxEntries = 100_000

// Config is one limit: its bucket, how clients are grouped, and the table's
// size. The zero value is not valid: Rate and Burst must be set.
type Config struct {
	// Rate is how many requests a client may make per second in the long
	// run, fractions allowed (0.5: one every two seconds). 0.001..1e6.
	Rate float64
	// Burst is how many requests a client that has been quiet may make at
	// once. 1..1e6.
	Burst int
	// IPv6Prefix is how many leading bits of an IPv6 address name one
	// client: a host is usually given a whole /64. 0 means 64; 1..128.
	// IPv4 (and IPv4-mapped IPv6) addresses are always one client each.
	IPv6Prefix int
	// Exempt clients are never limited and never take a slot. IPv4-mapped
	// IPv6 prefixes match IPv4 addresses.
	Exempt []netip.Prefix
	// MaxEntries bounds how many clients are held at once; it is rounded
	// up to whole sets of the table. 0 means DefaultMaxEntries.
	MaxEntries int
	// Seed keys the hash that places clients in the table; 0 picks a
	// random one, so nobody can aim addresses at one set.
	Seed uint64
}

// Equal reports whether c and o build the same limiter.
func (c Config) Equal(o Config) bool {
	return c.Rate == o.Rate && c.Burst == o.Burst && c.IPv6Prefix == o.IPv6Prefix &&
		c.MaxEntries == o.MaxEntries && c.Seed == o.Seed && slices.Equal(c.Exempt, o.Exempt)
}

// Stats are a limiter's counters.
type Stats struct {
	// Entries is how many slots hold a client; slots are reused, not freed.
	Entries int `json:"entries"`
	// Capacity is the table size: MaxEntries rounded up to whole sets.
	Capacity int `json:"capacity"`
	// Limited counts requests Allow refused.
	Limited uint64 `json:"limited"`
	// Evictions counts clients forgotten while their bucket was not yet
	// full again: each may get one more burst than its limit allows. Many
	// of them mean MaxEntries is too small for the traffic (or a flood).
	Evictions uint64 `json:"evictions"`
}

// ErrConfig is wrapped by New's errors.
var ErrConfig = errors.New("ratelimit: invalid config")

// Limiter holds the buckets of one limit. It is safe for concurrent use.
type Limiter struct {
	cfg       Config
	epoch     time.Time
	interval  int64 // ns per token
	tolerance int64 // how far ahead of now a bucket's schedule may run: (Burst-1) tokens
	exempt    []netip.Prefix
	hiMask    uint64 // IPv6 grouping masks of the two halves of an address
	loMask    uint64
	seeds     [3]uint64
	shards    []shard
	shardMask uint64
	perShard  uint64 // sets per shard
}

// ways is the number of slots a client may occupy: its set. Eight 24-byte
// entries are three cache lines, scanned in one pass.
const ways = 8

// maxShards bounds lock striping; more would cost memory for nothing on
// the few cores an LB has.
const maxShards = 256

// entry is one client's bucket in GCRA form (the generic cell rate
// algorithm, ITU-T I.371): tat is the theoretical arrival time of its next
// request in ns since the epoch; the bucket is full once tat <= now. tat
// 0 marks an empty slot (every stored tat is at least one interval).
type entry struct {
	k   key
	tat int64
}

type set [ways]entry

type shard struct {
	mu        sync.Mutex
	sets      []set
	used      int
	limited   uint64
	evictions uint64
	_         [64]byte // keeps neighbouring shards' locks off one cache line
}

// key is a client: its address (IPv4 as IPv4-mapped IPv6) with the host
// bits of an IPv6 prefix cleared.
type key struct{ hi, lo uint64 }

// New allocates the whole table. epoch is the zero of the limiter's clock:
// pass a time with a monotonic reading (time.Now) and Allow's times are
// measured on it, so wall-clock steps do not disturb the buckets.
func New(cfg Config, epoch time.Time) (*Limiter, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	l := &Limiter{cfg: cfg, epoch: epoch}
	l.interval = max(int64(float64(time.Second)/cfg.Rate), 1)
	l.tolerance = int64(cfg.Burst-1) * l.interval
	for _, p := range cfg.Exempt {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		l.exempt = append(l.exempt, p.Masked())
	}
	bitsV6 := cmp0(cfg.IPv6Prefix, 64)
	if bitsV6 >= 64 {
		l.hiMask, l.loMask = math.MaxUint64, math.MaxUint64<<(128-bitsV6)
	} else {
		l.hiMask = math.MaxUint64 << (64 - bitsV6)
	}
	l.seeds = [3]uint64{cfg.Seed, cfg.Seed*0x9e3779b97f4a7c15 + 1, cfg.Seed ^ 0xa0761d6478bd642f}
	if cfg.Seed == 0 {
		l.seeds = [3]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64()}
	}
	sets := (cmp0(cfg.MaxEntries, DefaultMaxEntries) + ways - 1) / ways
	n := 1
	for n*2 <= min(sets, maxShards) {
		n *= 2
	}
	l.shardMask = uint64(n - 1)
	l.perShard = uint64((sets + n - 1) / n)
	l.shards = make([]shard, n)
	for i := range l.shards {
		l.shards[i].sets = make([]set, l.perShard)
	}
	return l, nil
}

func (c Config) check() error {
	switch {
	case !(c.Rate >= 0.001 && c.Rate <= 1e6):
		return fmt.Errorf("%w: rate %v is not 0.001..1000000 per second", ErrConfig, c.Rate)
	case c.Burst < 1 || c.Burst > 1e6:
		return fmt.Errorf("%w: burst %d is not 1..1000000", ErrConfig, c.Burst)
	case c.IPv6Prefix < 0 || c.IPv6Prefix > 128:
		return fmt.Errorf("%w: IPv6 prefix /%d is not 1..128", ErrConfig, c.IPv6Prefix)
	case c.MaxEntries < 0 || c.MaxEntries > 100_000_000:
		return fmt.Errorf("%w: max entries %d is not 1..100000000", ErrConfig, c.MaxEntries)
	}
	return nil
}

// Config returns the configuration the limiter was built from.
func (l *Limiter) Config() Config { return l.cfg }

// Allow takes a token from addr's bucket at time now. When there is none it
// returns false and how long until there is one. It allocates nothing.
func (l *Limiter) Allow(addr netip.Addr, now time.Time) (ok bool, wait time.Duration) {
	addr = addr.Unmap()
	if l.isExempt(addr) {
		return true, 0
	}
	k := l.key(addr)
	t := max(int64(now.Sub(l.epoch)), 0)
	h := l.hash(k)
	sh := &l.shards[h>>56&l.shardMask]
	sh.mu.Lock()
	s := &sh.sets[uint64(uint32(h))*l.perShard>>32]
	victim := 0
	for i := range s {
		e := &s[i]
		if e.k == k && e.tat != 0 {
			ok, wait = l.take(e, t)
			if !ok {
				sh.limited++
			}
			sh.mu.Unlock()
			return ok, wait
		}
		// The empty slot (tat 0), else the fullest bucket.
		if e.tat < s[victim].tat {
			victim = i
		}
	}
	e := &s[victim]
	switch {
	case e.tat == 0:
		sh.used++
	case e.tat > t:
		sh.evictions++
	}
	e.k, e.tat = k, t+l.interval
	sh.mu.Unlock()
	return true, 0
}

// take applies GCRA to a known client: the request conforms when the
// bucket's schedule runs at most tolerance ahead of now.
func (l *Limiter) take(e *entry, t int64) (bool, time.Duration) {
	tat := max(e.tat, t)
	if tat-t > l.tolerance+l.interval {
		// Only a clock that went back can put the schedule this far
		// ahead; start the client afresh rather than lock it out.
		tat = t
	}
	if ahead := tat - t; ahead > l.tolerance {
		return false, time.Duration(ahead - l.tolerance)
	}
	e.tat = tat + l.interval
	return true, 0
}

// Stats sums the shards' counters.
func (l *Limiter) Stats() Stats {
	st := Stats{Capacity: len(l.shards) * int(l.perShard) * ways}
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		st.Entries += sh.used
		st.Limited += sh.limited
		st.Evictions += sh.evictions
		sh.mu.Unlock()
	}
	return st
}

func (l *Limiter) isExempt(a netip.Addr) bool {
	for _, p := range l.exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// key groups an unmapped address into its client.
func (l *Limiter) key(a netip.Addr) key {
	b := a.As16()
	k := key{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	if a.Is6() {
		k.hi &= l.hiMask
		k.lo &= l.loMask
	}
	return k
}

// hash places a key: two rounds of a keyed 128-bit multiply-fold, so
// addresses that differ in any bit spread over shards (top bits) and sets
// (low bits), and an outsider cannot predict which share a set.
func (l *Limiter) hash(k key) uint64 {
	hi, lo := bits.Mul64(k.hi^l.seeds[0], k.lo^l.seeds[1])
	hi, lo = bits.Mul64(hi^l.seeds[2], lo^0x94d049bb133111eb)
	return hi ^ lo
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
