package configs

import (
	"reflect"
	"strings"
	"testing"
)

func parseACME(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	return Parse("test.yaml", []byte(yaml), noEnv)
}

func TestACMEDefaults(t *testing.T) {
	c, err := parseACME(t, "listen:\n  - address: \":80\"\n  - address: \":443\"\n    tls: {acme: {domains: [Mosparo.Example.org]}}\n")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Listen[1].TLS.ACME
	if a.CA != LetsEncryptCA || !reflect.DeepEqual(a.Challenges, []Challenge{ChallengeHTTP01, ChallengeTLSALPN01}) {
		t.Errorf("acme = %+v, want Let's Encrypt and both challenges", a)
	}
	if c.ACME.StorageDir != "/var/lib/mosparo-lb" || c.ACME.ConsulPrefix != "mosparo-lb/acme" {
		t.Errorf("acme storage = %+v, want /var/lib/mosparo-lb and mosparo-lb/acme", c.ACME)
	}
	s := c.ACMESettings()
	if s == nil || !reflect.DeepEqual(s.Domains, []string{"mosparo.example.org"}) {
		t.Errorf("ACMESettings() = %+v, want the one lower-cased domain", s)
	}
	plain, err := parseACME(t, "nodes: []\n")
	if err != nil {
		t.Fatal(err)
	}
	if plain.ACMESettings() != nil {
		t.Errorf("ACMESettings() without tls.acme = %+v, want nil", plain.ACMESettings())
	}
}

