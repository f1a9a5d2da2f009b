package balancer

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logSink is what an access log writes to, read by the test while the
// server writes.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the complete lines written so far and forgets them.
func (s *logSink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.SplitAfter(s.b.String(), "\n")
	s.b.Reset()
	if last := out[len(out)-1]; last == "" {
		out = out[:len(out)-1]
	}
	return out
}

// accessLogger is the access log as internal/daemon builds it for format
// ("json" or "console"), writing to sink at level.
func accessLogger(format string, sink *logSink, level zapcore.Level) *zap.Logger {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(sink), level)).Named("access")
}

// startLoggedLB is an LB over node whose runtime writes its access log in
// format to the returned sink. The runtime is swapped in before any
// request, so the server reads it through the same pointer it always does.
func startLoggedLB(t *testing.T, yaml, format string, level zapcore.Level, nodes []NodeSpec) (*Server, string, *logSink) {
	t.Helper()
	cfg := testConfig(t, yaml)
	srv, addr := startLB(t, cfg, nodes)
	sink := &logSink{}
	rt, err := NewRuntime(cfg, nodes, Deps{AccessLog: accessLogger(format, sink, level)})
	if err != nil {
		t.Fatal(err)
	}
	swapRuntime(t, srv, rt)
	return srv, addr, sink
}

// accessFields decodes the fields of one access log line: the whole line
// in JSON, the object after the message in console format.
func accessFields(t *testing.T, format, line string) map[string]any {
	t.Helper()
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("access log line %q is not one line", line)
	}
	if !utf8.ValidString(line) {
		t.Errorf("access log line %q is not UTF-8", line)
	}
	obj := line
	if format == "console" {
		// time, level, logger name and message, tab-separated, then the
		// fields as one JSON object.
		parts := strings.SplitN(line, "\t", 5)
		if len(parts) != 5 || parts[2] != "access" || parts[3] != "request" {
			t.Fatalf("console line %q: want time, level, access, request, fields", line)
		}
		obj = parts[4]
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(obj), &f); err != nil {
		t.Fatalf("access log line %q: %v", line, err)
	}
	if format == "json" && (f["msg"] != "request" || f["logger"] != "access" || f["level"] != "info") {
		t.Errorf("access log line %q: want msg request, logger access, level info", line)
	}
	return f
}

// One line per request with route class, node, status, duration, retries,
// client, method, path and protocol, in both formats the daemon writes.
func TestAccessLogFields(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			n := startEcho(t, "n1")
			_, addr, sink := startLoggedLB(t, baseYAML+"edge: {allow_cron_from: [10.0.0.0/8]}\n", format, zapcore.InfoLevel, nodesOf(n))
			for _, tc := range []struct {
				name, raw string
				want      map[string]any
			}{
				{"admin page", "GET /login?next=/x HTTP/1.1\r\nHost: a\r\n\r\n",
					map[string]any{"route": "admin", "node": "n1", "status": 200.0, "retries": 0.0, "client": "127.0.0.1", "method": "GET", "path": "/login", "proto": "h1"}},
				{"frontend call", "POST /api/v1/frontend/check-form-data HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\na=b",
					map[string]any{"route": "frontend", "node": "n1", "status": 200.0, "method": "POST", "path": "/api/v1/frontend/check-form-data"}},
				// Answered by the LB itself: no node.
				{"guarded", "GET /cron-jobs/execute HTTP/1.1\r\nHost: a\r\n\r\n",
					map[string]any{"node": "-", "status": 403.0, "path": "/cron-jobs/execute"}},
				// The client is the peer; a header from an untrusted peer
				// does not change it.
				{"spoofed client", "GET /login HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n\r\n",
					map[string]any{"client": "127.0.0.1"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					doRaw(t, addr, tc.raw)
					lines := sink.lines()
					if len(lines) != 1 {
						t.Fatalf("%d access log lines for one request: %q", len(lines), lines)
					}
					f := accessFields(t, format, lines[0])
					for k, v := range tc.want {
						if f[k] != v {
							t.Errorf("%s = %v, want %v", k, f[k], v)
						}
					}
					if d, ok := f["duration"].(float64); !ok || d < 0 {
						t.Errorf("duration = %v, want seconds", f["duration"])
					}
				})
			}
		})
	}
}

