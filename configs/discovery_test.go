package configs

import (
	"strings"
	"testing"
	"time"
)

func parseDiscovery(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	env := func(name string) (string, bool) {
		if name == "CONSUL_TOKEN" {
			return "s3cret", true
		}
		return "", false
	}
	return Parse("test.yaml", []byte(yaml), env)
}

func TestDiscoveryDefaults(t *testing.T) {
	c, err := parseDiscovery(t, "discovery:\n  consul: {service: mosparo, token: \"${CONSUL_TOKEN}\", register: {port: 443}}\n")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := c.Discovery.Consul
	checks := []struct {
		name      string
		got, want any
	}{
		{"address", got.Address, "127.0.0.1:8500"},
		{"scheme", got.Scheme, "http"},
		{"admin_tag", got.AdminTag, "mosparo-admin"},
		{"token", got.Token, "s3cret"},
		{"wait", got.Wait.D(), 60 * time.Second},
		{"backoff_min", got.BackoffMin.D(), 500 * time.Millisecond},
		{"backoff_max", got.BackoffMax.D(), 30 * time.Second},
		{"register.name", got.Register.Name, "mosparo-lb"},
		{"register.check_interval", got.Register.CheckInterval.D(), 10 * time.Second},
		{"register.check_timeout", got.Register.CheckTimeout.D(), 2 * time.Second},
		{"register.deregister_after", got.Register.DeregisterAfter.D(), time.Duration(0)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("discovery.consul.%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDiscoveryWithoutConsul(t *testing.T) {
	c, err := parseDiscovery(t, "nodes: [{name: n1, address: \"10.0.0.1:80\"}]\n")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Discovery.Consul != nil {
		t.Errorf("discovery.consul = %+v, want nil when absent", c.Discovery.Consul)
	}
}

func TestDiscoveryFullSection(t *testing.T) {
	in := `discovery:
  consul:
    address: "consul.internal:8501"
    scheme: https
    service: mosparo
    tags: [prod, eu]
    admin_tag: primary
    datacenter: dc2
    wait: 5m
    backoff_min: 1s
    backoff_max: 1m
    register:
      id: lb-a
      name: edge
      address: 192.0.2.10
      port: 443
      tags: [vip]
      check_url: "http://127.0.0.1:9090/status"
      check_interval: 5s
      check_timeout: 1s
      deregister_after: 10m
`
	c, err := parseDiscovery(t, in)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := c.Discovery.Consul
	if got.Scheme != "https" || got.Datacenter != "dc2" || strings.Join(got.Tags, ",") != "prod,eu" || got.AdminTag != "primary" {
		t.Errorf("consul = %+v, want the values from the file", got)
	}
	if got.Wait.D() != 5*time.Minute || got.BackoffMin.D() != time.Second || got.BackoffMax.D() != time.Minute {
		t.Errorf("timings = %v %v %v, want 5m 1s 1m", got.Wait.D(), got.BackoffMin.D(), got.BackoffMax.D())
	}
	r := got.Register
	if r.ID != "lb-a" || r.Name != "edge" || r.Address != "192.0.2.10" || r.Port != 443 || r.DeregisterAfter.D() != 10*time.Minute {
		t.Errorf("register = %+v, want the values from the file", r)
	}
}

func TestDiscoveryValidation(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		path string // the problem's path
		line int
	}{
		{"service missing", "discovery:\n  consul: {address: \"127.0.0.1:8500\"}\n", "discovery.consul.service", 2},
		{"service with slash", "discovery:\n  consul:\n    service: a/b\n", "discovery.consul.service", 3},
		{"address without port", "discovery:\n  consul:\n    service: m\n    address: consul\n", "discovery.consul.address", 4},
		{"bad scheme", "discovery:\n  consul:\n    service: m\n    scheme: ftp\n", "discovery.consul.scheme", 4},
		{"empty tag", "discovery:\n  consul:\n    service: m\n    tags: [a, \"\"]\n", "discovery.consul.tags[1]", 4},
		{"wait too long", "discovery:\n  consul:\n    service: m\n    wait: 11m\n", "discovery.consul.wait", 4},
		{"wait too short", "discovery:\n  consul:\n    service: m\n    wait: 500ms\n", "discovery.consul.wait", 4},
		{"backoff max below min", "discovery:\n  consul:\n    service: m\n    backoff_min: 2s\n    backoff_max: 1s\n", "discovery.consul.backoff_max", 5},
		{"register without port", "discovery:\n  consul:\n    service: m\n    register:\n      name: lb\n", "discovery.consul.register.port", 5},
		{"register port too big", "discovery:\n  consul:\n    service: m\n    register:\n      port: 70000\n", "discovery.consul.register.port", 5},
		{"register address with port", "discovery:\n  consul:\n    service: m\n    register:\n      port: 80\n      address: \"10.0.0.1:80\"\n", "discovery.consul.register.address", 6},
		{"register bad check url", "discovery:\n  consul:\n    service: m\n    register:\n      port: 80\n      check_url: /status\n", "discovery.consul.register.check_url", 6},
		{"register timeout not below interval", "discovery:\n  consul:\n    service: m\n    register:\n      port: 80\n      check_interval: 1s\n      check_timeout: 1s\n", "discovery.consul.register.check_timeout", 7},
		{"register deregister too soon", "discovery:\n  consul:\n    service: m\n    register:\n      port: 80\n      deregister_after: 30s\n", "discovery.consul.register.deregister_after", 6},
		{"register id with space", "discovery:\n  consul:\n    service: m\n    register:\n      port: 80\n      id: \"a b\"\n", "discovery.consul.register.id", 6},
		{"unknown key", "discovery:\n  consul:\n    service: m\n    servce: x\n", "discovery.consul.servce", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDiscovery(t, tt.yaml)
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Parse(%q) error = %v, want *Error", tt.yaml, err)
			}
			for _, p := range e.Problems {
				if p.Path == tt.path {
					if p.Line != tt.line {
						t.Errorf("problem %q at line %d, want %d", p.Error(), p.Line, tt.line)
					}
					return
				}
			}
			t.Errorf("Parse(%q) problems = %v, want one at %s", tt.yaml, err, tt.path)
		})
	}
}
