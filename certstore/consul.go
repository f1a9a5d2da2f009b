package certstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/internal/consulclient"
)

// Defaults of Options.
const (
	DefaultPrefix       = "mosparo-lb/acme/"
	DefaultLockTTL      = 15 * time.Second
	DefaultLockDelay    = 5 * time.Second
	DefaultLockRetry    = time.Second
	DefaultLockWait     = 15 * time.Second
	DefaultMaxValueSize = 512 << 10 // Consul's kv_max_value_size default
)

// ErrValueTooLarge is the error of a Store whose value exceeds
// Options.MaxValueSize, which Consul would refuse.
var ErrValueTooLarge = errors.New("certstore: value too large for Consul KV")

// ErrBadAnswer is the error of a Consul answer that cannot be right: a key
// outside the asked prefix, a name keys.go never produces, a value over
// the size limit.
var ErrBadAnswer = errors.New("certstore: bad answer from consul")

// Options configure a Consul storage. The zero value is usable.
type Options struct {
	// Prefix is the Consul KV folder of everything stored, ending in '/'
	// (one is added). Values live under Prefix+"data/", locks under
	// Prefix+"locks/". Both LBs of a pair must use the same. Default
	// DefaultPrefix.
	Prefix string
	// Logger receives lock events (acquired, lost, renewal failures); nil
	// logs nothing. It is named "certstore".
	Logger *zap.Logger
	// LockTTL is the TTL of a lock's Consul session, renewed every half of
	// it while the lock is held or awaited. A crashed holder's lock is
	// freed by Consul between LockTTL and twice LockTTL (Consul's grace)
	// after its last renewal, plus LockDelay. Consul accepts 10s to 24h.
	// Default DefaultLockTTL.
	LockTTL time.Duration
	// LockDelay is Consul's lock-delay: after a holder's session is
	// invalidated (not after a clean Unlock) no one may take its lock for
	// this long, so a holder that lost the lock without noticing has time
	// to stop. Default DefaultLockDelay; Consul caps it at 60s.
	LockDelay time.Duration
	// LockRetry is how long Lock waits before trying again when the lock
	// is free but refused (lock-delay). Default DefaultLockRetry.
	LockRetry time.Duration
	// LockWait bounds one blocking query while Lock waits for the holder.
	// Default DefaultLockWait.
	LockWait time.Duration
	// MaxValueSize is the largest value Store accepts and Load believes;
	// keep it at or below the agents' kv_max_value_size. Default
	// DefaultMaxValueSize (Consul's default).
	MaxValueSize int
	// Holder names this LB in the lock values, for operators reading KV.
	// Default the host name.
	Holder string
}

// AnswerBound is the smallest consulclient.Config.MaxAnswer that lets the
// client read every value this storage may store: a value travels base64
// encoded inside a JSON array.
func (o Options) AnswerBound() int64 {
	n := o.MaxValueSize
	if n <= 0 {
		n = DefaultMaxValueSize
	}
	return int64(n)*4/3 + 64<<10
}

// Consul is a certmagic.Storage on Consul KV, safe for concurrent use by
// any number of certmagic.Config values. Create it with NewConsul; Close
// releases the locks it still holds. Its client should come from
// consulclient.New, whose answer bound (see Options.AnswerBound) protects
// it from hostile agents.
type Consul struct {
	kv    *api.KV
	sess  *api.Session
	opts  Options
	log   *zap.Logger
	data  string // Prefix + "data/"
	locks string // Prefix + "locks/"

	mu   sync.Mutex
	held map[string]*lock // by lock name
}

