package acme

import (
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/valyala/fasthttp"
)

func TestChallengeToken(t *testing.T) {
	long := strings.Repeat("a", maxTokenLen)
	for _, tc := range []struct {
		name, path, want string
		ok               bool
	}{
		{"token", ChallengePrefix + "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", true},
		{"longest", ChallengePrefix + long, long, true},
		{"too long", ChallengePrefix + long + "a", "", false},
		{"empty", ChallengePrefix, "", false},
		{"no prefix", "/.well-known/acme-challeng/x", "", false},
		{"traversal", ChallengePrefix + "../../etc/passwd", "", false},
		{"encoded traversal", ChallengePrefix + "..%2f..%2fetc", "", false},
		{"dots", ChallengePrefix + "..", "", false},
		{"more segments", ChallengePrefix + "a/b", "", false},
		{"padding", ChallengePrefix + "abc=", "", false},
		{"query-like", ChallengePrefix + "a?b", "", false},
		{"nul", ChallengePrefix + "a\x00", "", false},
		{"unicode", ChallengePrefix + "ä", "", false},
		{"script", ChallengePrefix + "<script>", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := challengeToken([]byte(tc.path))
			if got != tc.want || ok != tc.ok {
				t.Errorf("challengeToken(%q) = %q, %v, want %q, %v", tc.path, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestChallengeHost(t *testing.T) {
	for _, tc := range []struct {
		host, want string
		ok         bool
	}{
		{"lb.mosparo.test", "lb.mosparo.test", true},
		{"LB.Mosparo.Test:80", "lb.mosparo.test", true},
		{"", "", false},
		{":80", "", false},
		{".lb.test", "", false},
		{"lb.test.", "", false},
		{"lb..test", "", false},
		{"../../x", "", false},
		{"a/b", "", false},
		{"[::1]:80", "", false},
		{"a b", "", false},
		{"a\x00b", "", false},
		{"*.test", "", false},
		{strings.Repeat("a", 254), "", false},
	} {
		got, ok := challengeHost([]byte(tc.host))
		if got != tc.want || ok != tc.ok {
			t.Errorf("challengeHost(%q) = %q, %v, want %q, %v", tc.host, got, ok, tc.want, tc.ok)
		}
	}
}

// TestServeHTTPChallengeHostile: no hostile request reaches the storage or
// a node; each gets 404 from the LB, and other paths are left alone.
func TestServeHTTPChallengeHostile(t *testing.T) {
	m, err := New(configs.ACME{Domains: []string{"lb.mosparo.test"}, CA: "https://127.0.0.1:1/dir"},
		Options{Storage: &certmagic.FileStorage{Path: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, host, uri string
		handled                 bool
		status                  int
	}{
		{"other path", "GET", "lb.mosparo.test", "/login", false, 0},
		{"not running", "GET", "lb.mosparo.test", ChallengePrefix + "abc", true, 404},
		// The path is normalised first (as routing sees it): out of the
		// prefix it is not a challenge, inside it a token that has no answer.
		{"traversal out", "GET", "lb.mosparo.test", ChallengePrefix + "..%2F..%2Fetc%2Fpasswd", false, 0},
		{"traversal in", "GET", "lb.mosparo.test", ChallengePrefix + "x/..%2Fabc", true, 404},
		{"encoded token", "GET", "lb.mosparo.test", ChallengePrefix + "%3Cscript%3E", true, 404},
		{"oversized token", "GET", "lb.mosparo.test", ChallengePrefix + strings.Repeat("A", 10000), true, 404},
		{"hostile host", "GET", "a_b.test", ChallengePrefix + "abc", true, 404},
		{"post", "POST", "lb.mosparo.test", ChallengePrefix + "abc", true, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(tc.method)
			ctx.Request.SetRequestURI(tc.uri)
			ctx.Request.Header.SetHost(tc.host)
			if got := m.ServeHTTPChallenge(&ctx); got != tc.handled {
				t.Fatalf("ServeHTTPChallenge(%s %s) = %v, want %v", tc.method, tc.uri, got, tc.handled)
			}
			if tc.handled && ctx.Response.StatusCode() != tc.status {
				t.Errorf("status = %d, want %d", ctx.Response.StatusCode(), tc.status)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	for _, tc := range []struct {
		name string
		s    configs.ACME
		o    Options
		want string
	}{
		{"no storage", configs.ACME{Domains: []string{"a.test"}}, Options{}, "no storage"},
		{"no domains", configs.ACME{}, Options{Storage: st}, "no domains"},
		{"missing ca_root", configs.ACME{Domains: []string{"a.test"}, CARoot: "/nonexistent/root.pem"}, Options{Storage: st}, "ca_root"},
		{"ca_root not PEM", configs.ACME{Domains: []string{"a.test"}, CARoot: "challenge_test.go"}, Options{Storage: st}, "no PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.s, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
