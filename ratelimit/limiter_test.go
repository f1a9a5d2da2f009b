package ratelimit_test

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/ratelimit"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// req is one call of Allow in a script: from addr, at t0+at.
type req struct {
	addr string
	at   time.Duration
	ok   bool
	wait time.Duration // checked when !ok
}

func TestAllow(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  ratelimit.Config
		reqs []req
	}{
		{
			name: "burst passes then the next waits one interval",
			cfg:  ratelimit.Config{Rate: 2, Burst: 3},
			reqs: []req{
				{"192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, true, 0},
				{"192.0.2.1", 0, false, 500 * time.Millisecond},
				{"192.0.2.1", 100 * time.Millisecond, false, 400 * time.Millisecond},
			},
		},
		{
			name: "per IP: another address has its own bucket",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1},
			reqs: []req{
				{"192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, false, time.Second},
				{"192.0.2.2", 0, true, 0}, {"198.51.100.1", 0, true, 0},
			},
		},
		{
			name: "refill: one token per interval, never more than the burst",
			cfg:  ratelimit.Config{Rate: 10, Burst: 2},
			reqs: []req{
				{"192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, false, 100 * time.Millisecond},
				{"192.0.2.1", 100 * time.Millisecond, true, 0}, {"192.0.2.1", 100 * time.Millisecond, false, 100 * time.Millisecond},
				// An hour later the bucket holds Burst tokens, not 36000.
				{"192.0.2.1", time.Hour, true, 0}, {"192.0.2.1", time.Hour, true, 0}, {"192.0.2.1", time.Hour, false, 100 * time.Millisecond},
			},
		},
		{
			name: "fractional rate: one request every two seconds",
			cfg:  ratelimit.Config{Rate: 0.5, Burst: 1},
			reqs: []req{
				{"192.0.2.1", 0, true, 0}, {"192.0.2.1", time.Second, false, time.Second},
				{"192.0.2.1", 2 * time.Second, true, 0},
			},
		},
		{
			name: "per /64 by default: the addresses of one IPv6 host share a bucket",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1},
			reqs: []req{
				{"2001:db8:1:2::1", 0, true, 0}, {"2001:db8:1:2:ffff:ffff:ffff:ffff", 0, false, time.Second},
				{"2001:db8:1:3::1", 0, true, 0},
			},
		},
		{
			name: "ipv6_prefix 48 groups a whole site",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1, IPv6Prefix: 48},
			reqs: []req{
				{"2001:db8:1:2::1", 0, true, 0}, {"2001:db8:1:ffff::1", 0, false, time.Second},
				{"2001:db8:2::1", 0, true, 0},
			},
		},
		{
			name: "ipv6_prefix 128 limits single addresses",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1, IPv6Prefix: 128},
			reqs: []req{{"2001:db8::1", 0, true, 0}, {"2001:db8::2", 0, true, 0}, {"2001:db8::1", 0, false, time.Second}},
		},
		{
			name: "ipv6_prefix 72 splits the low half",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1, IPv6Prefix: 72},
			reqs: []req{{"2001:db8::1", 0, true, 0}, {"2001:db8::ff:1", 0, false, time.Second}, {"2001:db8::100:0:0:1", 0, true, 0}},
		},
		{
			name: "IPv4-mapped IPv6 is the IPv4 client",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1},
			reqs: []req{{"::ffff:192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, false, time.Second}},
		},
		{
			name: "an IPv4 address is not grouped with its neighbours, even in the mapped form",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1, IPv6Prefix: 1},
			reqs: []req{{"::ffff:192.0.2.1", 0, true, 0}, {"::ffff:192.0.2.2", 0, true, 0}, {"::1", 0, true, 0}},
		},
		{
			name: "IPv4 and an IPv6 address with the same low bits are two clients",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1, IPv6Prefix: 128},
			reqs: []req{{"192.0.2.1", 0, true, 0}, {"::c000:201", 0, true, 0}, {"::ffff:0:c000:201", 0, true, 0}},
		},
		{
			name: "exempt addresses and prefixes are never limited",
			cfg: ratelimit.Config{Rate: 1, Burst: 1, Exempt: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::ffff:198.51.100.0/120"),
			}},
			reqs: []req{
				{"10.1.2.3", 0, true, 0}, {"10.1.2.3", 0, true, 0}, {"::ffff:10.1.2.3", 0, true, 0},
				{"2001:db8::1", 0, true, 0}, {"2001:db8::1", 0, true, 0},
				{"198.51.100.9", 0, true, 0}, {"198.51.100.9", 0, true, 0},
				{"192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, false, time.Second},
			},
		},
		{
			name: "a clock that goes back starts the client afresh instead of locking it out",
			cfg:  ratelimit.Config{Rate: 1, Burst: 2},
			reqs: []req{
				{"192.0.2.1", time.Hour, true, 0}, {"192.0.2.1", time.Hour, true, 0}, {"192.0.2.1", time.Hour, false, time.Second},
				{"192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, true, 0}, {"192.0.2.1", 0, false, time.Second},
			},
		},
		{
			name: "times before the epoch count as the epoch",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1},
			reqs: []req{{"192.0.2.1", -time.Hour, true, 0}, {"192.0.2.1", -time.Minute, false, time.Second}, {"192.0.2.1", time.Second, true, 0}},
		},
		{
			name: "the invalid address is one client, not a crash",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1},
			reqs: []req{{"", 0, true, 0}, {"", 0, false, time.Second}, {"0.0.0.0", 0, true, 0}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Seed = 1
			l, err := ratelimit.New(tt.cfg, t0)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range tt.reqs {
				var a netip.Addr
				if r.addr != "" {
					a = netip.MustParseAddr(r.addr)
				}
				ok, wait := l.Allow(a, t0.Add(r.at))
				if ok != r.ok || (!ok && wait != r.wait) || (ok && wait != 0) {
					t.Errorf("request %d: Allow(%s, +%v) = %v, %v; want %v, %v", i, r.addr, r.at, ok, wait, r.ok, r.wait)
				}
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []ratelimit.Config{
		{Rate: 0, Burst: 1}, {Rate: -1, Burst: 1}, {Rate: math.NaN(), Burst: 1}, {Rate: math.Inf(1), Burst: 1},
		{Rate: 2e6, Burst: 1}, {Rate: 1, Burst: 0}, {Rate: 1, Burst: 2e6},
		{Rate: 1, Burst: 1, IPv6Prefix: -1}, {Rate: 1, Burst: 1, IPv6Prefix: 129},
		{Rate: 1, Burst: 1, MaxEntries: -1}, {Rate: 1, Burst: 1, MaxEntries: 200_000_000},
	} {
		if _, err := ratelimit.New(cfg, t0); !errors.Is(err, ratelimit.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestCapacity(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 100, 2049, 100_000, 1_000_003} {
		l, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1, MaxEntries: n, Seed: 1}, t0)
		if err != nil {
			t.Fatal(err)
		}
		want := n
		if n == 0 {
			want = ratelimit.DefaultMaxEntries
		}
		// Rounded up to whole sets of 8 in every one of at most 256 shards.
		if c := l.Stats().Capacity; c < want || c > want+256*8 {
			t.Errorf("MaxEntries %d: Capacity = %d, want %d..%d", n, c, want, want+256*8)
		}
	}
}

// A table full of one-off sources (a spoofed flood) gives up their slots
// before the slot of a client that is being limited: its bucket is the
// emptiest, so the flood cannot reset it.
func TestFloodDoesNotResetALimitedClient(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 5, MaxEntries: 8, Seed: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	bot := netip.MustParseAddr("192.0.2.66")
	for range 5 {
		l.Allow(bot, t0)
	}
	if ok, _ := l.Allow(bot, t0); ok {
		t.Fatal("the bot's sixth request passed")
	}
	for i := range 10_000 {
		l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0.Add(time.Duration(i)*time.Microsecond))
	}
	if ok, _ := l.Allow(bot, t0.Add(20*time.Millisecond)); ok {
		t.Error("the flood reset the bot's bucket")
	}
	st := l.Stats()
	if st.Entries != st.Capacity || st.Capacity != 8 {
		t.Errorf("Stats = %+v, want 8 of 8 entries", st)
	}
	// The flood's own slots were taken from sources still below their
	// burst: those are evictions, and each costs at most one fresh burst.
	if st.Evictions == 0 || st.Limited != 2 {
		t.Errorf("Stats = %+v, want evictions and 2 limited", st)
	}
}

