package cssproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/contentcoding"
)

// entryOverhead approximates what an entry costs beyond its byte slices
// (struct, map slot, queue slot), so that many small negative entries are
// bounded by css_cache.max_bytes too.
const entryOverhead = 256

// maxHashLen bounds the design hash we accept (mosparo writes 64 hex).
const maxHashLen = 128

// entry is the local copy of one project's design keys. Everything except
// the two atomics is immutable once published: Serve hands the slices to
// fasthttp without copying (SetBodyRaw), so they must never change.
type entry struct {
	id projectID
	// found: both keys were present and decoded; otherwise this is a
	// negative entry (a miss remembered so it is not looked up per request).
	found bool
	hash  []byte // design hash as stored, e.g. 64 lowercase hex
	body  []byte // CSS, byte-exact as stored
	etag  []byte // strong validator of body: "<hex>"
	// coded holds the gzip and brotli forms of body by coding, made once
	// per entry by withForms; nil where a form would not be smaller or
	// before they are made.
	// codedTag are their validators, "<hex>-gz" and "<hex>-br"; offered
	// is the set of codings that have a form.
	coded    [numCodings][]byte
	codedTag [numCodings][]byte
	offered  contentcoding.Set
	// packed: the forms were made (withForms), or found not worth it.
	packed bool
	// location is the path part of the 307 target,
	// /resources/<uuid>/<hash>.css, appended after scheme, host and prefix.
	location []byte
	size     int
	fetched  time.Time

	// refreshing is set while a background revalidation is queued or
	// running, so a hot stale entry is re-read once, not per request.
	refreshing atomic.Bool
	// referenced is the CLOCK bit: set by reads, cleared by the evictor.
	referenced atomic.Bool
}

// newEntry builds a positive entry: it checks the hash is safe to put in a
// header, computes the ETag and the redirect path. The compressed forms
// come later, from withForms, off the request path.
func newEntry(id projectID, content, hash []byte, now time.Time) (*entry, error) {
	if len(hash) == 0 || len(hash) > maxHashLen {
		return nil, fmt.Errorf("%w: design hash of %d bytes", ErrCorrupt, len(hash))
	}
	for _, c := range hash {
		// mosparo's hash is sha256 hex; anything outside [0-9A-Za-z] would
		// be URL-encoded by Symfony's router and could break a header.
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return nil, fmt.Errorf("%w: design hash has byte %#x", ErrCorrupt, c)
		}
	}
	e := &entry{id: id, found: true, fetched: now}
	e.hash = bytes.Clone(hash)
	e.body = content
	sum := sha256.Sum256(content)
	tag := make([]byte, 0, 2+32)
	tag = append(tag, '"')
	tag = hex.AppendEncode(tag, sum[:16])
	e.etag = append(tag, '"')
	e.location = fmt.Appendf(nil, "/resources/%s/%s.css", id[:], hash)
	e.size = entryOverhead + len(e.hash) + len(e.body) + len(e.etag) + len(e.location)
	return e, nil
}

// withForms returns a copy of a positive entry holding its gzip and brotli
// forms and their ETags, counted in its size (css_cache.max_bytes). It
// compresses at the best levels, which takes milliseconds: the proxy calls
// it from its packing goroutine, once per design change.
func (e *entry) withForms() *entry {
	f := e.renewed(e.fetched)
	f.packed = true
	for _, c := range [...]contentcoding.Coding{contentcoding.Gzip, contentcoding.Brotli} {
		if f.coded[c] != nil {
			continue
		}
		if f.coded[c] = compressSmaller(e.body, c); f.coded[c] != nil {
			f.codedTag[c], _ = contentcoding.AppendVariant(nil, e.etag, c)
			f.offered |= contentcoding.SetOf(c)
			f.size += len(f.coded[c]) + len(f.codedTag[c])
		}
	}
	return f
}

// renewed returns a copy of a positive entry with a new fetch time, for a
// revalidation that found the same bytes. The slices are shared: they are
// immutable.
func (e *entry) renewed(now time.Time) *entry {
	return &entry{
		id: e.id, found: true, hash: e.hash, body: e.body, etag: e.etag,
		coded: e.coded, codedTag: e.codedTag, offered: e.offered, packed: e.packed,
		location: e.location, size: e.size, fetched: now,
	}
}

// newMissEntry remembers that the project has no usable CSS in the cache.
func newMissEntry(id projectID, now time.Time) *entry {
	return &entry{id: id, fetched: now, size: entryOverhead}
}

// numCodings sizes the per-coding arrays of an entry.
const numCodings = contentcoding.Brotli + 1

// bestLevelBytes is the largest CSS compressed at the best levels (gzip 9,
// brotli 11). Brotli 11 costs about 10 ms per 10 KiB (ten times that under
// the race detector), once per design change, off the request path;
// mosparo's CSS is about 12 KiB. A larger custom CSS gets cheaper levels,
// so the packing goroutine keeps up with many projects.
const bestLevelBytes = 32 << 10

// Levels for CSS larger than bestLevelBytes.
const (
	largeGzipLevel   = 6
	largeBrotliLevel = 5
)

// compressSmaller compresses once per entry (never per request) and keeps
// the result only when it saves bytes.
func compressSmaller(b []byte, c contentcoding.Coding) []byte {
	if len(b) < 256 {
		return nil
	}
	var out []byte
	if len(b) <= bestLevelBytes {
		out = contentcoding.AppendBest(nil, b, c)
	} else {
		level := largeGzipLevel
		if c == contentcoding.Brotli {
			level = largeBrotliLevel
		}
		enc, err := contentcoding.NewEncoder(c, level)
		if err != nil {
			return nil
		}
		out = enc.Append(nil, b)
	}
	if len(out) >= len(b) {
		return nil
	}
	return out
}
