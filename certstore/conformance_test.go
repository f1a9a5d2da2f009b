package certstore

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// The same contract table runs against certmagic's own FileStorage (the
// reference) and the Consul storage on the fake and the real agent.
func TestConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			mk := b.open(t)
			for _, tt := range conformance {
				t.Run(tt.name, func(t *testing.T) {
					// Each case works below a folder of its own.
					tt.run(t, mk(), "case-"+sanitize(tt.name))
				})
			}
		})
	}
}

func sanitize(s string) string { return certmagic.StorageKeys.Safe(s) }

var conformance = []struct {
	name string
	run  func(t *testing.T, s certmagic.Storage, dir string)
}{
	{"load missing", func(t *testing.T, s certmagic.Storage, dir string) {
		if _, err := s.Load(t.Context(), dir+"/missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
		}
	}},
	{"store load overwrite", func(t *testing.T, s certmagic.Storage, dir string) {
		ctx := t.Context()
		for _, v := range []string{"one", "two, longer", ""} {
			mustStore(t, s, dir+"/a/b.crt", v)
			got, err := s.Load(ctx, dir+"/a/b.crt")
			if err != nil || string(got) != v {
				t.Errorf("Load = %q, %v, want %q", got, err, v)
			}
		}
	}},
	{"odd characters", func(t *testing.T, s certmagic.Storage, dir string) {
		ctx := t.Context()
		keys := []string{dir + "/a b/ü+100%", dir + "/wildcard_.example.com/wildcard_.example.com.key", dir + "/users/ops@example.com/x.json", dir + "/..a/b.."}
		for _, k := range keys {
			mustStore(t, s, k, k)
		}
		for _, k := range keys {
			if got, err := s.Load(ctx, k); err != nil || string(got) != k {
				t.Errorf("Load(%q) = %q, %v", k, got, err)
			}
		}
		list, err := s.List(ctx, dir, true)
		want := []string{dir + "/..a", dir + "/..a/b..", dir + "/a b", dir + "/a b/ü+100%", dir + "/users", dir + "/users/ops@example.com", dir + "/users/ops@example.com/x.json",
			dir + "/wildcard_.example.com", dir + "/wildcard_.example.com/wildcard_.example.com.key"}
		if slices.Sort(list); err != nil || !slices.Equal(list, want) {
			t.Errorf("List(recursive) = %q, %v, want %q", list, err, want)
		}
	}},
	{"stat", func(t *testing.T, s certmagic.Storage, dir string) {
		ctx := t.Context()
		before := time.Now().Add(-time.Minute) // file systems round times
		mustStore(t, s, dir+"/site/site.crt", "12345")
		info, err := s.Stat(ctx, dir+"/site/site.crt")
		if err != nil || info.Key != dir+"/site/site.crt" || !info.IsTerminal || info.Size != 5 || info.Modified.Before(before) {
			t.Errorf("Stat(file) = %+v, %v", info, err)
		}
		info, err = s.Stat(ctx, dir+"/site")
		if err != nil || info.Key != dir+"/site" || info.IsTerminal {
			t.Errorf("Stat(folder) = %+v, %v", info, err)
		}
		if _, err := s.Stat(ctx, dir+"/sit"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(missing) error = %v, want fs.ErrNotExist", err)
		}
	}},
	{"exists by component", func(t *testing.T, s certmagic.Storage, dir string) {
		ctx := t.Context()
		mustStore(t, s, dir+"/ab/c", "x")
		for k, want := range map[string]bool{dir + "/ab/c": true, dir + "/ab": true, dir + "/a": false, dir + "/ab/": true} {
			if k == dir+"/ab/" {
				continue // FileStorage cleans a trailing slash; the Consul storage refuses it.
				// (Nor "ab/c/d" below the file ab/c: FileStorage says it exists, as
				// stat fails with ENOTDIR rather than ENOENT.)
			}
			if got := s.Exists(ctx, k); got != want {
				t.Errorf("Exists(%q) = %v, want %v", k, got, want)
			}
		}
	}},
	{"list", func(t *testing.T, s certmagic.Storage, dir string) {
		ctx := t.Context()
		for _, k := range []string{"/x/1", "/x/2/a", "/x/2/b", "/x/3/deep/er", "/xy/1"} {
			mustStore(t, s, dir+k, "v")
		}
		for _, tt := range []struct {
			recursive bool
			want      []string
		}{
			{false, []string{"/x/1", "/x/2", "/x/3"}},
			{true, []string{"/x/1", "/x/2", "/x/2/a", "/x/2/b", "/x/3", "/x/3/deep", "/x/3/deep/er"}},
		} {
			got, err := s.List(ctx, dir+"/x", tt.recursive)
			slices.Sort(got)
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = dir + w
			}
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("List(x, %v) = %q, %v, want %q", tt.recursive, got, err, want)
			}
		}
		if got, err := s.List(ctx, dir+"/nothing", false); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("List(missing) = %q, %v, want fs.ErrNotExist", got, err)
		}
	}},
	{"delete", func(t *testing.T, s certmagic.Storage, dir string) {
		ctx := t.Context()
		for _, k := range []string{"/d/1", "/d/2/a", "/dd/1", "/e"} {
			mustStore(t, s, dir+k, "v")
		}
		if err := s.Delete(ctx, dir+"/d"); err != nil {
			t.Fatalf("Delete(folder) = %v", err)
		}
		if err := s.Delete(ctx, dir+"/e"); err != nil {
			t.Fatalf("Delete(file) = %v", err)
		}
		if err := s.Delete(ctx, dir+"/never"); err != nil {
			t.Errorf("Delete(missing) = %v, want nil", err)
		}
		for k, want := range map[string]bool{"/d": false, "/d/1": false, "/d/2/a": false, "/dd/1": true, "/e": false} {
			if got := s.Exists(ctx, dir+k); got != want {
				t.Errorf("after Delete: Exists(%q) = %v, want %v", k, got, want)
			}
		}
	}},
	{"lock unlock trylock", func(t *testing.T, s certmagic.Storage, dir string) {
		ctx := t.Context()
		tl := s.(certmagic.TryLocker)
		if err := s.Lock(ctx, dir+"_lock"); err != nil {
			t.Fatalf("Lock = %v", err)
		}
		if ok, err := tl.TryLock(ctx, dir+"_lock"); ok || err != nil {
			t.Errorf("TryLock(held) = %v, %v, want false", ok, err)
			if ok {
				_ = s.Unlock(ctx, dir+"_lock")
			}
		}
		if err := s.Unlock(ctx, dir+"_lock"); err != nil {
			t.Fatalf("Unlock = %v", err)
		}
		ok, err := tl.TryLock(ctx, dir+"_lock")
		if !ok || err != nil {
			t.Fatalf("TryLock(free) = %v, %v, want true", ok, err)
		}
		if err := s.Unlock(ctx, dir+"_lock"); err != nil {
			t.Errorf("Unlock = %v", err)
		}
	}},
	{"lock honours context", func(t *testing.T, s certmagic.Storage, dir string) {
		if err := s.Lock(t.Context(), dir+"_lock"); err != nil {
			t.Fatalf("Lock = %v", err)
		}
		defer s.Unlock(context.WithoutCancel(t.Context()), dir+"_lock")
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if err := s.Lock(ctx, dir+"_lock"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock(held, ctx ends) = %v, want context.DeadlineExceeded", err)
		}
	}},
}

func mustStore(t *testing.T, s certmagic.Storage, key, value string) {
	t.Helper()
	if err := s.Store(t.Context(), key, []byte(value)); err != nil {
		t.Fatalf("Store(%q) = %v", key, err)
	}
}
