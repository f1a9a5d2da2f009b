//go:build !race

package ratelimit_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/ratelimit"
)

// Allow allocates nothing: not for a known client, a new one, an exempt
// one, or one that is refused.
func TestAllowAllocations(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1, MaxEntries: 64, Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	known := netip.MustParseAddr("2001:db8::1")
	i := 0
	for name, f := range map[string]func(){
		"known":   func() { l.Allow(known, t0.Add(time.Duration(i)*time.Second)) },
		"refused": func() { l.Allow(known, t0) },
		"new":     func() { i++; l.Allow(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), t0) },
		"exempt":  func() { l.Allow(netip.MustParseAddr("10.1.2.3"), t0) },
	} {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %.2f allocs per Allow, want 0", name, a)
		}
	}
}