// A full bucket is the same as no entry: reusing its slot is no eviction.
func TestFullBucketsAreReusedSilently(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Config{Rate: 1000, Burst: 5, MaxEntries: 8, Seed: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		// 1 ms apart: each earlier client's bucket is full again.
		l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if st := l.Stats(); st.Evictions != 0 || st.Entries != 8 {
		t.Errorf("Stats = %+v, want 8 entries and no eviction", st)
	}
}

// However many goroutines ask at one instant, one client gets Burst tokens.
func TestConcurrentBurst(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 50, Seed: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]int{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				a := fmt.Sprintf("192.0.2.%d", (g+i)%4)
				if ok, _ := l.Allow(netip.MustParseAddr(a), t0); ok {
					mu.Lock()
					allowed[a]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for a, n := range allowed {
		if n != 50 {
			t.Errorf("%s: %d requests allowed, want 50", a, n)
		}
	}
	if st := l.Stats(); st.Limited != 800-4*50 {
		t.Errorf("Limited = %d, want %d", st.Limited, 800-4*50)
	}
}

func TestConfigEqual(t *testing.T) {
	a := ratelimit.Config{Rate: 1, Burst: 2, Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	b := a
	b.Exempt = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if !a.Equal(b) {
		t.Error("equal configs differ")
	}
	b.Exempt = nil
	if a.Equal(b) {
		t.Error("configs with other exempt lists are equal")
	}
}
