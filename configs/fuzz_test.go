package configs

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it must return a config or
// a *Error, never panic or hang.
func FuzzParse(f *testing.F) {
	f.Add(Demo())
	f.Add(Reference())
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("x: &a [*a]\n"))                      // self-referencing alias
	f.Add([]byte("a: &a [*a,*a,*a,*a,*a,*a,*a,*a]\n")) // alias blow-up
	f.Add([]byte("nodes: [{name: n, address: \"${X:-10.0.0.1:80}\", weight: 1e9}]\n"))
	f.Add([]byte("timeouts: {connect: 9999999999h}\n"))
	f.Add([]byte("balancing: {pools: {admin: [[a]]}}\n"))
	f.Add([]byte("\xff\xfe\x00"))
	// Issue 11, item 13: expansion into typed keys, values holding "${".
	f.Add([]byte("limits: {max_body_bytes: \"${N}\"}\nlog: {access_log: \"${B:-true}\"}\n"))
	f.Add([]byte("admin: {token: \"${Y}$${Y}${X}\"}\nhealth:\n  interval: ${D:-300ms}\n"))
	f.Add([]byte("cron: {standalone: '${Y}'}\nnodes: [{name: n, address: \"${X}:80\", weight: \"${N}${N}\"}]\n"))
	f.Add([]byte("admin: {token: \"${\"}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env := func(k string) (string, bool) {
			switch k {
			case "X":
				return "v", true
			case "Y":
				return "${X}", true
			case "N":
				return "2048", true
			}
			return "", false
		}
		c, err := Parse("fuzz.yaml", b, env)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T (%v) is not a *configs.Error", err, err)
			}
			return
		}
		if c == nil || len(c.Listen) == 0 || c.Balancing.Retries == nil {
			t.Fatal("accepted config without defaults")
		}
	})
}
