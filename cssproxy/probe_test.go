package cssproxy

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
)

func TestProbeStates(t *testing.T) {
	pr := newProbe(time.Second, time.Millisecond)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	log := zap.NewNop()
	if pr.reachable() != nil {
		t.Fatal("reachable before any probe, want unknown (nil)")
	}
	down := errors.New("connection refused")
	pr.record(nil, now, log, "x")
	pr.record(down, now.Add(time.Second), log, "x")
	if r := pr.reachable(); r == nil || !*r {
		t.Error("one failed probe after a good one already counts as down; want a second one first")
	}
	pr.record(down, now.Add(2*time.Second), log, "x")
	if r := pr.reachable(); r == nil || *r {
		t.Fatal("two failed probes: still reachable")
	}
	if since, msg := pr.down(); !since.Equal(now.Add(2*time.Second)) || msg != down.Error() {
		t.Errorf("down() = %v %q", since, msg)
	}
	pr.record(nil, now.Add(3*time.Second), log, "x")
	if r := pr.reachable(); r == nil || !*r {
		t.Error("a good probe did not bring it back")
	}
	fresh := newProbe(time.Second, time.Millisecond)
	fresh.record(down, now, log, "x")
	if r := fresh.reachable(); r == nil || *r {
		t.Error("a cache unreachable from the start must show as down at once")
	}
}

// TestReachabilityFollowsRealServers stops and restarts real servers and
// watches Stats().Reachable and Reachable() follow (FACTS 11.9).
func TestReachabilityFollowsRealServers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *cachetest.Server
		dsn   func(*cachetest.Server) string
	}{
		{"redis", cachetest.StartRedis, func(s *cachetest.Server) string { return "redis://" + s.Addr }},
		{"memcached", cachetest.StartMemcached, func(s *cachetest.Server) string { return "memcached://" + s.Addr }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.start(t)
			p := startProxy(t, testConfig(t, tc.name, tc.dsn(srv), "  revalidate_interval: 50ms\n"), Options{})
			reach := func(want bool) func() bool {
				return func() bool { r := p.Stats().Reachable; return r != nil && *r == want && p.Reachable() == want }
			}
			waitLong(t, "reachable", reach(true))
			srv.Stop()
			waitLong(t, "unreachable", reach(false))
			if st := p.Stats(); st.DownSince == nil || st.LastError == "" {
				t.Errorf("down without since/error: %+v", st)
			}
			srv.Start()
			waitLong(t, "reachable again", reach(true))
		})
	}
}
