package discovery

import (
	"net"
	"strconv"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// FuzzParseHealth: whatever an agent (or something posing as one) sends,
// parseHealth does not panic and every instance it keeps is a usable node.
func FuzzParseHealth(f *testing.F) {
	f.Add([]byte("[" + goodEntry + "]"))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[null,1,"x",{}]`))
	f.Add([]byte(`[{"Service":{"ID":"a","Address":"fd00::1","Port":65535}}]`))
	f.Add([]byte(`[{"Service":{"ID":"a","Address":"10.0.0.1","Port":1e30}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		insts, _, err := parseHealth(b)
		if err != nil {
			return
		}
		for _, in := range insts {
			if in.ID == "" || in.Port < 1 || in.Port > 65535 || !validHost(in.Address) {
				t.Fatalf("kept an unusable instance %+v", in)
			}
			if _, _, err := net.SplitHostPort(net.JoinHostPort(in.Address, strconv.Itoa(in.Port))); err != nil {
				t.Fatalf("instance %+v gives a bad address: %v", in, err)
			}
			if w := in.weight(); w < 1 || w > configs.MaxNodeWeight {
				t.Fatalf("weight %d out of range for %+v", w, in)
			}
		}
	})
}
