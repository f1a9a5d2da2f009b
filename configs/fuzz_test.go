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
	f.Fuzz(func(t *testing.T, b []byte) {
		env := func(k string) (string, bool) { return "v", k == "X" }
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
