package configs

import (
	"errors"
	"testing"
	"time"
)

func parseHealth(t *testing.T, section string) (*Config, error) {
	t.Helper()
	doc := "nodes: [{name: n1, address: \"10.0.0.1:80\"}]\n" + section
	return Parse("h.yaml", []byte(doc), func(string) (string, bool) { return "", false })
}

func TestHealthDefaults(t *testing.T) {
	c, err := parseHealth(t, "")
	if err != nil {
		t.Fatal(err)
	}
	h := c.Health
	checks := []struct {
		name      string
		got, want any
	}{
		{"path", h.Path, "/api/v1/health/check"},
		{"interval", h.Interval.D(), 2 * time.Second},
		{"fast_interval", h.FastInterval.D(), 500 * time.Millisecond},
		{"down_interval", h.DownInterval.D(), 2 * time.Second},
		{"timeout", h.Timeout.D(), time.Second},
		{"rise", h.Rise, 2},
		{"fall", h.Fall, 2},
		{"jitter", h.Jitter.D(), 200 * time.Millisecond},
		{"slow_start", h.SlowStart.D(), 30 * time.Second},
		{"trust_bypassed", h.TrustBypassed, false},
		{"passive.consecutive_failures", *h.Passive.ConsecutiveFailures, 5},
		{"passive.base_ejection", h.Passive.BaseEjection.D(), 30 * time.Second},
		{"passive.max_ejection", h.Passive.MaxEjection.D(), 5 * time.Minute},
		{"passive.max_ejected_percent", *h.Passive.MaxEjectedPercent, 50},
		{"version.every", *h.Version.Every, 30},
		{"version.timeout", h.Version.Timeout.D(), 10 * time.Second},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("health.%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	// WithDefaults gives a hand-built Health the same values.
	w := Health{}.WithDefaults()
	if w.Path != h.Path || w.Interval != h.Interval || *w.Jitter != *h.Jitter || *w.Passive.ConsecutiveFailures != 5 {
		t.Errorf("WithDefaults() = %+v", w)
	}
}

func TestHealthValid(t *testing.T) {
	c, err := parseHealth(t, `health:
  path: /mosparo/api/v1/health/check
  interval: 5s
  fast_interval: 1s
  down_interval: 10s
  timeout: 2s
  rise: 3
  fall: 1
  jitter: 0s
  slow_start: 0s
  trust_bypassed: true
  passive: {consecutive_failures: 0, base_ejection: 10s, max_ejection: 10s, max_ejected_percent: 0}
`)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Health
	// Explicit zeros turn features off instead of taking the defaults.
	if h.Jitter.D() != 0 || h.SlowStart.D() != 0 || *h.Passive.ConsecutiveFailures != 0 || *h.Passive.MaxEjectedPercent != 0 {
		t.Errorf("explicit zeros not kept: jitter %v slow_start %v failures %d pct %d",
			h.Jitter.D(), h.SlowStart.D(), *h.Passive.ConsecutiveFailures, *h.Passive.MaxEjectedPercent)
	}
	if h.Path != "/mosparo/api/v1/health/check" || h.Interval.D() != 5*time.Second || h.Rise != 3 || h.Fall != 1 || !h.TrustBypassed {
		t.Errorf("health = %+v", h)
	}
	// The default jitter follows the configured interval.
	c, err = parseHealth(t, "health: {interval: 10s, timeout: 1s}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Health.Jitter.D() != time.Second {
		t.Errorf("default jitter with interval 10s = %v, want 1s", c.Health.Jitter.D())
	}
}

func TestHealthInvalid(t *testing.T) {
	tests := []struct {
		name, section, path, msg string
	}{
		{"relative path", "health: {path: api/v1/health/check}", "health.path", "absolute request path"},
		{"path with a space", `health: {path: "/api/v1/health check"}`, "health.path", "without spaces"},
		{"interval too short", "health: {interval: 50ms, timeout: 10ms, fast_interval: 20ms}", "health.interval", "at least 100ms"},
		{"fast above interval", "health: {fast_interval: 3s}", "health.fast_interval", "10ms..health.interval"},
		{"fast too short", "health: {fast_interval: 1ms}", "health.fast_interval", "10ms..health.interval"},
		{"down too short", "health: {down_interval: 5ms}", "health.down_interval", "at least 10ms"},
		{"timeout not below interval", "health: {timeout: 2s}", "health.timeout", "shorter than health.interval"},
		{"rise 0", "health: {rise: -1}", "health.rise", "1..100"},
		{"fall too big", "health: {fall: 101}", "health.fall", "1..100"},
		{"jitter above interval", "health: {jitter: 3s}", "health.jitter", "0..health.interval"},
		{"slow start too long", "health: {slow_start: 2h}", "health.slow_start", "up to 1h"},
		{"negative failures", "health: {passive: {consecutive_failures: -1}}", "health.passive.consecutive_failures", "0 (off) up to 10000"},
		{"max below base", "health: {passive: {base_ejection: 1m, max_ejection: 30s}}", "health.passive.max_ejection", "at least health.passive.base_ejection"},
		{"percent above 100", "health: {passive: {max_ejected_percent: 101}}", "health.passive.max_ejected_percent", "0..100"},
		{"negative version every", "health: {version: {every: -1}}", "health.version.every", "0 (off) up to 100000"},
		{"version timeout too short", "health: {version: {timeout: 10ms}}", "health.version.timeout", "100ms..5m"},
		{"unknown update node", "balancing: {update_node: n9}", "balancing.update_node", `no node is named "n9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHealth(t, tt.section+"\n")
			wantProblem(t, err, tt.path, tt.msg)
		})
	}
}

func TestHealthProblemPosition(t *testing.T) {
	_, err := parseHealth(t, "health:\n  interval: 2s\n  fast_interval: 9s\n")
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 {
		t.Fatalf("err = %v, want one problem", err)
	}
	if p := e.Problems[0]; p.Line != 4 || p.Path != "health.fast_interval" {
		t.Errorf("problem at line %d path %s, want line 4 health.fast_interval", p.Line, p.Path)
	}
}