// A client cannot forge or break access log lines: whatever bytes its
// method and path carry (decoded from percent escapes, so any byte value),
// each request is one line whose path field holds what was asked
// for, escaped, and nothing outside that field.
func TestAccessLogHostileRequests(t *testing.T) {
	forged := `{"level":"info","logger":"access","msg":"request","route":"api","node":"n1","status":200}`
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			n := startEcho(t, "n1")
			_, addr, sink := startLoggedLB(t, baseYAML+"limits: {max_header_bytes: 65536}\n", format, zapcore.InfoLevel, nodesOf(n))
			for _, tc := range []struct {
				name, target string
				path         string // the path field
			}{
				{"newline and a forged line", "/a%0A" + escapeAll(forged) + "%0D%0A", "/a\n" + forged + "\r\n"},
				{"carriage return", "/a%0Dfake", "/a\rfake"},
				{"quotes and backslashes", `/a%22%5C%22b%5C`, `/a"\"b\`},
				{"tab (the console field separator)", "/a%09INFO%09access%09request%09{}", "/a\tINFO\taccess\trequest\t{}"},
				{"NUL and escape sequences", "/a%00%1b[2J%1b]0;title%07", "/a\x00\x1b[2J\x1b]0;title\x07"},
				{"DEL and C1 controls", "/a%7f%c2%85%c2%9b", "/a\x7f\u0085\u009b"},
				{"line and paragraph separators", "/a%e2%80%a8%e2%80%a9", "/a\u2028\u2029"},
				// Each invalid byte becomes U+FFFD: the line stays UTF-8.
				{"invalid UTF-8", "/a%ff%fe%c0%af", "/a\ufffd\ufffd\ufffd\ufffd"},
				{"raw invalid UTF-8", "/a\xff\xfe", "/a\ufffd\ufffd"},
				{"very long path", "/" + strings.Repeat("%0A", 10000), "/" + strings.Repeat("\n", 10000)},
			} {
				t.Run(tc.name, func(t *testing.T) {
					doRaw(t, addr, "GET "+tc.target+" HTTP/1.1\r\nHost: a\r\n\r\n")
					lines := sink.lines()
					if len(lines) != 1 {
						t.Fatalf("one request wrote %d access log lines: %q", len(lines), lines)
					}
					f := accessFields(t, format, lines[0])
					if f["path"] != tc.path {
						t.Errorf("path = %q, want %q", f["path"], tc.path)
					}
					if f["client"] != "127.0.0.1" || f["method"] != "GET" {
						t.Errorf("client, method = %v, %v; want 127.0.0.1, GET", f["client"], f["method"])
					}
				})
			}
			// Methods are tokens or refused; either way at most one line.
			for _, m := range []string{"GET\x00", "G\"ET", "GET\x1b[2J", "\xffGET", strings.Repeat("M", 5000)} {
				doRaw(t, addr, m+" /login HTTP/1.1\r\nHost: a\r\n\r\n")
				lines := sink.lines()
				if len(lines) > 1 {
					t.Fatalf("method %.20q wrote %d lines: %q", m, len(lines), lines)
				}
				if len(lines) == 1 {
					if f := accessFields(t, format, lines[0]); f["method"] != m && f["method"] != strings.ToValidUTF8(m, "\ufffd") {
						t.Errorf("method = %q, want %q", f["method"], m)
					}
				}
			}
		})
	}
}

// escapeAll percent-encodes every byte of s.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString("%")
		b.WriteString(strings.ToUpper(string("0123456789abcdef"[s[i]>>4]) + string("0123456789abcdef"[s[i]&15])))
	}
	return b.String()
}

// h2 requests are logged as such.
func TestAccessLogHTTP2(t *testing.T) {
	n := startEcho(t, "n1")
	_, addr, sink := startLoggedLB(t, h2YAML(t, "", ""), "json", zapcore.InfoLevel, nodesOf(n))
	resp, err := h2Client().Get("https://" + addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	lines := sink.lines()
	if len(lines) != 1 {
		t.Fatalf("%d access log lines for one request: %q", len(lines), lines)
	}
	if f := accessFields(t, "json", lines[0]); f["proto"] != "h2" || f["status"] != 200.0 || f["node"] != "n1" {
		t.Errorf("proto, status, node = %v, %v, %v; want h2, 200, n1", f["proto"], f["status"], f["node"])
	}
}

// Off (no logger, as log.access_log: false builds it) and a logger whose
// level drops info write nothing and still serve.
func TestAccessLogOff(t *testing.T) {
	n := startEcho(t, "n1")
	_, addr, sink := startLoggedLB(t, baseYAML, "json", zapcore.WarnLevel, nodesOf(n))
	if code, _, err := fasthttp.Get(nil, "http://"+addr+"/login"); err != nil || code != 200 {
		t.Fatalf("GET = %d, %v; want 200", code, err)
	}
	if lines := sink.lines(); len(lines) != 0 {
		t.Errorf("a warn-level access log wrote %q", lines)
	}
	_, addr = startLB(t, testConfig(t, baseYAML), nodesOf(n))
	if code, _, err := fasthttp.Get(nil, "http://"+addr+"/login"); err != nil || code != 200 {
		t.Errorf("GET without an access log = %d, %v; want 200", code, err)
	}
}