// NewConsul returns a storage on client with opts' defaults filled in.
func NewConsul(client *api.Client, opts Options) (*Consul, error) {
	if client == nil {
		return nil, errors.New("certstore: nil consul client")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if dec, err := decodeKey(strings.TrimSuffix(opts.Prefix, "/")); err != nil || dec+"/" != opts.Prefix {
		return nil, fmt.Errorf("certstore: prefix %q: want non-empty components of [A-Za-z0-9_.@-] other than dot and dot-dot", opts.Prefix)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.LockTTL == 0 {
		opts.LockTTL = DefaultLockTTL
	}
	if opts.LockTTL < 10*time.Second || opts.LockTTL > 24*time.Hour {
		return nil, fmt.Errorf("certstore: lock TTL %v outside Consul's 10s..24h", opts.LockTTL)
	}
	if opts.LockDelay == 0 {
		opts.LockDelay = DefaultLockDelay
	}
	if opts.LockDelay < 0 || opts.LockDelay > time.Minute {
		return nil, fmt.Errorf("certstore: lock delay %v outside Consul's 0..60s", opts.LockDelay)
	}
	if opts.LockRetry <= 0 {
		opts.LockRetry = DefaultLockRetry
	}
	if opts.LockWait <= 0 {
		opts.LockWait = DefaultLockWait
	}
	if opts.MaxValueSize <= 0 {
		opts.MaxValueSize = DefaultMaxValueSize
	}
	if opts.Holder == "" {
		opts.Holder, _ = os.Hostname()
	}
	return &Consul{
		kv:    client.KV(),
		sess:  client.Session(),
		opts:  opts,
		log:   opts.Logger.Named("certstore"),
		data:  opts.Prefix + "data/",
		locks: opts.Prefix + "locks/",
		held:  map[string]*lock{},
	}, nil
}

// String names the storage in certmagic's logs.
func (c *Consul) String() string { return "consul:" + c.opts.Prefix }

// Store puts value at key; Flags carry the time of the write, since Consul
// keeps none (Stat's Modified).
func (c *Consul) Store(ctx context.Context, key string, value []byte) error {
	name, err := c.name(key)
	if err != nil {
		return err
	}
	if len(value) > c.opts.MaxValueSize {
		return fmt.Errorf("%w: %q is %d bytes, limit %d", ErrValueTooLarge, key, len(value), c.opts.MaxValueSize)
	}
	p := &api.KVPair{Key: name, Value: value, Flags: uint64(time.Now().UnixNano())}
	if _, err := c.kv.Put(p, writeOpts(ctx)); err != nil {
		return consulclient.Error("kv put", err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (c *Consul) Load(ctx context.Context, key string) ([]byte, error) {
	p, err := c.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, notExist(key)
	}
	return p.Value, nil
}

// Delete removes key and every key below it; a missing key is no error.
func (c *Consul) Delete(ctx context.Context, key string) error {
	name, err := c.name(key)
	if err != nil {
		return err
	}
	if _, err := c.kv.Delete(name, writeOpts(ctx)); err != nil {
		return consulclient.Error("kv delete", err)
	}
	if _, err := c.kv.DeleteTree(name+"/", writeOpts(ctx)); err != nil {
		return consulclient.Error("kv delete", err)
	}
	return nil
}

// Exists reports whether key is a value or a folder of values; false on
// any error.
func (c *Consul) Exists(ctx context.Context, key string) bool {
	_, err := c.Stat(ctx, key)
	return err == nil
}

// Stat describes key: a value (IsTerminal, Size, Modified from Store) or a
// folder of values; an error wrapping fs.ErrNotExist if neither.
func (c *Consul) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	p, err := c.get(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if p != nil {
		info := certmagic.KeyInfo{Key: key, Size: int64(len(p.Value)), IsTerminal: true}
		if p.Flags > 0 && p.Flags <= math.MaxInt64 {
			info.Modified = time.Unix(0, int64(p.Flags))
		}
		return info, nil
	}
	children, err := c.list(ctx, key, false)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if len(children) == 0 {
		return certmagic.KeyInfo{}, notExist(key)
	}
	return certmagic.KeyInfo{Key: key}, nil
}

// List returns the keys below prefix ("" is the root), sorted: its
// children, or with recursive every value and folder below it. A prefix
// that is neither a value nor a folder is an error wrapping fs.ErrNotExist.
func (c *Consul) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	keys, err := c.list(ctx, prefix, recursive)
	if err != nil || len(keys) > 0 || prefix == "" {
		return keys, err
	}
	// An empty list of a value is what a directory walk gives.
	p, err := c.get(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, notExist(prefix)
	}
	return nil, nil
}

// list asks Consul for the names below prefix and maps them back.
func (c *Consul) list(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	folder := c.data
	if prefix != "" {
		name, err := c.name(prefix)
		if err != nil {
			return nil, err
		}
		folder = name + "/"
	}
	sep := "/"
	if recursive {
		sep = ""
	}
	names, _, err := c.kv.Keys(folder, sep, queryOpts(ctx))
	if err != nil {
		return nil, consulclient.Error("kv keys", err)
	}
	seen := make(map[string]struct{}, len(names))
	out := make([]string, 0, len(names))
	add := func(k string) {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	for _, n := range names {
		rel, ok := strings.CutPrefix(n, folder)
		if !ok {
			return nil, fmt.Errorf("%w: key %q outside %q", ErrBadAnswer, consulclient.Printable(n), folder)
		}
		// A name ending in '/' is a folder: a child folder in a
		// non-recursive listing, or a folder key someone made in the UI.
		rel = strings.TrimSuffix(rel, "/")
		if rel == "" {
			continue
		}
		if !recursive && strings.Contains(rel, "/") {
			return nil, fmt.Errorf("%w: key %q below a child of %q", ErrBadAnswer, consulclient.Printable(n), folder)
		}
		k, err := decodeKey(rel)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrBadAnswer, consulclient.Printable(n), err)
		}
		if prefix != "" {
			k = prefix + "/" + k
		}
		// A recursive listing names the folders on the way, as a
		// directory walk does.
		if recursive {
			for i := len(prefix) + 1; i < len(k); i++ {
				if k[i] == '/' {
					add(k[:i])
				}
			}
		}
		add(k)
	}
	slices.Sort(out)
	return out, nil
}

// get reads the pair of key, nil if there is none, and checks the answer.
func (c *Consul) get(ctx context.Context, key string) (*api.KVPair, error) {
	name, err := c.name(key)
	if err != nil {
		return nil, err
	}
	p, _, err := c.kv.Get(name, queryOpts(ctx))
	if err != nil {
		return nil, consulclient.Error("kv get", err)
	}
	if p == nil {
		return nil, nil
	}
	if p.Key != name {
		return nil, fmt.Errorf("%w: asked for %q, got %q", ErrBadAnswer, name, consulclient.Printable(p.Key))
	}
	if len(p.Value) > c.opts.MaxValueSize {
		return nil, fmt.Errorf("%w: value of %q is %d bytes, limit %d", ErrBadAnswer, key, len(p.Value), c.opts.MaxValueSize)
	}
	return p, nil
}

// name is the Consul name of a storage key.
func (c *Consul) name(key string) (string, error) {
	n, err := encodeKey(key)
	if err != nil {
		return "", fmt.Errorf("%w: %q", err, consulclient.Printable(key))
	}
	return c.data + n, nil
}

func notExist(key string) error {
	return fmt.Errorf("certstore: %q: %w", key, fs.ErrNotExist)
}

func queryOpts(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func writeOpts(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

// Interface guards.
var (
	_ certmagic.Storage          = (*Consul)(nil)
	_ certmagic.TryLocker        = (*Consul)(nil)
	_ certmagic.LockLeaseRenewer = (*Consul)(nil)
)
