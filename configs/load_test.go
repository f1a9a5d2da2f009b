package configs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte("nodes: [{name: n1, address: \"10.0.0.1:80\"}]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen[0].Address, ":80"},
		{"nodes[0].weight", c.Nodes[0].Weight, 100},
		{"balancing.policy", c.Balancing.Policy, PolicyLeastConn},
		{"balancing.retries", *c.Balancing.Retries, 2},
		{"timeouts.connect", c.Timeouts.Connect.D(), time.Second},
		{"timeouts.request", c.Timeouts.Request.D(), 30 * time.Second},
		{"timeouts.idle", c.Timeouts.Idle.D(), 90 * time.Second},
		{"timeouts.upstream_idle", c.Timeouts.UpstreamIdle.D(), 4 * time.Second},
		{"limits.max_body_bytes", c.Limits.MaxBodyBytes, 8 << 20},
		{"limits.body_bytes.frontend", c.Limits.BodyBytes["frontend"], 1 << 20},
		{"limits.max_header_bytes", c.Limits.MaxHeaderBytes, 16 << 10},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:9090"},
		{"log.format", c.Log.Format, LogJSON},
		{"log.access_log", *c.Log.AccessLog, true},
		{"shutdown.grace", c.Shutdown.Grace.D(), 10 * time.Second},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestRetriesZeroIsKept(t *testing.T) {
	c, err := Parse("t.yaml", []byte("balancing: {retries: 0}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if *c.Balancing.Retries != 0 {
		t.Errorf("retries = %d, want an explicit 0 kept", *c.Balancing.Retries)
	}
}

// Every problem the loader and the validation of the core sections report,
// with its position and the words that tell the operator what is valid.
func TestProblems(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // "line:col: path: words" fragment
	}{
		{"empty file", "", "file is empty"},
		{"syntax", "listen: [\n", "YAML syntax"},
		{"second document", "admin: {listen: \"127.0.0.1:1\"}\n---\nlog: {}\n", "t.yaml:2:1: a second YAML document"},
		{"unknown top key", "lisen: []\n", "t.yaml:1:1: lisen: unknown key \"lisen\"; valid keys here: listen, trusted_proxies"},
		{"unknown nested key", "timeouts:\n  conect: 1s\n", "t.yaml:2:3: timeouts.conect: unknown key \"conect\"; valid keys here: connect"},
		{"duplicate key", "log: {level: info, level: debug}\n", "t.yaml:1:20: log.level: key \"level\" given twice"},
		{"alias", "x: &a 1\nlog: *a\n", "unknown key \"x\""},
		{"not a mapping", "timeouts: 5\n", "t.yaml:1:11: timeouts: want a mapping"},
		{"bad duration", "timeouts: {connect: 5}\n", "t.yaml:1:21: timeouts.connect: \"5\" is not a duration"},
		{"negative duration", "timeouts: {connect: -1s}\n", "timeouts.connect: \"-1s\" is negative"},
		{"wrong type", "balancing: {retries: many}\n", "t.yaml:1:22: balancing.retries: want a whole number, got \"many\""},
		{"fraction", "nodes: [{name: a, address: \"10.0.0.1:80\", weight: 0.5}]\n", "nodes[0].weight: want a whole number, got \"0.5\""},
		{"bool", "log: {access_log: yes}\n", "log.access_log: want true or false, got \"yes\""},
		{"string given a list", "log: {level: [a]}\n", "log.level: want a string, got a list"},
		{"env unset", "admin: {listen: \"127.0.0.1:9090\", token: \"${LB_TOKEN}\"}\n", "t.yaml:1:42: admin.token: environment variable LB_TOKEN is not set"},
		{"env malformed", "admin: {token: \"${LB TOKEN}\"}\n", "malformed ${...} reference"},
		{"listen address", "listen: [{address: \"8080\"}]\n", "t.yaml:1:20: listen[0].address: \"8080\" is not host:port"},
		{"listen port", "listen: [{address: \":99999\"}]\n", "has no valid port"},
		{"listen twice", "listen: [{address: \":80\"}, {address: \":80\"}]\n", "listen[1].address: :80 is listed twice"},
		{"socket name twice", "listen: [{address: \":80\", name: web}, {address: \":81\", name: web}]\n", "listen[1].name: \"web\" is used by two listeners"},
		{"socket name with a colon", "listen: [{address: \":80\", name: \"a:b\"}]\n", "listen[0].name: \"a:b\" is not a systemd FileDescriptorName="},
		{"socket name with a newline", "listen: [{address: \":80\", name: \"a\\nb\"}]\n", "listen[0].name: \"a\\nb\" is not a systemd"},
		{"socket name too long", "listen: [{address: \":80\", name: " + strings.Repeat("n", 256) + "}]\n", "is not a systemd FileDescriptorName="},
		{"tls no certs", "listen: [{address: \":443\", tls: {certificates: []}}]\n", "listen[0].tls.certificates: needs at least one"},
		{"tls no key", "listen: [{address: \":443\", tls: {certificates: [{cert: a.crt}]}}]\n", "listen[0].tls.certificates[0].key: is required"},
		{"redirect on tls", "listen: [{address: \":443\", redirect_https: true, tls: {certificates: [{cert: a, key: b}]}}]\n", "redirect_https: only makes sense"},
		{"redirect port", "listen: [{address: \":80\", redirect_port: 70000}]\n", "redirect_port: must be a port"},
		{"default host", "listen: [{address: \":80\", default_host: \"a b\"}]\n", "t.yaml:1:41: listen[0].default_host: \"a b\" is not a host name"},
		{"default host path", "listen: [{address: \":80\", default_host: \"a.example/x\"}]\n", "listen[0].default_host"},
		{"default host port", "listen: [{address: \":80\", default_host: \"a.example:0\"}]\n", "listen[0].default_host"},
		{"default host ipv6 unbracketed", "listen: [{address: \":80\", default_host: \"::1\"}]\n", "listen[0].default_host"},
		{"default host ok", "listen: [{address: \":80\", default_host: \"Mosparo-1.example:8080\"}, {address: \":81\", default_host: \"[::1]:81\"}, {address: \":82\", default_host: \"192.0.2.1\"}]\n", ""},
		{"proxy protocol no from", "listen: [{address: \":80\", proxy_protocol: {timeout: 2s}}]\n", "t.yaml:1:43: listen[0].proxy_protocol.from: lists no load balancer"},
		{"proxy protocol empty from", "listen: [{address: \":80\", proxy_protocol: {from: []}}]\n", "t.yaml:1:50: listen[0].proxy_protocol.from: lists no load balancer"},
		{"proxy protocol bad cidr", "listen: [{address: \":80\"}, {address: \":81\", proxy_protocol: {from: [10.0.0.0/8, \"10.1.0.0/40\"]}}]\n", "t.yaml:1:81: listen[1].proxy_protocol.from[1]: \"10.1.0.0/40\" is not an address or CIDR"},
		{"proxy protocol timeout", "listen: [{address: \":80\", proxy_protocol: {from: [10.0.0.1], timeout: 2m}}]\n", "listen[0].proxy_protocol.timeout: must be positive and at most 1m, got 2m0s"},
		{"proxy protocol ok", "listen: [{address: \":80\", proxy_protocol: {from: [10.0.0.0/8, \"2001:db8::/32\", 192.0.2.1]}}]\n", ""},
		{"trusted proxy", "trusted_proxies: [\"10.0.0.0/33\"]\n", "t.yaml:1:19: trusted_proxies[0]: \"10.0.0.0/33\" is not an address or CIDR"},
		{"node no name", "nodes: [{address: \"10.0.0.1:80\"}]\n", "nodes[0].name: is required"},
		{"node bad name", "nodes: [{name: \"a b\", address: \"10.0.0.1:80\"}]\n", "may not contain"},
		{"node dup name", "nodes: [{name: a, address: \"10.0.0.1:80\"}, {name: a, address: \"10.0.0.2:80\"}]\n", "nodes[1].name: \"a\" is used by another node"},
		{"node dup address", "nodes: [{name: a, address: \"10.0.0.1:80\"}, {name: b, address: \"10.0.0.1:80\"}]\n", "nodes[1].address: 10.0.0.1:80 is used by another node"},
		{"node no address", "nodes: [{name: a}]\n", "nodes[0].address: is required"},
		{"node port 0", "nodes: [{name: a, address: \"10.0.0.1:0\"}]\n", "needs a real port"},
		{"node weight", "nodes: [{name: a, address: \"10.0.0.1:80\", weight: 5000}]\n", "t.yaml:1:51: nodes[0].weight: must be 1..1000, got 5000"},
		{"policy", "balancing: {policy: fastest}\n", "t.yaml:1:21: balancing.policy: \"fastest\" is not valid; use one of round_robin, least_conn, weighted, client_ip_hash"},
		{"retries", "balancing: {retries: 11}\n", "balancing.retries: must be 0..10"},
		{"pool class", "balancing: {pools: {widgets: [a]}}\n", "balancing.pools.widgets: unknown route class \"widgets\"; valid: frontend, api, resources"},
		{"body class", "limits: {body_bytes: {widgets: 10}}\n", "limits.body_bytes.widgets: unknown route class \"widgets\""},
		{"body size", "limits: {body_bytes: {api: -1}}\n", "limits.body_bytes.api: must be 1024..1073741824, got -1"},
		{"pool empty", "balancing: {pools: {admin: []}}\n", "lists no nodes"},
		{"pool unknown node", "balancing: {pools: {admin: [ghost]}}\n", "balancing.pools.admin[0]: no node is named \"ghost\""},
		{"timeout zero", "timeouts: {request: 0s}\n", ""}, // 0 means default
		{"queue", "timeouts: {queue: 2h}\n", "t.yaml:1:19: timeouts.queue: must be 0 (no waiting) up to 1h, got 2h0m0s"},
		{"queue zero", "timeouts: {queue: 0s}\n", ""},
		{"count 5xx", "health: {passive: {count_5xx: 1}}\n", "health.passive.count_5xx: want true or false"},
		{"body limit", "limits: {max_body_bytes: 10}\n", "limits.max_body_bytes: must be 1024..1073741824"},
		{"header limit", "limits: {max_header_bytes: 2000000}\n", "limits.max_header_bytes: must be 1024..1048576"},
		{"conns", "limits: {max_conns_per_node: -1}\n", "limits.max_conns_per_node: must be at least 1"},
		{"edge cidr", "edge: {allow_health_from: [\"nope\"]}\n", "edge.allow_health_from[0]: \"nope\" is not an address or CIDR"},
		{"edge cron cidr", "edge: {allow_cron_from: [\"1.2.3.4/40\"]}\n", "edge.allow_cron_from[0]"},
		{"prefix", "edge: {forwarded_prefix: \"mosparo/\"}\n", "edge.forwarded_prefix: must start with /"},
		{"admin address", "admin: {listen: \"9090\"}\n", "admin.listen: \"9090\" is not host:port"},
		{"admin public without token", "admin: {listen: \"0.0.0.0:9090\"}\n", "admin.listen: 0.0.0.0:9090 is not a loopback address; set admin.token"},
		{"admin host with port", "admin: {hosts: [\"lb1.example:9090\"]}\n", "admin.hosts[0]: \"lb1.example:9090\" is not a host name"},
		{"admin host empty", "admin: {hosts: [\"\"]}\n", "admin.hosts[0]: \"\" is not a host name"},
		{"admin host address", "admin: {hosts: [\"10.0.0.5\"]}\n", "admin.hosts[0]: \"10.0.0.5\" is an address"},
		{"admin host wildcard", "admin: {hosts: [\"*.example\"]}\n", "admin.hosts[0]: \"*.example\" is not a host name"},
		{"log level", "log: {level: loud}\n", "log.level: \"loud\" is not valid; use one of debug, info, warn, error"},
		{"log format", "log: {format: xml}\n", "log.format: \"xml\" is not valid"},
		{"huge file", strings.Repeat("#", maxFileBytes+1), "a configuration is at most"},
		{"strip name not a token", "strip_client_ip_headers: [\"X A\"]\n", "t.yaml:1:27: strip_client_ip_headers[0]: \"X A\" is not a header name"},
		{"strip name empty", "strip_client_ip_headers: [\"\"]\n", "strip_client_ip_headers[0]: \"\" is not a header name"},
		{"strip Host", "strip_client_ip_headers: [X-Ok, host]\n", "strip_client_ip_headers[1]: \"host\" cannot be stripped"},
		{"strip Content-Length", "strip_client_ip_headers: [content_length]\n", "cannot be stripped"},
		{"max_conns", "limits: {max_conns: 2000000}\n", "t.yaml:1:21: limits.max_conns: must be 1..1000000"},
		{"max_conns_per_ip over max_conns", "limits: {max_conns: 100, max_conns_per_ip: 101}\n", "limits.max_conns_per_ip: must be 1..limits.max_conns (100), got 101"},
		{"strip names", "strip_client_ip_headers: [X-Client-Address, my_real_ip]\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml), noEnv)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse = %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *configs.Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error =\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cret", "PORT": "8443", "INJECT": "x}\nlisten: [{address: \":1\"}]"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	_, err := Parse("t.yaml", []byte(`
listen: [{address: "127.0.0.1:${PORT}"}]
admin: {listen: "127.0.0.1:9090", token: "${TOKEN}"}
edge: {forwarded_prefix: "${PREFIX:-/mosparo}"}
log: {level: "${LEVEL:-warn}"}
cron: {key: "$${NOT_A_VAR}"}
nodes: [{name: "${INJECT}", address: "10.0.0.1:80"}]
`), lookup)
	if err == nil || !strings.Contains(err.Error(), "may not contain") {
		t.Fatalf("Parse = %v; want only the injected node name rejected as a name", err)
	}
	c, err := Parse("t.yaml", []byte(`
listen: [{address: "127.0.0.1:${PORT}"}]
admin: {listen: "127.0.0.1:9090", token: "${TOKEN}"}
edge: {forwarded_prefix: "${PREFIX:-/mosparo}"}
log: {level: "${LEVEL:-warn}"}
cron: {key: "$${NOT_A_VAR}"}
`), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen[0].Address != "127.0.0.1:8443" || c.Admin.Token != "s3cret" || c.Edge.ForwardedPrefix != "/mosparo" || c.Log.Level != "warn" || c.Cron.Key != "${NOT_A_VAR}" {
		t.Errorf("expanded = %q %q %q %q %q", c.Listen[0].Address, c.Admin.Token, c.Edge.ForwardedPrefix, c.Log.Level, c.Cron.Key)
	}
}

func TestEmbeddedFilesLoad(t *testing.T) {
	env := func(k string) (string, bool) { return "set-by-test-" + k, true }
	for name, b := range map[string][]byte{"mosparo-lb.yaml": Reference(), "demo.yaml": Demo()} {
		if _, err := Parse(name, b, env); err != nil {
			t.Errorf("%s does not load:\n%v", name, err)
		}
	}
}

// TestEnvExpansionTypes: the expanded text decides the type of integer,
// boolean and duration keys, quoted or not; a value holding "${" is taken
// as text; string keys stay strings whatever the value looks like (issue
// 11, item 13).
func TestEnvExpansionTypes(t *testing.T) {
	env := map[string]string{
		"SZ": "2048", "HDR": "4096", "OFF": "false", "ON": "true", "IV": "300ms", "W": "7",
		"NESTED": "a${b}c", "DOLLARS": "$${x}", "NULL": "null", "NUM": "0123", "BAD": "12abc",
		"REF": "${SZ}",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, yaml string
		check      func(c *Config) any
		want       any
		wantErr    string
	}{
		{"int quoted", "limits: {max_body_bytes: \"${SZ}\"}\n", func(c *Config) any { return c.Limits.MaxBodyBytes }, 2048, ""},
		{"int block plain", "limits:\n  max_header_bytes: ${HDR}\n", func(c *Config) any { return c.Limits.MaxHeaderBytes }, 4096, ""},
		{"int single quoted", "nodes: [{name: a, address: \"10.0.0.1:80\", weight: '${W}'}]\n", func(c *Config) any { return c.Nodes[0].Weight }, 7, ""},
		{"int default", "limits: {max_body_bytes: \"${NOPE:-4096}\"}\n", func(c *Config) any { return c.Limits.MaxBodyBytes }, 4096, ""},
		{"bool false", "log: {access_log: \"${OFF}\"}\n", func(c *Config) any { return *c.Log.AccessLog }, false, ""},
		{"bool true block", "cron:\n  standalone: ${ON}\n", func(c *Config) any { return c.Cron.Standalone }, true, ""},
		{"bool default", "log: {access_log: \"${NOPE:-false}\"}\n", func(c *Config) any { return *c.Log.AccessLog }, false, ""},
		{"duration", "health: {interval: \"${IV}\"}\n", func(c *Config) any { return c.Health.Interval.D() }, 300 * time.Millisecond, ""},
		{"value with ${ is text", "admin: {token: \"${NESTED}\"}\n", func(c *Config) any { return c.Admin.Token }, "a${b}c", ""},
		{"value with $${ is text", "admin: {token: \"${DOLLARS}\"}\n", func(c *Config) any { return c.Admin.Token }, "$${x}", ""},
		{"value that is a reference is text", "admin: {token: \"${REF}\"}\n", func(c *Config) any { return c.Admin.Token }, "${SZ}", ""},
		{"string null stays text", "admin: {token: \"${NULL}\"}\n", func(c *Config) any { return c.Admin.Token }, "null", ""},
		{"string number stays text", "admin: {token: \"${NUM}\"}\n", func(c *Config) any { return c.Admin.Token }, "0123", ""},
		{"int not a number", "limits: {max_body_bytes: \"${BAD}\"}\n", nil, nil, "t.yaml:1:26: limits.max_body_bytes: want a whole number, got \"12abc\""},
		{"bool not a bool", "log: {access_log: \"${SZ}\"}\n", nil, nil, "t.yaml:1:19: log.access_log: want true or false, got \"2048\""},
		{"unset in int", "limits: {max_body_bytes: \"${NOPE}\"}\n", nil, nil, "t.yaml:1:26: limits.max_body_bytes: environment variable NOPE is not set"},
		{"malformed", "admin: {token: \"${A B}\"}\n", nil, nil, "t.yaml:1:16: admin.token: malformed ${...} reference"},
		{"unterminated", "admin: {token: \"x${A\"}\n", nil, nil, "malformed ${...} reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tt.yaml), lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			if got := tt.check(c); got != tt.want {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLoadReadsThroughALimit: Load stops reading at the size limit, so
// /dev/zero or a huge file fails at once with a clear error (issue 11,
// item 13).
func TestLoadReadsThroughALimit(t *testing.T) {
	big := t.TempDir() + "/big.yaml"
	if err := os.WriteFile(big, []byte(strings.Repeat("#", maxFileBytes+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dev/zero", "/dev/urandom", big} {
		_, err := Load(path)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("Load(%s) = %v, want a *configs.Error saying the file is too large", path, err)
		}
	}
	if _, err := Load(t.TempDir() + "/missing.yaml"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}

// TestDependentDefaults: a default bounded by another key follows that key
// when the operator sets it alone, and an explicit value is still checked.
func TestDependentDefaults(t *testing.T) {
	const consul = "discovery: {consul: {service: mosparo, %s}}\n"
	tests := []struct {
		name, yaml string
		check      func(c *Config) any
		want       any
	}{
		{"fast_interval follows a short interval", "health: {interval: 300ms}\n", func(c *Config) any { return c.Health.FastInterval.D() }, 300 * time.Millisecond},
		{"health timeout follows a short interval", "health: {interval: 300ms}\n", func(c *Config) any { return c.Health.Timeout.D() }, 150 * time.Millisecond},
		{"fast_interval keeps its default", "health: {interval: 10s}\n", func(c *Config) any { return c.Health.FastInterval.D() }, 500 * time.Millisecond},
		{"health timeout keeps its default", "health: {interval: 10s}\n", func(c *Config) any { return c.Health.Timeout.D() }, time.Second},
		{"max_ejection follows a long base", "health: {passive: {base_ejection: 10m}}\n", func(c *Config) any { return c.Health.Passive.MaxEjection.D() }, 10 * time.Minute},
		{"backoff_max follows a long backoff_min", fmt.Sprintf(consul, "backoff_min: 1m"), func(c *Config) any { return c.Discovery.Consul.BackoffMax.D() }, time.Minute},
		{"check_timeout follows a short check_interval", fmt.Sprintf(consul, "register: {port: 80, check_interval: 1s}"), func(c *Config) any { return c.Discovery.Consul.Register.CheckTimeout.D() }, 500 * time.Millisecond},
		{"max_conns_per_ip follows a small max_conns", "limits: {max_conns: 100}\n", func(c *Config) any { return c.Limits.MaxConnsPerIP }, 100},
		{"max_conns_per_ip default", "limits: {}\n", func(c *Config) any { return c.Limits.MaxConnsPerIP }, 256},
		{"max_value_bytes follows a small max_bytes", "css_cache: {max_bytes: 65536}\n", func(c *Config) any { return c.CSSCache.MaxValueBytes }, 32768},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tt.yaml), noEnv)
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			if got := tt.check(c); got != tt.want {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
		})
	}
	for _, tt := range []struct{ yaml, path string }{
		{"health: {interval: 300ms, fast_interval: 500ms}\n", "health.fast_interval"},
		{"health: {interval: 300ms, timeout: 1s}\n", "health.timeout"},
		{"health: {passive: {base_ejection: 10m, max_ejection: 5m}}\n", "health.passive.max_ejection"},
		{"css_cache: {max_bytes: 65536, max_value_bytes: 65536}\n", "css_cache.max_value_bytes"},
	} {
		_, err := Parse("t.yaml", []byte(tt.yaml), noEnv)
		wantProblem(t, err, tt.path, "must be")
	}
}
