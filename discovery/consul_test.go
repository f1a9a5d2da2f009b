package discovery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/consulclient"
)

// cannedAgent answers every request with one fixed response, in memory: the
// official client's decoding and our bound and checks see exactly the bytes
// a hostile agent could send.
type cannedAgent struct {
	code  int
	index string // X-Consul-Index; "" sends none
	body  []byte
}

func (c cannedAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	if c.index != "" {
		h.Set("X-Consul-Index", c.index)
	}
	code := c.code
	if code == 0 {
		code = http.StatusOK
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(c.body)), Request: r}, nil
}

// askCanned runs one health query through the official client against a
// canned answer.
func askCanned(c cannedAgent) (answer, error) {
	cl, err := newConsulClient(configs.Consul{Address: "consul.invalid:8500", Service: "m"}, &http.Client{Transport: c})
	if err != nil {
		return answer{}, err
	}
	return healthQuery{api: cl.Health(), service: "m"}.ask(context.Background(), 0, 0)
}

// parseHealth decodes a health answer body the way the live path does.
func parseHealth(b []byte) ([]instance, []string, error) {
	ans, err := askCanned(cannedAgent{index: "7", body: b})
	return ans.insts, ans.skipped, err
}

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

// Hostile answers: an answer the official client cannot decode whole (not
// an array, an entry of the wrong shape) is an error, so the last set
// stays; entries that decode but cannot be nodes are skipped, never a
// panic, and good entries beside them survive.
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
		{name: "entry is a number", body: `[1,` + goodEntry + `]`, wantErr: true},
		{name: "entry is null", body: `[null]`, skip: "no Service"},
		{name: "check is null", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80},"Checks":[null]}]`, skip: "is \"missing\""},
		{name: "no Service", body: `[{"Node":{"Node":"n","Address":"10.0.0.1"}}]`, skip: "no Service"},
		{name: "Service null", body: `[{"Service":null}]`, skip: "no Service"},
		{name: "no ID", body: `[{"Service":{"Address":"10.0.0.1","Port":80}}]`, skip: "no Service.ID"},
		{name: "huge ID", body: `[{"Service":{"ID":"` + strings.Repeat("x", 300) + `","Address":"10.0.0.1","Port":80}}]`, skip: "longer than 256"},
		{name: "port 0", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":0}}]`, skip: "port 0"},
		{name: "port negative", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":-80}}]`, skip: "port -80"},
		{name: "port too big", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":65536}}]`, skip: "port 65536"},
		{name: "port overflows int", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":1e30}}]`, wantErr: true},
		{name: "port as string", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":"80"}}]`, wantErr: true},
		{name: "no address anywhere", body: `[{"Node":{"Node":"n"},"Service":{"ID":"a","Port":80}}]`, skip: "neither"},
		{name: "address with port", body: `[{"Service":{"ID":"a","Address":"10.0.0.1:80","Port":80}}]`, skip: "not an IP"},
		{name: "address with path", body: `[{"Service":{"ID":"a","Address":"evil/../x","Port":80}}]`, skip: "not an IP"},
		{name: "address with control chars", body: `[{"Service":{"ID":"a","Address":"a\nb","Port":80}}]`, skip: "not an IP"},
		{name: "address with space", body: `[{"Service":{"ID":"a","Address":"a b","Port":80}}]`, skip: "not an IP"},
		{name: "bracketed IPv6", body: `[{"Service":{"ID":"a","Address":"[::1]","Port":80}}]`, skip: "not an IP"},
		{name: "warning check despite passing", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80},"Checks":[{"CheckID":"c","Status":"warning"}]}]`, skip: "is \"warning\""},
		{name: "critical serfHealth", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80},"Checks":[{"CheckID":"serfHealth","Status":"critical"}]}]`, skip: "critical"},
		{name: "check status missing", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80},"Checks":[{"CheckID":"c"}]}]`, skip: "is \"\""},
		{name: "weights of the wrong type", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80,"Weights":[1]}}]`, wantErr: true},
		{name: "tags of the wrong type", body: `[{"Service":{"ID":"a","Address":"10.0.0.1","Port":80,"Tags":"x"}}]`, wantErr: true},
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

// Hostile answers around the body: size, status, index.
func TestHealthAnswerHostile(t *testing.T) {
	huge := append([]byte("["), bytes.Repeat([]byte(" "), maxAnswerBytes)...)
	huge = append(huge, ']')
	for _, tt := range []struct {
		name    string
		agent   cannedAgent
		is      error  // errors.Is target, if any
		contain string // substring of the error
	}{
		{name: "body over the bound", agent: cannedAgent{index: "5", body: huge}, is: consulclient.ErrAnswerTooLarge},
		{name: "no index", agent: cannedAgent{body: []byte(`[]`)}, is: ErrNoIndex},
		{name: "index 0", agent: cannedAgent{index: "0", body: []byte(`[]`)}, is: ErrNoIndex},
		{name: "index not a number", agent: cannedAgent{index: "abc", body: []byte(`[]`)}, contain: "X-Consul-Index"},
		{name: "index negative", agent: cannedAgent{index: "-1", body: []byte(`[]`)}, contain: "X-Consul-Index"},
		{name: "500 with control characters", agent: cannedAgent{code: 500, body: []byte("No cluster leader\n\x1b[31mred")}, contain: "500 No cluster leader??[31mred"},
		{name: "403 with a huge body", agent: cannedAgent{code: 403, body: huge}, contain: "403"},
		{name: "bad JSON", agent: cannedAgent{index: "5", body: []byte(`[{"Service":`)}, contain: "health query"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := askCanned(tt.agent)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.contain) || len(err.Error()) > 400 || strings.ContainsAny(err.Error(), "\n\x1b") {
				t.Errorf("error %q: want a short printable one containing %q", err, tt.contain)
			}
		})
	}
}
