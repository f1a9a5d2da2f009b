package ratelimit_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/ratelimit"
)

// FuzzAllow drives one limiter with a script of requests from up to eight
// clients (so no set overflows and no state is lost) and checks the token
// bucket's promises against a count: a client never gets more than Burst
// plus Rate times the time since its first request; a refusal names a
// positive wait no longer than the bucket's depth, and a request after
// that wait passes.
func FuzzAllow(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}, uint8(1), uint16(1000), uint8(64))
	f.Add([]byte{1, 10, 2, 0, 1, 0, 1, 255, 3, 7}, uint8(3), uint16(500), uint8(48))
	f.Add([]byte{255, 255, 254, 1, 128, 9}, uint8(200), uint16(1), uint8(128))
	f.Fuzz(func(t *testing.T, script []byte, burst uint8, rateMilli uint16, prefix uint8) {
		cfg := ratelimit.Config{Rate: float64(max(rateMilli, 1)) / 1000 * 50, Burst: int(max(burst, 1)), IPv6Prefix: int(prefix % 129), MaxEntries: 1024, Seed: 7}
		l, err := ratelimit.New(cfg, t0)
		if err != nil {
			t.Fatal(err)
		}
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		depth := time.Duration(cfg.Burst) * interval
		type client struct {
			first   time.Duration
			allowed int
			seen    bool
		}
		var clients [8]client
		now := time.Duration(0)
		for i := 0; i+1 < len(script); i += 2 {
			c := int(script[i] & 7)
			now += time.Duration(script[i+1]) * time.Duration(script[i]>>3+1) * time.Millisecond
			// Clients 0..3 are IPv4, 4..7 IPv6 in distinct /8s (distinct
			// under any prefix length but 0).
			a := netip.AddrFrom4([4]byte{192, 0, 2, byte(c)})
			if c >= 4 {
				a = netip.AddrFrom16([16]byte{byte(c) << 5, 1, 15: byte(c)})
				if cfg.IPv6Prefix < 8 && cfg.IPv6Prefix != 0 {
					a = netip.AddrFrom4([4]byte{198, 51, 100, byte(c)})
				}
			}
			cl := &clients[c]
			if !cl.seen {
				cl.seen, cl.first = true, now
			}
			ok, wait := l.Allow(a, t0.Add(now))
			if !ok {
				if wait <= 0 || wait > depth {
					t.Fatalf("client %d refused with wait %v, want 0 < wait <= %v", c, wait, depth)
				}
				now += wait
				if ok, w := l.Allow(a, t0.Add(now)); !ok {
					t.Fatalf("client %d refused again (wait %v) after waiting %v", c, w, wait)
				}
			}
			cl.allowed++
			if limit := cfg.Burst + int((now-cl.first)/interval) + 1; cl.allowed > limit {
				t.Fatalf("client %d had %d requests allowed within %v, want at most %d", c, cl.allowed, now-cl.first, limit)
			}
		}
		if st := l.Stats(); st.Evictions != 0 || st.Entries > 8 {
			t.Fatalf("Stats = %+v, want no eviction and at most 8 entries", st)
		}
	})
}
