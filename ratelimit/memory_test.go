package ratelimit_test

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/ratelimit"
)

// entryBytes is what one slot costs: a 16-byte key and an 8-byte schedule.
const entryBytes = 24

// A spoofed-source flood of 10^6 distinct addresses (half IPv4, half IPv6
// in distinct /64s) leaves the heap where New put it: the table is
// allocated once and only reused.
func TestMillionSourcesStayWithinTheCap(t *testing.T) {
	const sources = 1_000_000
	const maxEntries = 100_000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	l, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 10, MaxEntries: maxEntries}, t0)
	if err != nil {
		t.Fatal(err)
	}
	built := heap()
	capBytes := uint64(l.Stats().Capacity) * entryBytes
	if got := built - before; got > capBytes+64<<10 {
		t.Errorf("New took %d bytes, want at most %d (capacity %d × %d B + shard headers)", got, capBytes+64<<10, l.Stats().Capacity, entryBytes)
	}
	start := time.Now()
	for i := range sources {
		var a netip.Addr
		if i%2 == 0 {
			a = netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		} else {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 8: 1})
		}
		l.Allow(a, t0.Add(time.Duration(i)*time.Microsecond))
	}
	took := time.Since(start)
	after := heap()
	runtime.KeepAlive(l)
	st := l.Stats()
	t.Logf("%d sources in %v: heap %d B before New, +%d B for the table (capacity %d), %+d B after the flood; %+v",
		sources, took, before, built-before, st.Capacity, int64(after)-int64(built), st)
	if after > built+64<<10 {
		t.Errorf("heap grew by %d bytes during the flood, want at most 64 KiB", after-built)
	}
	if st.Entries > st.Capacity || st.Entries < st.Capacity*9/10 {
		t.Errorf("Entries = %d, want near the capacity %d", st.Entries, st.Capacity)
	}
	if st.Evictions == 0 {
		t.Error("no eviction after 10 times the capacity in sources")
	}
}
