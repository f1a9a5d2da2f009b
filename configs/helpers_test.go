package configs

import (
	"errors"
	"strings"
	"testing"
)

// noEnv is an environment where no variable is set.
func noEnv(string) (string, bool) { return "", false }

func wantProblem(t *testing.T, err error, path, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse error = %v, want a problem at %s", err, path)
	}
	for _, p := range e.Problems {
		if p.Path == path && strings.Contains(p.Msg, msg) {
			return
		}
	}
	t.Errorf("no problem at %s containing %q in:\n%v", path, msg, err)
}
