package cssproxy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/contentcoding"
)

func TestNewEntry(t *testing.T) {
	id, _ := parseProjectID([]byte(tid))
	now := time.Unix(100, 0)
	css := testCSS(tid, 4096)
	e, err := newEntry(id, css, []byte(thash), now)
	if err != nil {
		t.Fatal(err)
	}
	if e.packed || e.offered != 0 {
		t.Error("newEntry compressed; that is withForms' work")
	}
	e = e.withForms()
	if want := "/resources/" + tid + "/" + thash + ".css"; string(e.location) != want {
		t.Errorf("location = %q, want %q", e.location, want)
	}
	for _, c := range []contentcoding.Coding{contentcoding.Gzip, contentcoding.Brotli} {
		form, tag := e.coded[c], e.codedTag[c]
		if form == nil || len(form) >= len(css) || !e.offered.Has(c) {
			t.Errorf("%s = %d bytes for %d of CSS, want smaller", c, len(form), len(css))
		}
		if want, _ := contentcoding.AppendVariant(nil, e.etag, c); !bytes.Equal(tag, want) || bytes.Equal(tag, e.etag) {
			t.Errorf("%s etag %q, want %q", c, tag, want)
		}
	}
	if !bytes.HasPrefix(e.etag, []byte(`"`)) || bytes.Equal(e.codedTag[contentcoding.Gzip], e.codedTag[contentcoding.Brotli]) {
		t.Errorf("etags %q %q", e.etag, e.codedTag)
	}
	// Every stored form counts against css_cache.max_bytes.
	if extra := len(e.coded[contentcoding.Gzip]) + len(e.coded[contentcoding.Brotli]); e.size < len(css)+extra {
		t.Errorf("size %d does not count body and both forms (%d)", e.size, len(css)+extra)
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

// TestNewEntryLargeCSS: CSS above bestLevelBytes still gets both forms
// (at cheaper levels), and they decode to it.
func TestNewEntryLargeCSS(t *testing.T) {
	id, _ := parseProjectID([]byte(tid))
	css := testCSS(tid, bestLevelBytes+4096)
	e, err := newEntry(id, css, []byte(thash), time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	e = e.withForms()
	for _, c := range []contentcoding.Coding{contentcoding.Gzip, contentcoding.Brotli} {
		if got := decodeBody(t, c.String(), e.coded[c]); !bytes.Equal(got, css) {
			t.Errorf("%s form decodes to %d bytes, want the %d of CSS", c, len(got), len(css))
		}
	}
}
