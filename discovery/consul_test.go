package discovery

import (
	"strings"
	"testing"
)

const goodEntry = `{"Node":{"Node":"n1","Address":"10.0.0.1"},"Service":{"ID":"m1","Service":"mosparo","Address":"10.0.1.1","Port":80,"Tags":["a"],"Weights":{"Passing":3,"Warning":1}},"Checks":[{"CheckID":"serfHealth","Status":"passing"},{"CheckID":"m1","Status":"passing"}]}`

func TestParseHealth(t *testing.T) {
	insts, skipped, err := parseHealth([]byte("[" + goodEntry + "]"))
	if err != nil || len(skipped) != 0 || len(insts) != 1 {
		t.Fatalf("parseHealth(good) = %+v, %q, %v", insts, skipped, err)
	}
	in := insts[0]
	if in.ID != "m1" || in.Node != "n1" || in.Address != "10.0.1.1" || in.Port != 80 || in.WeightPassing != 3 || in.Tags[0] != "a" {
		t.Errorf("instance = %+v", in)
	}
	insts, _, _ = parseHealth([]byte(`[{"Node":{"Node":"n1","Address":"10.0.0.1"},"Service":{"ID":"m1","Address":"","Port":80}}]`))
	if len(insts) != 1 || insts[0].Address != "10.0.0.1" {
		t.Errorf("empty Service.Address: %+v, want the node's address", insts)
	}
}

// Hostile answers: errors for a non-array, skips (never panics) for bad
// entries, and good entries beside bad ones survive.
func TestParseHealthHostile(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
		skip    string // substring of the skip reason; "" means no skip
		n       int    // instances kept
	}{
		{name: "empty", body: ``, wantErr: true},
		{name: "object", body: `{"Node":{}}`, wantErr: true},
		{name: "string", body: `"[]"`, wantErr: true},
		{name: "truncated", body: `[` + goodEntry, wantErr: true},
		{name: "html error page", body: `<html>502</html>`, wantErr: true},
		{name: "null is no instances", body: `null`},
		{name: "empty list", body: `[]`},
		{name: "entry is a number", body: `[1,` + goodEntry + `]`, skip: "malformed", n: 1},
		{name: "entry is null", body: `[null]`, skip: "no Service"},
		{name: "no Service", body: `[{"Node":{"Node":"n","Address":"10.0.0.1"}}]`, skip: "no Service"},
		{name: "Service null", body: `[{"Service":null}]`, skip: "no Service"},
		{name: "no ID", body: `[{"Service":{"Address":"10.0.0.1","Port":80}}]`, skip: "no Service.ID"},
		{name: "huge ID", body: `[{"Service":{"ID":"` + strings.Repeat("x", 300) + `","Address":"10.0.0.1","Port":80}}]`, skip: "longer than 256"},
		{name: "port 0", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":0}}]`, skip: "port 0"},
		{name: "port negative", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":-80}}]`, skip: "port -80"},
		{name: "port too big", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":65536}}]`, skip: "port 65536"},
		{name: "port overflows int", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":1e30}}]`, skip: "malformed"},
		{name: "port as string", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":"80"}}]`, skip: "malformed"},
		{name: "no address anywhere", body: `[{"Node":{"Node":"n"},"Service":{"ID":"a","Port":80}}]`, skip: "neither"},
		{name: "address with port", body: `[{"Service":{"ID":"a","Address":"10.0.0.1:80","Port":80}}]`, skip: "not an IP"},
		{name: "address with path", body: `[{"Service":{"ID":"a","Address":"evil/../x","Port":80}}]`, skip: "not an IP"},
		{name: "address with control chars", body: `[{"Service":{"ID":"a","Address":"a\nb","Port":80}}]`, skip: "not an IP"},
		{name: "address with space", body: `[{"Service":{"ID":"a","Address":"a b","Port":80}}]`, skip: "not an IP"},
		{name: "bracketed IPv6", body: `[{"Service":{"ID":"a","Address":"[::1]","Port":80}}]`, skip: "not an IP"},
		{name: "warning check despite passing", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80},"Checks":[{"CheckID":"c","Status":"warning"}]}]`, skip: "is \"warning\""},
		{name: "critical serfHealth", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80},"Checks":[{"CheckID":"serfHealth","Status":"critical"}]}]`, skip: "critical"},
		{name: "check status missing", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80},"Checks":[{"CheckID":"c"}]}]`, skip: "is \"\""},
		{name: "weights of the wrong type", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80,"Weights":[1]}}]`, skip: "malformed"},
		{name: "tags of the wrong type", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80,"Tags":"x"}}]`, skip: "malformed"},
		{name: "unknown fields are fine", body: `[{"Extra":{"deep":[1,2,3]},"Service":{"ID":"a","Address":"10.0.0.1","Port":80,"Connect":{}}}]`, n: 1},
		{name: "IPv6 address", body: `[{"Service":{"ID":"a","Address":"fd00::1","Port":80}}]`, n: 1},
		{name: "host name", body: `[{"Service":{"ID":"a","Address":"mosparo-1.internal","Port":80}}]`, n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			insts, skipped, err := parseHealth([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseHealth(%q) error = %v, want error %v", tt.body, err, tt.wantErr)
			}
			if len(insts) != tt.n {
				t.Errorf("parseHealth(%q) kept %d, want %d", tt.body, len(insts), tt.n)
			}
			switch {
			case tt.skip == "" && len(skipped) > 0:
				t.Errorf("parseHealth(%q) skipped %q, want none", tt.body, skipped)
			case tt.skip != "" && (len(skipped) != 1 || !strings.Contains(skipped[0], tt.skip)):
				t.Errorf("parseHealth(%q) skipped %q, want one containing %q", tt.body, skipped, tt.skip)
			}
			for _, s := range skipped {
				if strings.ContainsAny(s, "\n\r") || len(s) > 400 {
					t.Errorf("skip reason %q is not a safe log line", s)
				}
			}
		})
	}
}

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"10.0.0.1": true, "fd00::1": true, "fe80::1%eth0": true, "node-1.example.com": true, "node_1": true, "a.": true,
		"": false, ".": false, "a..b": false, "a b": false, "a/b": false, "[::1]": false, "a:80": false,
		strings.Repeat("a", 64): false, strings.Repeat("a.", 127) + "a": false, "ü.example": false,
	} {
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %v, want %v", h, got, want)
		}
	}
}
