package cssproxy

import (
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// TestNewRefusesSectionWithoutDefaults: configs applies css_cache's
// defaults, once (issue 13); New refuses a section that skipped them
// instead of defaulting again (or, for a nil coherence_interval,
// panicking). 0s coherence_interval is an explicit "off" and accepted.
func TestNewRefusesSectionWithoutDefaults(t *testing.T) {
	for _, tt := range []struct {
		name    string
		change  func(*configs.CSSCache)
		wantErr bool
	}{
		{"defaults applied", func(*configs.CSSCache) {}, false},
		{"no client_tracking", func(c *configs.CSSCache) { c.ClientTracking = nil }, true},
		{"no coherence_interval", func(c *configs.CSSCache) { c.CoherenceInterval = nil }, true},
		{"coherence_interval 0s (off)", func(c *configs.CSSCache) { off := configs.Duration(0); c.CoherenceInterval = &off }, false},
		{"no max_bytes", func(c *configs.CSSCache) { c.MaxBytes = 0 }, true},
		{"no timeout", func(c *configs.CSSCache) { c.Timeout = 0 }, true},
		{"no breaker failures", func(c *configs.CSSCache) { c.Breaker.Failures = 0 }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "redis", "redis://127.0.0.1:1", "")
			tt.change(&cfg)
			_, err := New(cfg, Options{})
			if (err != nil) != tt.wantErr {
				t.Errorf("New = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
