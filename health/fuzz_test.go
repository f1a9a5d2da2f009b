package health

import "testing"

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
