package configs

import (
	"strings"
	"testing"
)

func parseRateLimits(t *testing.T, section string) (*Config, error) {
	t.Helper()
	return Parse("test.yaml", []byte("rate_limits:\n"+section), noEnv)
}

func TestRateLimitsOffByDefault(t *testing.T) {
	c, err := Parse("test.yaml", []byte("nodes: []\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := c.RateLimits
	if r.Frontend != nil || r.API != nil || r.IPv6Prefix != 64 || r.MaxEntries != 100_000 || r.FrontendAnswer != "429" {
		t.Errorf("rate_limits = %+v, want both classes off, ipv6_prefix 64, max_entries 100000, frontend_answer 429", r)
	}
}

func TestRateLimitsBurstDefault(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want int
	}{
		{"  frontend: {rate: 2}\n", 20},
		{"  frontend: {rate: 0.1}\n", 10},
		{"  frontend: {rate: 2.05}\n", 21},
		{"  frontend: {rate: 2, burst: 3}\n", 3},
		{"  frontend: {rate: 1000000}\n", 1_000_000},
	} {
		c, err := parseRateLimits(t, tc.yaml)
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		if got := c.RateLimits.Frontend.Burst; got != tc.want {
			t.Errorf("%s: burst = %d, want %d", tc.yaml, got, tc.want)
		}
	}
}

func TestRateLimitsInvalid(t *testing.T) {
	for _, tc := range []struct{ name, yaml, path, msg string }{
		{"no rate", "  frontend: {burst: 5}\n", "rate_limits.frontend.rate", "is required"},
		{"empty block", "  api: {}\n", "rate_limits.api.rate", "is required"},
		{"negative rate", "  api: {rate: -1}\n", "rate_limits.api.rate", "0.001..1000000"},
		{"tiny rate", "  api: {rate: 0.0001}\n", "rate_limits.api.rate", "0.001..1000000"},
		{"huge rate", "  api: {rate: 1e9}\n", "rate_limits.api.rate", "0.001..1000000"},
		{"nan rate", "  api: {rate: .nan}\n", "rate_limits.api.rate", "0.001..1000000"},
		{"rate not a number", "  api: {rate: fast}\n", "", "fast"},
		{"rate with unit", "  api: {rate: 10r/s}\n", "", "10r/s"},
		{"negative burst", "  frontend: {rate: 1, burst: -1}\n", "rate_limits.frontend.burst", "1..1000000"},
		{"huge burst", "  frontend: {rate: 1, burst: 2000000}\n", "rate_limits.frontend.burst", "1..1000000"},
		{"bad exempt", "  exempt: [10.0.0.0/33]\n", "rate_limits.exempt[0]", "not an address or CIDR"},
		{"prefix too short", "  ipv6_prefix: 8\n", "rate_limits.ipv6_prefix", "16..128"},
		{"prefix too long", "  ipv6_prefix: 129\n", "rate_limits.ipv6_prefix", "16..128"},
		{"table too small", "  max_entries: 10\n", "rate_limits.max_entries", "1024..100000000"},
		{"bad answer", "  frontend_answer: 503\n", "rate_limits.frontend_answer", "not valid; use one of 429, delay"},
		{"unknown key", "  verification: {rate: 1}\n", "", "verification"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRateLimits(t, tc.yaml)
			if tc.path == "" {
				if err == nil || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("Parse = %v, want an error mentioning %q", err, tc.msg)
				}
				return
			}
			wantProblem(t, err, tc.path, tc.msg)
		})
	}
}

// Problems name the line and column of the rejected value.
func TestRateLimitsErrorPosition(t *testing.T) {
	_, err := parseRateLimits(t, "  frontend:\n    rate: 2\n    burst: 0\n  ipv6_prefix: 200\n")
	want := "test.yaml:5:16: rate_limits.ipv6_prefix: must be a prefix length 16..128 (64 is one host), got 200"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse = %v, want %q", err, want)
	}
}
