package certstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/consulclient"
	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
)

// hostileAgent answers every request with answer(r); its requests are
// counted by "METHOD path-prefix".
func hostileAgent(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(answer))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// jsonAnswer writes body with the headers a KV answer has.
func jsonAnswer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Consul-Index", "42")
	w.WriteHeader(code)
	fmt.Fprint(w, body)
}

// Answers a broken or hostile agent could send: each ends in a clear
// error, never a panic, a hang, a key outside the storage or a value
// over the limit.
func TestHostileAnswers(t *testing.T) {
	const data = DefaultPrefix + "data/"
	kvAnswer := func(body string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) { jsonAnswer(w, 200, body) }
	}
	small := testOptions()
	small.MaxValueSize = 16
	for _, tt := range []struct {
		name   string
		opts   *Options
		answer func(w http.ResponseWriter, r *http.Request)
		op     func(ctx context.Context, s *Consul) error
		want   error // nil: any error
		text   string
	}{
		{name: "list names a key outside the prefix", answer: kvAnswer(`["` + data + `certs/a","other/b"]`),
			op: list("certs", true), want: ErrBadAnswer},
		{name: "list names a key escaping by dot-dot", answer: kvAnswer(`["` + data + `certs/../../locks/x"]`),
			op: list("certs", true), want: ErrBadAnswer},
		{name: "list names a key of the sibling folder", answer: kvAnswer(`["` + data + `certsX/a"]`),
			op: list("certs", true), want: ErrBadAnswer},
		{name: "list names a non-canonical key", answer: kvAnswer(`["` + data + `certs/%41"]`),
			op: list("certs", true), want: ErrBadAnswer},
		{name: "list names invalid UTF-8 and controls", answer: kvAnswer(`["` + data + `certs/\u001b[31m\ufffd"]`),
			op: list("certs", true), want: ErrBadAnswer},
		{name: "flat list names a grandchild", answer: kvAnswer(`["` + data + `certs/a/b"]`),
			op: list("certs", false), want: ErrBadAnswer},
		{name: "list answer is an object", answer: kvAnswer(`{"Key":"x"}`), op: list("certs", false)},
		{name: "list answer is malformed JSON", answer: kvAnswer(`["` + data), op: list("certs", true)},
		{name: "get answers another key", answer: kvAnswer(`[{"Key":"` + data + `other","Value":"eA=="}]`),
			op: load("certs/a"), want: ErrBadAnswer},
		{name: "get answers the lock folder", answer: kvAnswer(`[{"Key":"` + DefaultPrefix + `locks/certs/a","Value":"eA=="}]`),
			op: load("certs/a"), want: ErrBadAnswer},
		{name: "get answers a value over the limit", opts: &small,
			answer: kvAnswer(`[{"Key":"` + data + `certs/a","Value":"` + strings.Repeat("QUFB", 8) + `"}]`),
			op:     load("certs/a"), want: ErrBadAnswer},
		{name: "get answer over the client's bound", opts: &small,
			answer: kvAnswer(`[{"Key":"` + data + `certs/a","Value":"` + strings.Repeat("QUFB", 100<<10) + `"}]`),
			op:     load("certs/a"), want: consulclient.ErrAnswerTooLarge},
		{name: "get answer is malformed JSON", answer: kvAnswer(`[{"Key":`), op: load("certs/a")},
		{name: "get answer has a bad base64 value", answer: kvAnswer(`[{"Key":"` + data + `certs/a","Value":"!!"}]`), op: load("certs/a")},
		{name: "error answer with terminal escapes",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "boom\x1b[2J\n"+strings.Repeat("x", 1000), 500)
			},
			op: load("certs/a"), text: "consul kv get: 500 boom?[2J"},
		{name: "stat with flags beyond int64", answer: kvAnswer(`[{"Key":"` + data + `certs/a","Flags":18446744073709551615,"Value":"eA=="}]`),
			op: func(ctx context.Context, s *Consul) error {
				info, err := s.Stat(ctx, "certs/a")
				if err != nil || !info.Modified.IsZero() {
					return fmt.Errorf("Stat = %+v, %v, want a zero Modified", info, err)
				}
				return errors.New("ok")
			}, text: "ok"},
		{name: "session create answers no ID",
			answer: func(w http.ResponseWriter, r *http.Request) { jsonAnswer(w, 200, `{}`) },
			op:     lockOp("x"), want: ErrBadAnswer},
		{name: "acquire answers neither true nor false",
			answer: func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/v1/session/create") {
					jsonAnswer(w, 200, `{"ID":"s1"}`)
					return
				}
				jsonAnswer(w, 200, `maybe`)
			},
			// The client reads any answer without "true" as refused, and
			// the wait's answers do not decode: Lock keeps trying until
			// its context ends.
			op: func(ctx context.Context, s *Consul) error {
				ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				return lockOp("x")(ctx, s)
			}, want: context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			if tt.opts != nil {
				opts = *tt.opts
			}
			s := newConsul(t, hostileAgent(t, tt.answer), opts)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := tt.op(ctx, s)
			switch {
			case err == nil:
				t.Fatal("no error")
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("error = %v, want %v", err, tt.want)
			case tt.text != "" && !strings.Contains(err.Error(), tt.text):
				t.Errorf("error = %q, want it to contain %q", err, tt.text)
			case strings.ContainsAny(err.Error(), "\x1b\n"):
				t.Errorf("error = %q holds control characters", err)
			case len(err.Error()) > 300:
				t.Errorf("error of %d bytes: %.100q…", len(err.Error()), err)
			}
		})
	}
}

