package health

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The five answers of FACTS 1.1, byte for byte as mosparo's JsonResponse
// writes them (JSON_HEX_TAG|APOS|AMP|QUOT: quotes inside strings are \u0022).
const (
	bodyBypassed     = `{"service":"mosparo","healthy":null,"databaseStatus":"bypassed","error":"","statusCode":200}`
	bodyConnected    = `{"service":"mosparo","healthy":true,"databaseStatus":"connected","error":null,"statusCode":200}`
	bodyFailed       = `{"service":"mosparo","healthy":false,"databaseStatus":"connection-failed","error":"An exception occurred in driver: SQLSTATE[HY000] [2002] Connection refused","statusCode":500}`
	bodyFailedQuoted = `{"service":"mosparo","healthy":false,"databaseStatus":"connection-failed","error":"SQLSTATE[42S02]: Base table or view not found: 1146 Table \u0022mosparo.project\u0022 doesn\u0027t exist \u003Cb\u003E \u0026","statusCode":500}`
	bodyNotInstalled = `{"service":"mosparo","healthy":true,"databaseStatus":"test-skipped__not-configured","error":null,"statusCode":200}`
	bodyUpdate       = `{"service":"mosparo","healthy":true,"databaseStatus":"test-skipped__update-not-finished","error":null,"statusCode":200}`
)

func TestJudgeMosparoAnswers(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		trustBypassed bool
		want          State
		reasonHas     string
	}{
		{"connected", 200, bodyConnected, false, Up, "connected"},
		{"database down", 500, bodyFailed, false, Down, `database connection failed: "An exception occurred in driver: SQLSTATE[HY000] [2002] Connection refused"`},
		{"database down, hex-escaped quotes", 500, bodyFailedQuoted, false, Down, `Table \"mosparo.project\" doesn't exist <b> &`},
		{"not installed", 200, bodyNotInstalled, false, Setup, "not installed"},
		{"update not finished", 200, bodyUpdate, false, Draining, "update not finished"},
		{"bypassed, untrusted", 200, bodyBypassed, false, Down, "MOSPARO_BYPASS_HEALTH_CHECK"},
		{"bypassed, trusted", 200, bodyBypassed, true, Up, "trust_bypassed"},
		{"documented spelling of not installed", 200, `{"service":"mosparo","healthy":true,"databaseStatus":"not-configured","error":null}`, false, Setup, "not installed"},
		{"allow list refused (HTML)", 404, "<!DOCTYPE html><html><body>Not Found</body></html>", false, Down, "MOSPARO_HEALTH_ALLOW_LIST"},
		{"allow list refused (JSON)", 404, `{"error":true,"errorMessage":"No route found for \u0022GET http://10.0.0.11/api/v1/health/check\u0022"}`, false, Down, "TRUSTED_PROXIES"},
		{"wrong method", 405, "", false, Down, "405"},
		{"symfony generic 500 page", 500, "<!DOCTYPE html><html><head><title>500 Internal Server Error</title>", false, Down, "HTTP 500 with a body that is not"},
		{"bad gateway from a proxy", 502, "<html>502</html>", false, Down, "HTTP 502"},
		{"redirect", 302, "", false, Down, "HTTP 302"},
		{"204", 204, "", false, Down, "HTTP 204"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := judge(tt.status, []byte(tt.body), tt.trustBypassed)
			if got != tt.want {
				t.Errorf("judge(%d, %s) = %v, want %v (reason %q)", tt.status, tt.body, got, tt.want, reason)
			}
			if !strings.Contains(reason, tt.reasonHas) {
				t.Errorf("reason %q does not contain %q", reason, tt.reasonHas)
			}
		})
	}
}

