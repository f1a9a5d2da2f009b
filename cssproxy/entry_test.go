package cssproxy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewEntry(t *testing.T) {
	id, _ := parseProjectID([]byte(tid))
	now := time.Unix(100, 0)
	css := testCSS(tid, 4096)
	e, err := newEntry(id, css, []byte(thash), now)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/resources/" + tid + "/" + thash + ".css"; string(e.location) != want {
		t.Errorf("location = %q, want %q", e.location, want)
	}
	if e.gzip == nil || len(e.gzip) >= len(css) {
		t.Errorf("gzip = %d bytes for %d of CSS, want smaller", len(e.gzip), len(css))
	}
	if !bytes.HasPrefix(e.etag, []byte(`"`)) || !bytes.HasSuffix(e.etagGzip, []byte(`-gz"`)) || bytes.Equal(e.etag, e.etagGzip) {
		t.Errorf("etags %q %q", e.etag, e.etagGzip)
	}
	if e.size < len(css)+len(e.gzip) {
		t.Errorf("size %d does not count body and gzip (%d)", e.size, len(css)+len(e.gzip))
	}
	other, _ := newEntry(id, append(bytes.Clone(css[:len(css)-1]), 'x'), []byte(thash), now)
	if bytes.Equal(e.etag, other.etag) {
		t.Error("different CSS, same ETag")
	}
}

func TestNewEntryRejectsUnsafeHash(t *testing.T) {
	id, _ := parseProjectID([]byte(tid))
	for _, h := range []string{"", strings.Repeat("a", maxHashLen+1), "ab/cd", "ab cd", "ab\r\nX: y", "ab%2F", "ab\"cd"} {
		if _, err := newEntry(id, []byte(".a{}"), []byte(h), time.Time{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("newEntry(hash %q) err = %v, want ErrCorrupt", h, err)
		}
	}
}
