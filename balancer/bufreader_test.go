package balancer

import (
	"bufio"
	"encoding/json"
	"io"
)

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func decode(t interface {
	Helper()
	Fatalf(string, ...any)
}, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
}
