package configs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func parseCSSCache(t *testing.T, section string) (*Config, error) {
	t.Helper()
	return Parse("test.yaml", []byte("css_cache:\n"+section), func(string) (string, bool) { return "", false })
}

func TestCSSCacheDefaults(t *testing.T) {
	c, err := parseCSSCache(t, "  backend: redis\n  url: redis://127.0.0.1:6379/0\n")
	if err != nil {
		t.Fatal(err)
	}
	cc := c.CSSCache
	checks := []struct {
		name      string
		got, want any
	}{
		{"timeout", cc.Timeout.D(), 25 * time.Millisecond},
		{"breaker.failures", cc.Breaker.Failures, 3},
		{"breaker.cooldown", cc.Breaker.Cooldown.D(), 5 * time.Second},
		{"max_bytes", cc.MaxBytes, 32 << 20},
		{"max_value_bytes", cc.MaxValueBytes, 1 << 20},
		{"revalidate_interval", cc.RevalidateInterval.D(), 2 * time.Second},
		{"max_stale", cc.MaxStale.D(), 30 * time.Second},
		{"client_tracking", *cc.ClientTracking, true},
		{"coherence_interval", cc.CoherenceInterval.D(), 30 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestCSSCacheDisabledByDefault(t *testing.T) {
	c, err := Parse("test.yaml", []byte("nodes: []\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if c.CSSCache.Backend != "" {
		t.Errorf("backend = %q, want empty (off)", c.CSSCache.Backend)
	}
}

func TestCSSCacheValid(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"redis no port", "  backend: redis\n  url: redis://localhost\n"},
		{"rediss with auth and db", "  backend: redis\n  url: rediss://u:p@10.0.0.5:6380/3\n"},
		{"memcached", "  backend: memcached\n  url: memcached://10.0.0.5:11211\n  revalidate_interval: 500ms\n  client_tracking: false\n"},
		{"memcached sasl", "  backend: memcached\n  url: memcached://u:p%3A@h\n"},
		{"all knobs", "  backend: memcached\n  url: memcached://h\n  timeout: 5ms\n  breaker: {failures: 1, cooldown: 1s}\n  max_bytes: 1048576\n  max_value_bytes: 65536\n  max_stale: 0s\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseCSSCache(t, tc.yaml); err != nil {
				t.Errorf("Parse = %v, want nil", err)
			}
		})
	}
}

func TestCSSCacheInvalid(t *testing.T) {
	for _, tc := range []struct{ name, yaml, path string }{
		{"unknown backend", "  backend: filesystem\n", "css_cache.backend"},
		{"missing url", "  backend: redis\n", "css_cache.url"},
		{"scheme mismatch", "  backend: memcached\n  url: redis://h:6379\n", "css_cache.url"},
		{"two memcached hosts", "  backend: memcached\n  url: memcached://a:1,b:2\n", "css_cache.url"},
		{"bad port", "  backend: redis\n  url: redis://h:99999\n", "css_cache.url"},
		{"bad db", "  backend: redis\n  url: redis://h/x\n", "css_cache.url"},
		{"redis array", "  backend: redis\n  url: \"redis:?host[a]&host[b]\"\n", "css_cache.url"},
		{"coherence too short", "  coherence_interval: 500ms\n", "css_cache.coherence_interval"},
		{"timeout too long", "  timeout: 10s\n", "css_cache.timeout"},
		{"timeout zero", "  timeout: 100us\n", "css_cache.timeout"},
		{"breaker failures", "  breaker: {failures: -1}\n", "css_cache.breaker.failures"},
		{"breaker cooldown", "  breaker: {cooldown: 1ms}\n", "css_cache.breaker.cooldown"},
		{"max_bytes small", "  max_bytes: 1000\n", "css_cache.max_bytes"},
		{"max_value_bytes small", "  max_value_bytes: 10\n", "css_cache.max_value_bytes"},
		{"max_value_bytes over half", "  max_bytes: 1048576\n  max_value_bytes: 1048576\n", "css_cache.max_value_bytes"},
		{"revalidate too short", "  revalidate_interval: 1ms\n", "css_cache.revalidate_interval"},
		{"max_stale huge", "  max_stale: 48h\n", "css_cache.max_stale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCSSCache(t, tc.yaml)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v, want *Error", err)
			}
			for _, p := range e.Problems {
				if p.Path == tc.path {
					return
				}
			}
			t.Errorf("Parse = %v, want a problem at %s", err, tc.path)
		})
	}
}

func TestCSSCacheCoherenceOff(t *testing.T) {
	c, err := parseCSSCache(t, "  backend: redis\n  url: redis://h\n  coherence_interval: 0s\n")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.CSSCache.CoherenceInterval.D(); d != 0 {
		t.Errorf("coherence_interval = %s, want 0 (off)", d)
	}
}

func TestTrackCSSCacheNeedsCSSCache(t *testing.T) {
	y := "vrrp:\n  instances:\n    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: [\"192.0.2.10/24\"], track_css_cache: {mode: weight}}\n"
	_, err := Parse("t.yaml", []byte(y), func(string) (string, bool) { return "", false })
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "vrrp.instances[0].track_css_cache.mode") {
		t.Errorf("Parse = %v, want an error at vrrp.instances[0].track_css_cache.mode", err)
	}
	c, err := Parse("t.yaml", []byte("css_cache: {backend: redis, url: \"redis://h\"}\n"+y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if tr := c.VRRP.Instances[0].TrackCSSCache; tr.Mode != "weight" || tr.Weight != 50 {
		t.Errorf("track_css_cache = %+v, want weight 50", tr)
	}
}