func list(prefix string, recursive bool) func(context.Context, *Consul) error {
	return func(ctx context.Context, s *Consul) error {
		keys, err := s.List(ctx, prefix, recursive)
		if err == nil {
			return fmt.Errorf("List = %q, no error", keys)
		}
		return err
	}
}

func load(key string) func(context.Context, *Consul) error {
	return func(ctx context.Context, s *Consul) error {
		v, err := s.Load(ctx, key)
		if err == nil {
			return fmt.Errorf("Load = %q, no error", v)
		}
		return err
	}
}

func lockOp(name string) func(context.Context, *Consul) error {
	return func(ctx context.Context, s *Consul) error {
		if err := s.Lock(ctx, name); err != nil {
			return err
		}
		return errors.New("Lock succeeded")
	}
}

// An agent that never frees the lock: Lock ends with its context and
// destroys the session it waited under.
func TestLockNeverFree(t *testing.T) {
	var destroyed atomic.Int32
	addr := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/session/create"):
			jsonAnswer(w, 200, `{"ID":"s1"}`)
		case strings.HasPrefix(r.URL.Path, "/v1/session/destroy/s1"):
			destroyed.Add(1)
			jsonAnswer(w, 200, `true`)
		case r.Method == http.MethodPut:
			jsonAnswer(w, 200, `false`)
		default: // a blocking query that returns at once, forever held
			jsonAnswer(w, 200, `[{"Key":"`+DefaultPrefix+`locks/x","Session":"other","Value":null}]`)
		}
	})
	s := newConsul(t, addr, testOptions())
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := s.Lock(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock = %v, want context.DeadlineExceeded", err)
	}
	if destroyed.Load() != 1 {
		t.Errorf("session destroyed %d times, want 1", destroyed.Load())
	}
}

func TestStoreValueLimits(t *testing.T) {
	a := fakeAgent(t, consultest.Options{})
	ctx := t.Context()
	s := newConsul(t, a.Addr(), testOptions())
	if err := s.Store(ctx, "big", make([]byte, DefaultMaxValueSize)); err != nil {
		t.Errorf("Store(at the limit) = %v", err)
	}
	if v, err := s.Load(ctx, "big"); err != nil || len(v) != DefaultMaxValueSize {
		t.Errorf("Load(at the limit) = %d bytes, %v", len(v), err)
	}
	if err := s.Store(ctx, "big", make([]byte, DefaultMaxValueSize+1)); !errors.Is(err, ErrValueTooLarge) {
		t.Errorf("Store(over the limit) = %v, want ErrValueTooLarge", err)
	}
	// A limit above the agent's: Consul's 413 comes back readable.
	opts := testOptions()
	opts.MaxValueSize = 1 << 20
	s = newConsul(t, a.Addr(), opts)
	err := s.Store(ctx, "big", make([]byte, DefaultMaxValueSize+1))
	if err == nil || !strings.Contains(err.Error(), "413") {
		t.Errorf("Store(over the agent's limit) = %v, want the agent's 413", err)
	}
}

func TestInvalidKeys(t *testing.T) {
	a := fakeAgent(t, consultest.Options{})
	s := newConsul(t, a.Addr(), testOptions())
	ctx := t.Context()
	for _, key := range []string{"", "/a", "a/", "a//b"} {
		if err := s.Store(ctx, key, []byte("x")); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Store(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Load(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Load(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
		if s.Exists(ctx, key) {
			t.Errorf("Exists(%q) = true", key)
		}
		if err := s.Lock(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Lock(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	// Keys a file system would resolve stay plain names here.
	for _, key := range []string{"x/../y", "./x", "x/.", ".."} {
		if err := s.Store(ctx, key, []byte(key)); err != nil {
			t.Errorf("Store(%q) = %v", key, err)
		}
		if v, err := s.Load(ctx, key); err != nil || string(v) != key {
			t.Errorf("Load(%q) = %q, %v", key, v, err)
		}
	}
	if _, err := s.Load(ctx, "y"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(`Load("y") after Store("x/../y") = %v, want fs.ErrNotExist`, err)
	}
	if got := a.KVKeys(""); len(got) != 4 {
		t.Errorf("agent keys = %q, want 4 below the prefix", got)
	}
	for _, k := range a.KVKeys("") {
		if !strings.HasPrefix(k, DefaultPrefix+"data/") {
			t.Errorf("key %q outside %sdata/", k, DefaultPrefix)
		}
	}
}

func TestNewConsulOptions(t *testing.T) {
	a := fakeAgent(t, consultest.Options{})
	cl := newClient(t, a.Addr(), Options{})
	for _, tt := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"prefix without slash", Options{Prefix: "lb/acme"}, true},
		{"prefix with dot-dot", Options{Prefix: "lb/../acme/"}, false},
		{"prefix with empty component", Options{Prefix: "lb//acme/"}, false},
		{"prefix with space", Options{Prefix: "lb acme/"}, false},
		{"prefix absolute", Options{Prefix: "/lb/"}, false},
		{"ttl under consul's minimum", Options{LockTTL: 5 * time.Second}, false},
		{"lock delay over consul's maximum", Options{LockDelay: 2 * time.Minute}, false},
	} {
		_, err := NewConsul(cl, tt.opts)
		if (err == nil) != tt.ok {
			t.Errorf("%s: NewConsul = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	if _, err := NewConsul(nil, Options{}); err == nil {
		t.Error("NewConsul(nil client) succeeded")
	}
}
