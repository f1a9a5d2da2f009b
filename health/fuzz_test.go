package health

import (
	"strings"
	"testing"
)

// FuzzJudge: whatever a node answers, judge does not panic, returns one of
// the four verdicts and a short, printable reason.
func FuzzJudge(f *testing.F) {
	for _, b := range []string{bodyBypassed, bodyConnected, bodyFailed, bodyFailedQuoted, bodyNotInstalled, bodyUpdate} {
		f.Add(200, []byte(b), false)
		f.Add(500, []byte(b), true)
	}
	f.Add(404, []byte(`{"error":true,"errorMessage":"x"}`), false)
	f.Add(200, []byte(`{"service":"mosparo","service":"mosparo"}`), false) // duplicate key
	f.Add(200, []byte(`{"x":[[[[[[[[[[]]]]]]]]]]}`), false)
	f.Add(200, []byte("{\"service\":\"\xff\"}"), false)
	f.Fuzz(func(t *testing.T, status int, body []byte, trust bool) {
		v, reason := judge(status, body, trust)
		switch v {
		case Up, Down, Draining, Setup:
		default:
			t.Fatalf("judge returned %v", v)
		}
		if v == Up && status != 200 {
			t.Fatalf("judge(%d) = up", status)
		}
		checkReason(t, reason)
	})
}

// FuzzParseEntrypoints: whatever entrypoints.json a node serves, the
// parser does not panic, and every path it returns is a bounded plain path
// under /build/, each once, sorted.
func FuzzParseEntrypoints(f *testing.F) {
	f.Add([]byte(encoreEntrypoints))
	f.Add([]byte(`{"entrypoints":{"a":{"js":["/build/runtime.1a2b3c4d.js"]}},"integrity":{"/build/a.js":"sha384-x"}}`))
	f.Add([]byte(`{"entrypoints":{"a":{"js":["/build/../x"]}}}`))
	// Crasher: a name ending in ".." passed the segment check.
	f.Add([]byte(`{"entrYpoints":{"0000":{"":["/build/00.."]}}}`))
	f.Add([]byte(`{"entrypoints":{"a":{"js":[null,1]}}}`))
	f.Add([]byte(`{"entrypoints":null}`))
	f.Add([]byte("{\"entrypoints\":{\"a\":{\"js\":[\"/build/\xff\"]}}}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		paths, err := parseEntrypoints(body)
		if err != nil {
			if paths != nil {
				t.Fatalf("paths %v with error %v", paths, err)
			}
			return
		}
		if len(paths) == 0 || len(paths) > maxAssetFiles {
			t.Fatalf("%d paths", len(paths))
		}
		for i, p := range paths {
			if !validAssetPath(p) || strings.Contains(p, "..") || strings.Contains(p, "//") {
				t.Fatalf("path %q accepted", p)
			}
			if i > 0 && paths[i-1] >= p {
				t.Fatalf("paths not sorted and unique: %v", paths)
			}
		}
	})
}
