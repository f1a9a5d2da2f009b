package cssproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// memcachedIdleConns is how many idle connections are kept: lookups only
// happen on misses and revalidations, a handful at a time.
const memcachedIdleConns = 8

// memcachedBackend reads the design keys the way MemcachedAdapter stores
// them (FACTS 5.4): every key is prefixed with the namespace version kept
// under ":", and every value went through php-memcached's flags and
// compression layer before Symfony's marshaller. It never writes: if ":" is
// missing, mosparo has not written anything we could find.
type memcachedBackend struct {
	client   memcachedClient
	sasl     *saslClient // the same client when the DSN has user:password, else nil
	log      *zap.Logger
	maxValue int
	prefix   string // prefix_key, php-memcached's OPT_PREFIX_KEY
	servers  []configs.MemcachedServer

	mu sync.Mutex
	// ns is the last namespace version seen (nil: none yet). Each lookup
	// reads ":" again in the same round trip, so a clear() on the PHP side
	// is noticed on the next lookup at a cost of one more round trip.
	ns []byte
}

// newMemcachedBackend reads url as Symfony does (configs.ParseMemcachedDSN):
// every server it lists, in php-memcached's ketama placement, and the
// prefix_key in front of every key.
func newMemcachedBackend(url string, timeout time.Duration, maxValue int, log *zap.Logger) (*memcachedBackend, error) {
	d, err := configs.ParseMemcachedDSN(url)
	if err != nil {
		return nil, fmt.Errorf("css_cache.url: %w", err)
	}
	b := &memcachedBackend{log: log, maxValue: maxValue, prefix: d.PrefixKey, servers: d.Servers}
	sel := newKetama(d.Servers, d.PrefixKey)
	if d.SASL {
		// What php-memcached does with credentials: binary protocol, SASL.
		b.sasl = newSASLClient(sel, d.Username, d.Password, timeout, maxValue)
		b.client = b.sasl
		return b, nil
	}
	c := memcache.NewFromSelector(sel)
	// gomemcache applies Timeout to the dial and to every read and write,
	// the closest it offers to a per-lookup bound.
	c.Timeout = timeout
	c.MaxIdleConns = memcachedIdleConns
	b.client = c
	return b, nil
}

// memcachedClient reads items: gomemcache's client for the text protocol,
// saslClient for servers that require SASL.
type memcachedClient interface {
	GetMulti(keys []string) (map[string]*memcache.Item, error)
	Close() error
}

func (b *memcachedBackend) name() string { return "memcached" }

// invalidates is false: memcached has no invalidation push, entries are
// revalidated on an interval instead.
func (b *memcachedBackend) invalidates() bool { return false }

// run only waits: both clients dial lazily. It closes idle connections on
// the way out so no socket outlives the proxy.
func (b *memcachedBackend) run(ctx context.Context) error {
	<-ctx.Done()
	return b.client.Close()
}

// ping asks every server for its version on a fresh connection, bounded
// by ctx (gomemcache's own Ping would use the short lookup timeout).
func (b *memcachedBackend) ping(ctx context.Context) error {
	if b.sasl != nil {
		return b.sasl.ping(ctx)
	}
	for _, s := range b.servers {
		if err := pingMemcached(ctx, s.Addr); err != nil {
			return fmt.Errorf("memcached %s: %w", s.Addr, err)
		}
	}
	return nil
}

func pingMemcached(ctx context.Context, a configs.CacheAddr) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, a.Network(), a.String())
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReaderSize(c, 64).ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("VERSION ")) {
		return fmt.Errorf("answered %q to version", bytes.TrimSpace(line))
	}
	return nil
}

// lookup reads ":" and both keys under the last known namespace version in
// one GetMulti; if ":" moved, it reads the keys again under the new one.
// gomemcache takes no context: its Timeout bounds each I/O instead.
func (b *memcachedBackend) lookup(_ context.Context, id projectID) (content, hash []byte, err error) {
	b.mu.Lock()
	ns := b.ns
	b.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		nsKey := b.prefix + memcachedNamespaceKey
		keys := []string{nsKey}
		var ck, hk string
		if ns != nil {
			if ck, err = memcachedKey(b.prefix, ns, id.contentKey()); err != nil {
				return nil, nil, err
			}
			if hk, err = memcachedKey(b.prefix, ns, id.hashKey()); err != nil {
				return nil, nil, err
			}
			keys = append(keys, ck, hk)
		}
		items, err := b.client.GetMulti(keys)
		if err != nil {
			return nil, nil, fmt.Errorf("memcached get: %w", err)
		}
		nsItem := items[nsKey]
		if nsItem == nil {
			// No namespace version: nothing mosparo wrote is reachable.
			return nil, nil, nil
		}
		cur, err := b.decode(nsItem, maxHashLen)
		if err != nil {
			return nil, nil, fmt.Errorf("namespace version %q: %w", memcachedNamespaceKey, err)
		}
		if ns == nil || !bytes.Equal(cur, ns) {
			ns = bytes.Clone(cur)
			b.mu.Lock()
			b.ns = ns
			b.mu.Unlock()
			continue
		}
		ci, hi := items[ck], items[hk]
		if ci == nil || hi == nil {
			return nil, nil, nil
		}
		if content, err = b.decode(ci, b.maxValue); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", ck, err)
		}
		if hash, err = b.decode(hi, maxHashLen); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", hk, err)
		}
		return content, hash, nil
	}
	// The version changed twice within one lookup: someone is clearing the
	// cache right now; let a node answer.
	return nil, nil, errors.New("memcached: namespace version keeps changing")
}

// decode undoes php-memcached's layer, then Symfony's marshaller.
func (b *memcachedBackend) decode(it *memcache.Item, maxLen int) ([]byte, error) {
	v, err := decodeMemcachedValue(it.Flags, it.Value, maxLen)
	if err != nil {
		return nil, err
	}
	return decodePHPString(v, maxLen)
}

// Interface guards.
var _ backend = (*memcachedBackend)(nil)