func TestJudgeHostile(t *testing.T) {
	long := strings.Repeat("x", 100000)
	tests := []struct {
		name   string
		status int
		body   string
		want   State
	}{
		{"empty body", 200, "", Down},
		{"whitespace", 200, "   \n", Down},
		{"null", 200, "null", Down},
		{"array", 200, `[{"service":"mosparo","databaseStatus":"connected","healthy":true}]`, Down},
		{"string", 200, `"connected"`, Down},
		{"truncated", 200, bodyConnected[:40], Down},
		{"missing closing brace", 200, strings.TrimSuffix(bodyConnected, "}"), Down},
		{"trailing garbage", 200, bodyConnected + "x", Down},
		{"second object", 200, bodyConnected + bodyConnected, Down},
		{"duplicate key, connected last", 200, `{"service":"mosparo","healthy":true,"databaseStatus":"connection-failed","databaseStatus":"connected"}`, Down},
		{"case-folded key", 200, `{"service":"mosparo","healthy":true,"DatabaseStatus":"connected"}`, Down},
		{"not mosparo", 200, `{"service":"other","healthy":true,"databaseStatus":"connected"}`, Down},
		{"service missing", 200, `{"healthy":true,"databaseStatus":"connected"}`, Down},
		{"healthy false but connected", 200, `{"service":"mosparo","healthy":false,"databaseStatus":"connected"}`, Down},
		{"healthy missing", 200, `{"service":"mosparo","databaseStatus":"connected"}`, Down},
		{"healthy as string", 200, `{"service":"mosparo","healthy":"true","databaseStatus":"connected"}`, Down},
		{"healthy as 1", 200, `{"service":"mosparo","healthy":1,"databaseStatus":"connected"}`, Down},
		{"databaseStatus as number", 200, `{"service":"mosparo","healthy":true,"databaseStatus":1}`, Down},
		{"databaseStatus null", 200, `{"service":"mosparo","healthy":true,"databaseStatus":null}`, Down},
		{"unknown databaseStatus", 200, `{"service":"mosparo","healthy":true,"databaseStatus":"warp"}`, Down},
		{"connected with a 500", 500, bodyConnected, Down},
		{"update state with a 500", 500, bodyUpdate, Down},
		{"invalid UTF-8", 200, "{\"service\":\"mosparo\xff\",\"healthy\":true,\"databaseStatus\":\"connected\"}", Down},
		{"NUL in status", 200, "{\"service\":\"mosparo\",\"healthy\":true,\"databaseStatus\":\"connected\\u0000\"}", Down},
		{"deep nesting in an unknown key", 200, `{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, Down},
		{"huge error text", 500, `{"service":"mosparo","healthy":false,"databaseStatus":"connection-failed","error":"` + long + `"}`, Down},
		{"control characters in error", 500, `{"service":"mosparo","healthy":false,"databaseStatus":"connection-failed","error":"a\u001b[31mred\nline\r\u0007"}`, Down},
		{"huge key", 200, `{"` + long + `":1}`, Down},
		{"unknown keys are fine", 200, `{"service":"mosparo","healthy":true,"databaseStatus":"connected","extra":{"a":[1,2,{}]},"statusCode":200}`, Up},
		{"key order does not matter", 200, `{"databaseStatus":"connected","healthy":true,"service":"mosparo"}`, Up},
		{"whitespace is fine", 200, " {\n \"service\" : \"mosparo\" ,\"healthy\": true,\"databaseStatus\":\"connected\"}\n", Up},
		{"negative status", -1, bodyConnected, Down},
		{"huge status", 1 << 30, bodyConnected, Down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := judge(tt.status, []byte(tt.body), false)
			if got != tt.want {
				t.Errorf("judge = %v, want %v (reason %q)", got, tt.want, reason)
			}
			checkReason(t, reason)
		})
	}
}

func checkReason(t *testing.T, reason string) {
	t.Helper()
	if reason == "" || len(reason) > maxReasonTotal+len("…") || !utf8.ValidString(reason) {
		t.Errorf("reason is empty, too long (%d) or not UTF-8: %q", len(reason), reason)
	}
	for _, r := range reason {
		if r < ' ' || r == 0x7f {
			t.Errorf("reason contains control character %U: %q", r, reason)
			return
		}
	}
}
