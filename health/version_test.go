package health

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const encoreEntrypoints = `{"entrypoints":{"mosparo":{"js":["/build/mosparo.js"],"css":["/build/mosparo.css"]},` +
	`"mosparo-frontend":{"js":["/build/mosparo-frontend.js"],"css":["/build/mosparo-frontend.css"]}}}`

// assetNode is a scripted node: files by path, with nginx's ETag handling.
type assetNode struct {
	files    map[string]string
	requests atomic.Int64
	// answer, when set, answers instead (hostile cases).
	answer func(w http.ResponseWriter, r *http.Request) bool
}

func (a *assetNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	if a.answer != nil && a.answer(w, r) {
		return
	}
	body, ok := a.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	etag := fmt.Sprintf(`"%08x-%x"`, crc32.ChecksumIEEE([]byte(body)), len(body))
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write([]byte(body))
}

func newAssetNode(t *testing.T, version string) (*assetNode, string) {
	t.Helper()
	a := &assetNode{files: map[string]string{
		"/build/entrypoints.json":     encoreEntrypoints,
		"/build/mosparo.js":           "/*" + version + "*/admin",
		"/build/mosparo.css":          "/*" + version + "*/.page{}",
		"/build/mosparo-frontend.js":  "/*" + version + "*/frontend",
		"/build/mosparo-frontend.css": "/*" + version + "*/.mosparo{}",
	}}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, strings.TrimPrefix(srv.URL, "http://")
}

func fingerprintOf(t *testing.T, addr string, prev *versionRecord, timeout time.Duration) *versionRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return takeFingerprint(ctx, HTTPClient{}, addr, "", prev, time.Unix(1, 0))
}

func TestFingerprintTellsVersionsApart(t *testing.T) {
	a1, addr1 := newAssetNode(t, "1.5.4")
	_, addr2 := newAssetNode(t, "1.5.4")
	_, addr3 := newAssetNode(t, "1.6.0")
	r1 := fingerprintOf(t, addr1, nil, 5*time.Second)
	r2 := fingerprintOf(t, addr2, nil, 5*time.Second)
	r3 := fingerprintOf(t, addr3, nil, 5*time.Second)
	for _, r := range []*versionRecord{r1, r2, r3} {
		if r.err != "" || r.fp.IsZero() {
			t.Fatalf("fingerprint failed: %q", r.err)
		}
	}
	if r1.fp != r2.fp || r1.fp == r3.fp {
		t.Errorf("fingerprints %s, %s (same version), %s (other): want equal, then different", r1.fp, r2.fp, r3.fp)
	}
	if got := len(r1.paths); got != 4 {
		t.Errorf("paths = %v, want the 4 entry files", r1.paths)
	}

	// Again with the validators: every file answers 304 and the
	// fingerprint stands.
	before := a1.requests.Load()
	again := fingerprintOf(t, addr1, r1, 5*time.Second)
	if again.fp != r1.fp || again.err != "" {
		t.Errorf("conditional fingerprint = %s %q, want %s", again.fp, again.err, r1.fp)
	}
	if n := a1.requests.Load() - before; n != 5 {
		t.Errorf("conditional fingerprint sent %d requests, want 5", n)
	}
	// A file replaced under the same name changes the fingerprint.
	a1.files["/build/mosparo.js"] = "/*1.5.5*/admin"
	if changed := fingerprintOf(t, addr1, r1, 5*time.Second); changed.fp == r1.fp || changed.fp.IsZero() {
		t.Errorf("fingerprint after mosparo.js changed = %s, want a new one", changed.fp)
	}
}

