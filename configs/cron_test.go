package configs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// parseCron parses doc and runs the cross-section cron checks too, which
// Config.validate does once it calls validateCronRefs.
func parseCron(t *testing.T, doc string) (*Config, []Problem) {
	t.Helper()
	c, err := Parse("test.yaml", []byte(doc), func(name string) (string, bool) {
		if name == "MOSPARO_WEB_CRON_KEY" {
			return "s3cret", true
		}
		return "", false
	})
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Parse: %v", err)
		}
		return nil, e.Problems
	}
	var v validator
	c.validateCronRefs(&v)
	return c, v.problems
}

func TestCronDefaults(t *testing.T) {
	c, err := Parse("test.yaml", []byte("cron: {}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Cron
	if got.Enabled {
		t.Error("enabled = true, want false")
	}
	if got.Interval.D() != 10*time.Minute {
		t.Errorf("interval = %s, want 10m", got.Interval.D())
	}
	if got.Timeout.D() != 60*time.Second {
		t.Errorf("timeout = %s, want 60s", got.Timeout.D())
	}
	if got.ConsulLock != "mosparo-lb/cron/leader" {
		t.Errorf("consul_lock = %q, want mosparo-lb/cron/leader", got.ConsulLock)
	}
}

func TestCronValid(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		mode     CronLeadership
		instance string
	}{
		{"standalone env key", "cron: {enabled: true, key: \"${MOSPARO_WEB_CRON_KEY}\", interval: 1s, timeout: 1s, standalone: true}\n",
			CronModeStandalone, ""},
		{"key file", "cron: {enabled: true, key_file: /run/secrets/cron, standalone: true}\n", CronModeStandalone, ""},
		{"only vrrp instance", `vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10/24"]}
cron: {enabled: true, key: k}
`, CronModeVRRP, "VI_1"},
		{"named vrrp instance", `vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10/24"]}
    - {name: VI_2, interface: eth0, virtual_router_id: 52, virtual_ips: ["192.0.2.11/24"]}
cron: {enabled: true, key: k, vrrp_instance: VI_2}
`, CronModeVRRP, "VI_2"},
		{"consul", `discovery:
  consul: {service: mosparo}
cron: {enabled: true, key: k, consul_lock: lb/cron, preferred_node: from-consul}
`, CronModeConsul, ""},
		{"preferred static node", `nodes:
  - {name: node1, address: "10.0.0.11:80"}
cron: {enabled: true, key: k, standalone: true, preferred_node: node1, host: mosparo.example.com}
`, CronModeStandalone, ""},
		{"disabled needs nothing", "cron: {interval: 5s}\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, problems := parseCron(t, tt.doc)
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			mode, inst := c.CronMode()
			if mode != tt.mode || inst != tt.instance {
				t.Errorf("CronMode() = %q, %q, want %q, %q", mode, inst, tt.mode, tt.instance)
			}
		})
	}
}

func TestCronInvalid(t *testing.T) {
	tests := []struct {
		name, doc, path, msg string
	}{
		{"no key", "cron: {enabled: true, standalone: true}\n", "cron.key", "is required"},
		{"key and file", "cron: {key: k, key_file: /f, standalone: true}\n", "cron.key_file", "exclusive"},
		{"short interval", "cron: {interval: 500ms}\n", "cron.interval", "at least 1s"},
		{"short timeout", "cron: {timeout: 10ms}\n", "cron.timeout", "1s..1h0m0s"},
		{"long timeout", "cron: {timeout: 2h}\n", "cron.timeout", "1s..1h0m0s"},
		{"bad host", "cron: {host: \"http://x/\"}\n", "cron.host", "host[:port]"},
		{"standalone and vrrp", "cron: {standalone: true, vrrp_instance: VI_1}\n", "cron.standalone", "exclusive"},
		{"bad lock key", "cron: {consul_lock: /lock}\n", "cron.consul_lock", "leading"},
		{"unknown vrrp instance", `vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10/24"]}
cron: {vrrp_instance: VI_9}
`, "cron.vrrp_instance", `no vrrp instance is named "VI_9"`},
		{"unknown preferred node", "cron: {preferred_node: nodeX}\n", "cron.preferred_node", `no node is named "nodeX"`},
		{"no mode", "cron: {enabled: true, key: k}\n", "cron.enabled", "cron.standalone: true"},
		{"two instances unnamed", `vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10/24"]}
    - {name: VI_2, interface: eth0, virtual_router_id: 52, virtual_ips: ["192.0.2.11/24"]}
cron: {enabled: true, key: k}
`, "cron.vrrp_instance", "is required with 2 vrrp instances"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := parseCron(t, tt.doc)
			for _, p := range problems {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("problems = %v, want %s: ...%s...", problems, tt.path, tt.msg)
		})
	}
}

func TestCronKeyNotInProblems(t *testing.T) {
	_, problems := parseCron(t, "cron: {key: \"${MOSPARO_WEB_CRON_KEY}\", key_file: /f, interval: 1ms}\n")
	if len(problems) == 0 {
		t.Fatal("want problems")
	}
	for _, p := range problems {
		if strings.Contains(p.Error(), "s3cret") {
			t.Errorf("problem %q shows the key", p.Error())
		}
	}
}

// TestCronEmbeddedFilesRefs keeps the reference and demo files valid once
// Config.validate runs validateCronRefs.
func TestCronEmbeddedFilesRefs(t *testing.T) {
	env := func(k string) (string, bool) { return "set-by-test-" + k, true }
	for name, b := range map[string][]byte{"mosparo-lb.yaml": Reference(), "demo.yaml": Demo()} {
		c, err := Parse(name, b, env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var v validator
		c.validateCronRefs(&v)
		if len(v.problems) > 0 {
			t.Errorf("%s: %v", name, v.problems)
		}
	}
}
