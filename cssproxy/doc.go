// Package cssproxy answers mosparo's per-project CSS requests at the edge,
// straight from the shared cache (Redis or memcached) the mosparo nodes
// write the prepared CSS to when MOSPARO_PREPARE_CSS_FILES_IN_SHARED_CACHE
// is on (FACTS.md sections 2.5 and 5).
//
// It owns: reading design_<uuid>_content and design_<uuid>_hash in exactly
// the bytes mosparo's Symfony cache adapters write (PHP serialize() or
// igbinary strings; for memcached also php-memcached's flags word, FastLZ
// or zlib compression and the namespace version kept under the key ":"),
// a byte-bounded local copy kept fresh by Redis client tracking or a short
// revalidation interval, and the 200/304/307 answers mosparo itself would
// give for /resources/<uuid>/<hash>.css and /resources/<uuid>.css.
//
// It must not guess formats, write or delete anything in the shared cache,
// or ever turn a cache problem into a client error: whatever it cannot
// answer exactly as mosparo would (miss, hash mismatch, corrupt value,
// cache down or slow) is left untouched for the balancer to forward to a
// node.
package cssproxy