// TestFingerprintHostileNode: whatever a node answers, the fingerprint is
// unknown with a reason, within the timeout, and never a panic.
func TestFingerprintHostileNode(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	tests := []struct {
		name      string
		answer    func(w http.ResponseWriter, r *http.Request) bool
		reasonHas string
	}{
		{"entrypoints 404 (no Encore build)", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == entrypointsPath {
				http.NotFound(w, r)
				return true
			}
			return false
		}, "404"},
		{"redirect to finalize (draining node, missing file)", func(w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, "/administration/update/finalize", http.StatusFound)
			return true
		}, `302 to "/administration/update/finalize"`},
		{"malformed JSON", func(w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte(`{"entrypoints":{"mosparo":{"js":["/build/mosparo.js"`))
			return true
		}, "not a Webpack Encore entrypoints.json"},
		{"wrong JSON shape", func(w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte(`{"entrypoints":["/build/mosparo.js"]}`))
			return true
		}, "not a Webpack Encore entrypoints.json"},
		{"no files", func(w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte(`{"entrypoints":{}}`))
			return true
		}, "names no file"},
		{"another host's file", func(w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte(`{"entrypoints":{"x":{"js":["https://cdn.example/x.js"]}}}`))
			return true
		}, "not a plain path under /build/"},
		{"path traversal", func(w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte(`{"entrypoints":{"x":{"js":["/build/../../etc/passwd"]}}}`))
			return true
		}, "not a plain path"},
		{"too many files", func(w http.ResponseWriter, r *http.Request) bool {
			var b strings.Builder
			b.WriteString(`{"entrypoints":{"x":{"js":[`)
			for i := range 40 {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`"/build/f` + strings.Repeat("a", i+1) + `.js"`)
			}
			b.WriteString(`]}}}`)
			_, _ = w.Write([]byte(b.String()))
			return true
		}, "at most 32"},
		{"huge entrypoints.json", func(w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte(`{"entrypoints":{"x":{"js":["` + strings.Repeat("a", 2*maxEntrypoints) + `"]}}}`))
			return true
		}, "body size exceeds"},
		{"huge asset", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/build/mosparo.js" {
				w.Header().Set("Content-Length", "99999999999")
				_, _ = w.Write(make([]byte, 1<<16))
				return true
			}
			return false
		}, "/build/mosparo.js"},
		{"slow asset", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/build/mosparo.css" {
				select {
				case <-hang:
				case <-r.Context().Done():
				}
				return true
			}
			return false
		}, "deadline exceeded"},
		{"304 to an unconditional request", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/build/mosparo-frontend.css" {
				w.WriteHeader(http.StatusNotModified)
				return true
			}
			return false
		}, "status 304"},
		{"server error", func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}, "status 500"},
		{"hostile ETag is not sent back", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Header.Get("If-None-Match") != "" {
				w.WriteHeader(http.StatusTeapot) // never reached: the validator was refused
				return true
			}
			w.Header().Set("ETag", strings.Repeat("e", 300))
			body := "file " + r.URL.Path
			if r.URL.Path == entrypointsPath {
				body = encoreEntrypoints
			}
			_, _ = w.Write([]byte(body))
			return true
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, addr := newAssetNode(t, "1.5.4")
			a.answer = tt.answer
			start := time.Now()
			r := fingerprintOf(t, addr, nil, 500*time.Millisecond)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("fingerprint took %v with a 500ms timeout", el)
			}
			if tt.reasonHas == "" {
				// A good fingerprint, taken twice without validators.
				if r.err != "" || r.fp.IsZero() {
					t.Fatalf("fingerprint = %s %q", r.fp, r.err)
				}
				if r2 := fingerprintOf(t, addr, r, time.Second); r2.fp != r.fp {
					t.Errorf("second fingerprint = %s %q, want %s", r2.fp, r2.err, r.fp)
				}
				return
			}
			if !r.fp.IsZero() || !strings.Contains(r.err, tt.reasonHas) {
				t.Errorf("fingerprint = %s, reason %q; want unknown, reason containing %q", r.fp, r.err, tt.reasonHas)
			}
			checkReason(t, r.err)
		})
	}
}

