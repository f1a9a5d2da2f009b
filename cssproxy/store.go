package cssproxy

import "sync"

// store is the byte-bounded local copy of design entries plus the table of
// lookups in flight. Reads take a read lock and touch one atomic; eviction
// is CLOCK (second chance) over insertion order, so a hit never needs the
// write lock to update recency.
type store struct {
	maxBytes int

	mu      sync.RWMutex
	entries map[projectID]*entry
	// queue is CLOCK's circle: insertion order, re-appended on a second
	// chance. It may hold entries already replaced or removed; those are
	// skipped when they come up.
	queue   []*entry
	head    int
	bytes   int
	flights map[projectID]*flight
}

// flight is one lookup in progress; later callers for the same project
// wait on done instead of asking the cache again.
type flight struct {
	done chan struct{}
	// result is set before done is closed: the entry the lookup produced,
	// or nil when it failed.
	result *entry
	// invalidated is set (under store.mu) when an invalidation for this
	// project arrives while the lookup runs: its answer may predate the
	// rewrite, so it is handed to the waiters but not stored.
	invalidated bool
}

func newStore(maxBytes int) *store {
	return &store{
		maxBytes: maxBytes,
		entries:  make(map[projectID]*entry),
		flights:  make(map[projectID]*flight),
	}
}

// get returns the entry for id or nil, marking it recently used.
func (s *store) get(id projectID) *entry {
	s.mu.RLock()
	e := s.entries[id]
	s.mu.RUnlock()
	if e != nil && !e.referenced.Load() {
		// Load first: a hot entry's bit is already set, and skipping the
		// store keeps its cache line shared between cores.
		e.referenced.Store(true)
	}
	return e
}

// begin registers a lookup for id. leader is true for the caller that must
// perform it (and then call finish); others wait on f.done.
func (s *store) begin(id projectID) (f *flight, leader bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.flights[id]; f != nil {
		return f, false
	}
	f = &flight{done: make(chan struct{})}
	s.flights[id] = f
	return f, true
}

// finish publishes a lookup's result. A nil result (the lookup failed)
// keeps whatever entry was there, so a stale copy may still be served
// within max_stale; a result overtaken by an invalidation is not stored.
func (s *store) finish(id projectID, f *flight, e *entry) {
	s.mu.Lock()
	delete(s.flights, id)
	if e != nil && !f.invalidated {
		s.putLocked(e)
	}
	s.mu.Unlock()
	f.result = e
	close(f.done)
}

func (s *store) putLocked(e *entry) {
	if old := s.entries[e.id]; old != nil {
		s.bytes -= old.size
	}
	s.entries[e.id] = e
	s.bytes += e.size
	s.queue = append(s.queue, e)
	s.evictLocked()
}

// upgrade replaces old by packed, the same entry with its compressed
// forms, and reports whether it did: not when old was replaced, evicted or
// invalidated meanwhile (its forms would describe stale bytes).
func (s *store) upgrade(old, packed *entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[old.id] != old {
		return false
	}
	packed.referenced.Store(old.referenced.Load())
	s.putLocked(packed)
	return true
}

// evictLocked drops entries in CLOCK order until the budget holds.
func (s *store) evictLocked() {
	for s.bytes > s.maxBytes && s.head < len(s.queue) {
		e := s.queue[s.head]
		s.queue[s.head] = nil
		s.head++
		if s.entries[e.id] != e {
			continue // replaced or invalidated since it was queued
		}
		if e.referenced.Load() {
			e.referenced.Store(false)
			s.queue = append(s.queue, e)
			continue
		}
		delete(s.entries, e.id)
		s.bytes -= e.size
	}
	s.compactLocked()
}

// compactLocked reclaims the consumed head of the queue and the slots of
// entries that are gone, keeping the queue O(live entries).
func (s *store) compactLocked() {
	if s.head < 1024 && len(s.queue) < 2*len(s.entries)+1024 {
		return
	}
	live := s.queue[:0]
	for _, e := range s.queue[s.head:] {
		if e != nil && s.entries[e.id] == e {
			live = append(live, e)
		}
	}
	clear(s.queue[len(live):])
	s.queue = live
	s.head = 0
}

// invalidate drops id's entry and poisons a lookup in flight for it.
func (s *store) invalidate(id projectID) {
	s.mu.Lock()
	if e := s.entries[id]; e != nil {
		delete(s.entries, id)
		s.bytes -= e.size
	}
	if f := s.flights[id]; f != nil {
		f.invalidated = true
	}
	s.compactLocked()
	s.mu.Unlock()
}

// invalidateAll empties the store (Redis flushed, or the tracking
// connection was lost and with it every promise of an invalidation).
func (s *store) invalidateAll() {
	s.mu.Lock()
	clear(s.entries)
	clear(s.queue)
	s.queue = s.queue[:0]
	s.head = 0
	s.bytes = 0
	for _, f := range s.flights {
		f.invalidated = true
	}
	s.mu.Unlock()
}

// usage reports the number of entries and their bytes.
func (s *store) usage() (entries, bytes int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries), s.bytes
}