func TestACMESettingsUnion(t *testing.T) {
	c, err := parseACME(t, `listen:
  - {address: ":443", tls: {acme: {domains: [a.example, b.example], email: o@x.example}}}
  - {address: ":8443", tls: {acme: {domains: [B.example, c.example], email: o@x.example}}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ACMESettings().Domains, []string{"a.example", "b.example", "c.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ACMESettings().Domains = %v, want %v", got, want)
	}
}

// TestACMEInvalid: every hostile or wrong value is a problem at its path.
func TestACMEInvalid(t *testing.T) {
	const tlsOnly = "listen:\n  - address: \":443\"\n    tls: {acme: "
	const both = "listen:\n  - address: \":80\"\n  - address: \":443\"\n    tls: {acme: "
	long := strings.Repeat("a", 64) + ".example"
	for _, tc := range []struct{ name, yaml, path, msg string }{
		{"no domains", both + "{}}\n", "listen[1].tls.acme.domains", "lists no domain"},
		{"empty domain", both + "{domains: [\"\"]}}\n", "listen[1].tls.acme.domains[0]", "not a DNS name"},
		{"wildcard", both + "{domains: [\"*.example.org\"]}}\n", "listen[1].tls.acme.domains[0]", "dns-01"},
		{"ip", both + "{domains: [192.0.2.1]}}\n", "listen[1].tls.acme.domains[0]", "IP address"},
		{"ipv6", both + "{domains: [\"[::1]\"]}}\n", "listen[1].tls.acme.domains[0]", "IP address"},
		{"single label", both + "{domains: [localhost]}}\n", "listen[1].tls.acme.domains[0]", "fully qualified"},
		{"port", both + "{domains: [\"a.example:443\"]}}\n", "listen[1].tls.acme.domains[0]", "fully qualified"},
		{"trailing dot", both + "{domains: [a.example.]}}\n", "listen[1].tls.acme.domains[0]", "fully qualified"},
		{"traversal", both + "{domains: [\"../../etc.example\"]}}\n", "listen[1].tls.acme.domains[0]", "fully qualified"},
		{"slash", both + "{domains: [\"a/b.example\"]}}\n", "listen[1].tls.acme.domains[0]", "fully qualified"},
		{"long label", both + "{domains: [" + long + "]}}\n", "listen[1].tls.acme.domains[0]", "fully qualified"},
		{"too long", both + "{domains: [" + strings.Repeat("a.", 130) + "example]}}\n", "listen[1].tls.acme.domains[0]", "1..253"},
		{"unicode", both + "{domains: [\"bücher.example\"]}}\n", "listen[1].tls.acme.domains[0]", "fully qualified"},
		{"twice", both + "{domains: [a.example, A.example]}}\n", "listen[1].tls.acme.domains[1]", "listed twice"},
		{"bad email", both + "{domains: [a.example], email: nobody}}\n", "listen[1].tls.acme.email", "not an email"},
		{"email header injection", both + "{domains: [a.example], email: \"a@b.example\\r\\nBcc: c@d\"}}\n", "listen[1].tls.acme.email", "not an email"},
		{"two ats", both + "{domains: [a.example], email: a@b@c.example}}\n", "listen[1].tls.acme.email", "not an email"},
		{"http ca", both + "{domains: [a.example], ca: \"http://ca.example/dir\"}}\n", "listen[1].tls.acme.ca", "https://"},
		{"ca no host", both + "{domains: [a.example], ca: \"https:///dir\"}}\n", "listen[1].tls.acme.ca", "https://"},
		{"ca user", both + "{domains: [a.example], ca: \"https://u:p@ca.example/dir\"}}\n", "listen[1].tls.acme.ca", "https://"},
		{"no challenges", both + "{domains: [a.example], challenges: []}}\n", "listen[1].tls.acme.challenges", "allows no challenge"},
		{"dns-01", both + "{domains: [a.example], challenges: [dns-01]}}\n", "listen[1].tls.acme.challenges[0]", "http-01"},
		{"challenge twice", both + "{domains: [a.example], challenges: [http-01, http-01]}}\n", "listen[1].tls.acme.challenges[1]", "twice"},
		{"http-01 without plain listener", tlsOnly + "{domains: [a.example], challenges: [http-01]}}\n", "listen[0].tls.acme.challenges", "plain-HTTP listener"},
		{"accounts disagree", "listen:\n  - {address: \":443\", tls: {acme: {domains: [a.example], email: a@x.example}}}\n  - {address: \":8443\", tls: {acme: {domains: [b.example], email: b@x.example}}}\n",
			"listen[1].tls.acme", "must agree"},
		{"relative storage", both + "{domains: [a.example]}}\nacme: {storage_dir: var/lib}\n", "acme.storage_dir", "absolute"},
		{"unclean storage", both + "{domains: [a.example]}}\nacme: {storage_dir: /var/../etc}\n", "acme.storage_dir", "absolute"},
		{"consul prefix traversal", both + "{domains: [a.example]}}\ndiscovery: {consul: {service: m}}\nacme: {consul_prefix: a/../../b}\n", "acme.consul_prefix", "KV path"},
		{"consul prefix leading slash", both + "{domains: [a.example]}}\ndiscovery: {consul: {service: m}}\nacme: {consul_prefix: /a}\n", "acme.consul_prefix", "KV path"},
		{"tls with nothing", "listen:\n  - address: \":443\"\n    tls: {}\n", "listen[0].tls.certificates", "or tls.acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseACME(t, tc.yaml)
			wantProblem(t, err, tc.path, tc.msg)
		})
	}
}

func TestACMEValid(t *testing.T) {
	for _, yaml := range []string{
		"listen:\n  - address: \":443\"\n    tls: {acme: {domains: [a.example], challenges: [tls-alpn-01]}}\n",
		"listen:\n  - address: \":80\"\n  - address: \":443\"\n    tls: {acme: {domains: [a.example, b.a.example], email: ops@a.example, challenges: [http-01], ca_root: /etc/ca.pem, ca: \"https://127.0.0.1:14000/dir\"}}\n",
		"listen:\n  - address: \":443\"\n    tls: {acme: {domains: [a.example]}, certificates: [{cert: c, key: k}]}\nacme: {storage_dir: /srv/shared/acme/}\n",
	} {
		if _, err := parseACME(t, yaml); err != nil {
			t.Errorf("Parse(%q) = %v, want valid", yaml, err)
		}
	}
}
