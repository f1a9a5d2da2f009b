package cssproxy

import (
	"fmt"
	"testing"
)

func storeEntry(i, size int) *entry {
	var id projectID
	copy(id[:], fmt.Sprintf("%08x-0000-0000-0000-000000000000", i))
	return &entry{id: id, found: true, size: size}
}

func TestStoreBoundedInBytes(t *testing.T) {
	s := newStore(10_000)
	for i := range 100 {
		f, _ := s.begin(storeEntry(i, 0).id)
		s.finish(storeEntry(i, 0).id, f, storeEntry(i, 1000))
	}
	n, b := s.usage()
	if b > 10_000 || n != 10 {
		t.Errorf("usage = %d entries, %d bytes; want 10 entries within 10000 bytes", n, b)
	}
	// The newest ones survive a FIFO without references.
	if s.get(storeEntry(99, 0).id) == nil || s.get(storeEntry(0, 0).id) != nil {
		t.Error("eviction order: want the oldest gone, the newest kept")
	}
	if len(s.queue)-s.head > 4*n+1024 {
		t.Errorf("queue holds %d slots for %d entries", len(s.queue)-s.head, n)
	}
}

func TestStoreSecondChance(t *testing.T) {
	s := newStore(3000)
	put := func(i int) {
		e := storeEntry(i, 1000)
		f, _ := s.begin(e.id)
		s.finish(e.id, f, e)
	}
	put(1)
	put(2)
	put(3)
	s.get(storeEntry(1, 0).id) // referenced: survives the next eviction
	put(4)
	if s.get(storeEntry(1, 0).id) == nil {
		t.Error("recently read entry evicted")
	}
	if s.get(storeEntry(2, 0).id) != nil {
		t.Error("unreferenced oldest entry kept")
	}
}

func TestStoreInvalidateDuringFlight(t *testing.T) {
	s := newStore(1 << 20)
	e := storeEntry(1, 100)
	f, leader := s.begin(e.id)
	if !leader {
		t.Fatal("first begin is not the leader")
	}
	if f2, leader2 := s.begin(e.id); leader2 || f2 != f {
		t.Fatal("second begin did not join the flight")
	}
	// The key is rewritten while the lookup's answer is on its way: the
	// answer may be the old value, so it must not be kept.
	s.invalidate(e.id)
	s.finish(e.id, f, e)
	if f.result != e {
		t.Error("waiters did not get the result")
	}
	if s.get(e.id) != nil {
		t.Error("a result overtaken by an invalidation was stored")
	}
	// The next lookup stores normally.
	f, _ = s.begin(e.id)
	s.finish(e.id, f, e)
	if s.get(e.id) != e {
		t.Error("a later lookup was not stored")
	}
}

func TestStoreInvalidateAll(t *testing.T) {
	s := newStore(1 << 20)
	for i := range 10 {
		e := storeEntry(i, 100)
		f, _ := s.begin(e.id)
		s.finish(e.id, f, e)
	}
	inflight := storeEntry(50, 100)
	f, _ := s.begin(inflight.id)
	s.invalidateAll()
	s.finish(inflight.id, f, inflight)
	if n, b := s.usage(); n != 0 || b != 0 {
		t.Errorf("usage after invalidateAll = %d, %d; want 0, 0", n, b)
	}
}

func TestStoreReplaceKeepsBytesExact(t *testing.T) {
	s := newStore(1 << 20)
	for range 5 {
		e := storeEntry(1, 700)
		f, _ := s.begin(e.id)
		s.finish(e.id, f, e)
	}
	if n, b := s.usage(); n != 1 || b != 700 {
		t.Errorf("usage = %d, %d; want 1, 700", n, b)
	}
}
