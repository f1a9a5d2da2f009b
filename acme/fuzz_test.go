package acme

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzChallengeRequest: what a client puts in a challenge request's path and
// Host never panics, and what passes is exactly the safe alphabet.
func FuzzChallengeRequest(f *testing.F) {
	f.Add([]byte(ChallengePrefix+"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"), []byte("lb.mosparo.test:80"))
	f.Add([]byte(ChallengePrefix+"../x"), []byte("../x"))
	f.Add([]byte(ChallengePrefix), []byte(":"))
	f.Add([]byte("/"), []byte("[::1]:80"))
	f.Fuzz(func(t *testing.T, path, host []byte) {
		if tok, ok := challengeToken(path); ok {
			if len(tok) == 0 || len(tok) > maxTokenLen || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
				t.Errorf("challengeToken(%q) passed %q", path, tok)
			}
			if !bytes.HasSuffix(path, []byte(tok)) {
				t.Errorf("token %q is not the path's tail %q", tok, path)
			}
		}
		if h, ok := challengeHost(host); ok {
			if h == "" || len(h) > 253 || strings.Contains(h, "..") || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
				t.Errorf("challengeHost(%q) passed %q", host, h)
			}
		}
	})
}
