package cssproxy

import "testing"

// TestNewRefusesSectionWithoutDefaults: configs applies css_cache's
// defaults, once (issue 13); New refuses a section that skipped them
// instead of defaulting client_tracking again.
func TestNewRefusesSectionWithoutDefaults(t *testing.T) {
	cfg := testConfig(t, "redis", "redis://127.0.0.1:1", "")
	cfg.ClientTracking = nil
	if _, err := New(cfg, Options{}); err == nil {
		t.Error("New(css_cache without client_tracking's default) = nil error")
	}
}