func TestParseEntrypoints(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // paths joined by ","
		wantErr    error
	}{
		{"Encore 4, two entries", encoreEntrypoints, "/build/mosparo-frontend.css,/build/mosparo-frontend.js,/build/mosparo.css,/build/mosparo.js", nil},
		{"versioned names", `{"entrypoints":{"a":{"js":["/build/runtime.1a2b3c4d.js","/build/a.5e6f.js"]}},"integrity":{}}`, "/build/a.5e6f.js,/build/runtime.1a2b3c4d.js", nil},
		{"repeated file", `{"entrypoints":{"a":{"js":["/build/r.js"]},"b":{"js":["/build/r.js"]}}}`, "/build/r.js", nil},
		{"query string", `{"entrypoints":{"a":{"js":["/build/a.js?v=1"]}}}`, "", ErrEntrypoints},
		{"empty segment", `{"entrypoints":{"a":{"js":["/build//a.js"]}}}`, "", ErrEntrypoints},
		{"dot segment", `{"entrypoints":{"a":{"js":["/build/./a.js"]}}}`, "", ErrEntrypoints},
		{"encoded traversal", `{"entrypoints":{"a":{"js":["/build/%2e%2e/a.js"]}}}`, "", ErrEntrypoints},
		{"NUL", `{"entrypoints":{"a":{"js":["/build/a\u0000.js"]}}}`, "", ErrEntrypoints},
		{"not JSON", `<!DOCTYPE html><title>Redirecting</title>`, "", ErrEntrypoints},
		{"null", `null`, "", ErrEntrypoints},
		{"deep nesting", strings.Repeat("[", 20000), "", ErrEntrypoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEntrypoints([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) || strings.Join(got, ",") != tt.want {
				t.Errorf("parseEntrypoints = %v, %v; want %s, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestFingerprintEmulatedMosparo fingerprints the emulator, whose build
// follows mosparo's Encore layout: equal for one release, different for
// another, equal again for a release that shares its front-end build.
func TestFingerprintEmulatedMosparo(t *testing.T) {
	var nodes [3]*mosparoemu.Node
	for i := range nodes {
		n, err := mosparoemu.Start(mosparoemu.Options{Name: "n" + string(rune('1'+i))})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		nodes[i] = n
	}
	nodes[1].SetVersion("1.6.0")
	nodes[2].SetVersionAssets("1.5.3", mosparoemu.DefaultVersion)
	nodes[2].SetHealth(mosparoemu.UpdateNotFinished) // static files are served while draining
	var fps [3]Fingerprint
	for i, n := range nodes {
		r := fingerprintOf(t, n.Addr(), nil, 5*time.Second)
		if r.err != "" {
			t.Fatalf("%s: %s", n.Name(), r.err)
		}
		fps[i] = r.fp
	}
	if fps[0] == fps[1] || fps[0] != fps[2] {
		t.Errorf("fingerprints 1.5.4 %s, 1.6.0 %s, 1.5.3 with 1.5.4's build %s", fps[0], fps[1], fps[2])
	}
}

// TestCheckerFollowsVersions runs the checker against emulated nodes: the
// fingerprint is in the snapshot, new code on one node (which turns it
// draining) is seen at that check, the mixed versions are logged once, and
// syncing the code back ends the warning.
func TestCheckerFollowsVersions(t *testing.T) {
	var nodes [3]*mosparoemu.Node
	db := mosparoemu.NewDatabase()
	var targets []Target
	for i := range nodes {
		n, err := mosparoemu.Start(mosparoemu.Options{Name: fmt.Sprintf("n%d", i+1), Database: db})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		nodes[i] = n
		targets = append(targets, Target{Name: n.Name(), Address: n.Addr()})
	}
	core, logs := observer.New(zap.InfoLevel)
	d := func(ms int) configs.Duration { return configs.Duration(time.Duration(ms) * time.Millisecond) }
	jit, slow, every := d(0), d(0), 1000 // only state changes and the first check fingerprint
	c := newChecker(t, configs.Health{Interval: d(100), FastInterval: d(30), DownInterval: d(100), Timeout: d(90),
		Rise: 1, Fall: 1, Jitter: &jit, SlowStart: &slow, Version: configs.VersionCheck{Every: &every}},
		Options{Logger: zap.New(core)})
	setTargets(t, c, targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, ok func([]NodeStatus) bool) []NodeStatus {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s := c.Snapshot()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 15s: %+v", what, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	s := waitFor("fingerprints", func(s []NodeStatus) bool {
		return !s[0].Version.IsZero() && !s[1].Version.IsZero() && !s[2].Version.IsZero()
	})
	if s[0].Version != s[1].Version || s[1].Version != s[2].Version || s[0].VersionChecked.IsZero() {
		t.Fatalf("one release, fingerprints %s %s %s", s[0].Version, s[1].Version, s[2].Version)
	}
	old := s[0].Version
	if v := c.Versions(); v.Mixed || len(v.Nodes[old.String()]) != 3 {
		t.Errorf("Versions() = %+v, want three nodes on %s", v, old)
	}
	if got := c.Node(nodes[0].Addr()).Version(); got != old {
		t.Errorf("Node.Version() = %s, want %s", got, old)
	}

	nodes[1].SetVersion("1.6.0") // the UI update unpacked a new release on n2
	s = waitFor("n2's new fingerprint", func(s []NodeStatus) bool { return s[1].Version != old && !s[1].Version.IsZero() })
	if s[1].State != Draining {
		t.Errorf("n2 state %v, want draining (the fingerprint is taken with the check that sees it)", s[1].State)
	}
	if v := c.Versions(); !v.Mixed || len(v.Nodes[s[1].Version.String()]) != 1 {
		t.Errorf("Versions() = %+v, want mixed with n2 alone", v)
	}
	nodes[1].SetVersion(mosparoemu.DefaultVersion) // the operator put the old code back
	waitFor("n2's old fingerprint", func(s []NodeStatus) bool { return s[1].Version == old })
	if got := logs.FilterMessage("nodes run different mosparo code versions: sync the source code onto every node").Len(); got != 1 {
		t.Errorf("mixed versions logged %d times, want 1", got)
	}
	if got := logs.FilterMessage("nodes run one mosparo code version again").Len(); got != 1 {
		t.Errorf("one version again logged %d times, want 1", got)
	}
}

// TestSlowFingerprintDoesNotDelayChecks: a node that never finishes
// sending a built file keeps being checked at its interval; the
// fingerprint fails at health.version.timeout with a reason.
func TestSlowFingerprintDoesNotDelayChecks(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	a, addr := newAssetNode(t, "1.5.4")
	a.answer = func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case configs.DefaultHealthPath:
			_, _ = w.Write([]byte(bodyConnected))
			return true
		case "/build/mosparo.js":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return true
		}
		return false
	}
	d := func(ms int) configs.Duration { return configs.Duration(time.Duration(ms) * time.Millisecond) }
	jit, slow, every := d(0), d(0), 1
	c := newChecker(t, configs.Health{Interval: d(100), FastInterval: d(30), DownInterval: d(100), Timeout: d(90),
		Rise: 1, Fall: 1, Jitter: &jit, SlowStart: &slow,
		Version: configs.VersionCheck{Every: &every, Timeout: d(1500)}}, Options{})
	setTargets(t, c, []Target{{Name: "a", Address: addr}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(15 * time.Second)
	var s NodeStatus
	for time.Now().Before(deadline) {
		s = c.Snapshot()[0]
		if s.VersionError != "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(s.VersionError, "/build/mosparo.js") || !s.Version.IsZero() {
		t.Fatalf("version %s, error %q; want unknown, failed on /build/mosparo.js", s.Version, s.VersionError)
	}
	// 1.5s of fingerprint: checks every 100ms went on meanwhile.
	if s.ConsecutiveOK < 5 {
		t.Errorf("%d checks during a 1.5s fingerprint, want them to go on at the interval", s.ConsecutiveOK)
	}
}
