package cron

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeConsul is the part of Consul's session and KV API the official
// client's api.Lock uses (PUT /v1/session/create|renew/<id>|destroy/<id>,
// PUT /v1/kv/<key>?acquire= or ?release= with flags, GET /v1/kv/<key>
// blocking on index), with Consul's answers: create {"ID":...}, renew 404 for an
// unknown session, acquire and release a JSON true or false. Sessions do
// not expire by themselves; tests end one with expire. An ended session's
// keys cannot be acquired for its LockDelay (Consul's lock delay).
type fakeConsul struct {
	mu       sync.Mutex
	seq      int
	sessions map[string]time.Duration // id -> lock delay
	holder   map[string]string        // key -> session
	blocked  map[string]time.Time     // key -> end of its lock delay
	value    map[string]string
	flags    map[string]uint64
	down     bool
	token    string // token seen last
	renews   int    // session renewals answered
	index    uint64
	changed  chan struct{} // closed and replaced on every write and on setDown
}

// bumpLocked records a write: blocked reads of the key return.
func (f *fakeConsul) bumpLocked() {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

// getKV is GET /v1/kv/<key>[?index=&wait=], blocking while the index is
// the one asked for (at most wait, capped at 2s to keep tests short).
func (f *fakeConsul) getKV(w http.ResponseWriter, r *http.Request, key string) {
	f.mu.Lock()
	f.token = r.Header.Get("X-Consul-Token")
	if idx := r.URL.Query().Get("index"); idx != "" && idx == fmt.Sprint(f.index) && !f.down {
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.down {
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Consul-Index", fmt.Sprint(f.index))
	v, ok := f.value[key]
	if !ok {
		http.NotFound(w, r)
		return
	}
	writeKV(w, key, v, f.flags[key], f.holder[key])
}

func writeKV(w http.ResponseWriter, key, value string, flags uint64, session string) {
	b, _ := json.Marshal([]map[string]any{{"Key": key, "Value": []byte(value), "Flags": flags, "Session": session}})
	w.Write(b)
}

func newFakeConsul(t *testing.T) (*fakeConsul, string) {
	f := &fakeConsul{sessions: map[string]time.Duration{}, holder: map[string]string{}, value: map[string]string{},
		blocked: map[string]time.Time{}, flags: map[string]uint64{}, index: 5, changed: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/kv/") {
		f.getKV(w, r, strings.TrimPrefix(r.URL.Path, "/v1/kv/"))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = r.Header.Get("X-Consul-Token")
	if f.down {
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
		return
	}
	if r.Method != http.MethodPut {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	p := r.URL.Path
	switch {
	case p == "/v1/session/create":
		// LockDelay comes as a duration string or as nanoseconds.
		var in struct {
			TTL, Behavior string
			LockDelay     json.RawMessage
		}
		if err := json.Unmarshal(body, &in); err != nil || in.TTL == "" || in.Behavior != "release" {
			http.Error(w, "bad session body", http.StatusBadRequest)
			return
		}
		f.seq++
		id := fmt.Sprintf("sess-%d", f.seq)
		delay := 15 * time.Second
		var ns int64
		var str string
		switch {
		case len(in.LockDelay) == 0 || string(in.LockDelay) == "0":
		case json.Unmarshal(in.LockDelay, &ns) == nil:
			delay = time.Duration(ns)
		case json.Unmarshal(in.LockDelay, &str) == nil:
			var err error
			if delay, err = time.ParseDuration(str); err != nil {
				http.Error(w, "bad lock delay", http.StatusBadRequest)
				return
			}
		}
		f.sessions[id] = delay
		fmt.Fprintf(w, `{"ID":%q}`, id)
	case strings.HasPrefix(p, "/v1/session/renew/"):
		id := strings.TrimPrefix(p, "/v1/session/renew/")
		if _, ok := f.sessions[id]; !ok {
			http.Error(w, "Session id '"+id+"' not found", http.StatusNotFound)
			return
		}
		f.renews++
		fmt.Fprintf(w, `[{"ID":%q,"TTL":"15s"}]`, id)
	case strings.HasPrefix(p, "/v1/session/destroy/"):
		f.expireLocked(strings.TrimPrefix(p, "/v1/session/destroy/"))
		fmt.Fprint(w, "true")
	case strings.HasPrefix(p, "/v1/kv/"):
		key := strings.TrimPrefix(p, "/v1/kv/")
		q := r.URL.Query()
		switch {
		case q.Has("acquire"):
			s := q.Get("acquire")
			if _, ok := f.sessions[s]; !ok {
				http.Error(w, "invalid session", http.StatusInternalServerError)
				return
			}
			h := f.holder[key]
			if h != "" && h != s || time.Now().Before(f.blocked[key]) {
				fmt.Fprint(w, "false")
				return
			}
			f.holder[key], f.value[key] = s, string(body)
			f.flags[key], _ = strconv.ParseUint(q.Get("flags"), 10, 64)
			f.bumpLocked()
			fmt.Fprint(w, "true")
		case q.Has("release"):
			if f.holder[key] == q.Get("release") {
				delete(f.holder, key)
				f.bumpLocked()
			}
			fmt.Fprint(w, "true")
		default:
			http.Error(w, "unsupported", http.StatusBadRequest)
		}
	default:
		http.NotFound(w, r)
	}
}

// expireLocked ends a session like a TTL expiry: with behaviour release
// the locks it held are released.
func (f *fakeConsul) expireLocked(id string) {
	delay := f.sessions[id]
	delete(f.sessions, id)
	for k, h := range f.holder {
		if h == id {
			delete(f.holder, k)
			f.blocked[k] = time.Now().Add(delay)
			f.bumpLocked()
		}
	}
}

func (f *fakeConsul) expire(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(f.holder[key])
}

func (f *fakeConsul) state(key string) (holder, value string, sessions int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holder[key], f.value[key], len(f.sessions)
}

// renewals counts the session renewals answered so far.
func (f *fakeConsul) renewals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renews
}

func (f *fakeConsul) setDown(v bool) {
	f.mu.Lock()
	f.down = v
	close(f.changed) // wake blocked reads, which answer 500 now
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// eventually polls cond every 5ms for up to 30s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startLock(t *testing.T, addr, holder string) (*ConsulLock, context.CancelFunc, chan error) {
	t.Helper()
	l, err := NewConsulLock(ConsulLockOptions{Address: addr, Key: "mosparo-lb/cron/leader", Holder: holder, Token: "tok",
		TTL: 30 * time.Millisecond, LockDelay: 100 * time.Millisecond, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return l, cancel, done
}

func TestConsulLockOneHolder(t *testing.T) {
	f, addr := newFakeConsul(t)
	const key = "mosparo-lb/cron/leader"
	a, stopA, doneA := startLock(t, addr, "lb-a")
	eventually(t, "A to hold the lock", a.IsLeader)
	b, stopB, doneB := startLock(t, addr, "lb-b")
	defer func() { stopB(); <-doneB }()
	if err := a.Run(t.Context()); err == nil {
		t.Error("second Run of one lock returned nil, want ErrRunning")
	}
	renewed := f.renewals()
	eventually(t, "several renew periods", func() bool { return f.renewals() >= renewed+3 })
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("A %v, B %v: want only A", a.IsLeader(), b.IsLeader())
	}
	if _, v, _ := f.state(key); v != "lb-a" {
		t.Errorf("lock value = %q, want the holder lb-a", v)
	}

	// A's session expires (its agent was lost, say): A notices at its next
	// renew; the lock is free and one of them takes it, never both.
	f.expire(key)
	eventually(t, "a new holder", func() bool {
		h, _, _ := f.state(key)
		return h != ""
	})
	for range 20 {
		if a.IsLeader() && b.IsLeader() {
			t.Fatal("both hold the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A stops cleanly: it releases the lock if it has it, its session is
	// destroyed, and B holds the lock.
	stopA()
	if err := <-doneA; err != nil {
		t.Errorf("Run = %v", err)
	}
	eventually(t, "B to hold the lock", b.IsLeader)
	if h, v, n := f.state(key); n != 1 || h == "" || v != "lb-b" {
		t.Errorf("after A stopped: holder %q value %q, %d sessions, want B's alone", h, v, n)
	}

	// Consul unreachable: B stops being the leader at once.
	f.setDown(true)
	eventually(t, "B to give up without Consul", func() bool { return !b.IsLeader() })
	f.setDown(false)
	// B could not destroy its session while Consul was down; Consul ends
	// it by its TTL (the fake, by hand), then B acquires again.
	f.expire(key)
	eventually(t, "B to hold the lock again", b.IsLeader)
	f.mu.Lock()
	token := f.token
	f.mu.Unlock()
	if token != "tok" {
		t.Errorf("token sent = %q, want tok", token)
	}
}

func TestConsulLockReleasesOnStop(t *testing.T) {
	f, addr := newFakeConsul(t)
	a, stopA, doneA := startLock(t, addr, "lb-a")
	eventually(t, "A to hold the lock", a.IsLeader)
	stopA()
	<-doneA
	if a.IsLeader() {
		t.Error("IsLeader true after Run returned")
	}
	if h, _, n := f.state("mosparo-lb/cron/leader"); h != "" || n != 0 {
		t.Errorf("after stop: holder %q, %d sessions, want none", h, n)
	}
}

func TestNewConsulLockBadKey(t *testing.T) {
	for _, k := range []string{"", "/abs"} {
		if _, err := NewConsulLock(ConsulLockOptions{Key: k}); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}

// TestConsulLockNeedsAnAddress: the agent's address comes from configs,
// which defaults it; the lock does not default it a second time.
func TestConsulLockNeedsAnAddress(t *testing.T) {
	if _, err := NewConsulLock(ConsulLockOptions{Key: "mosparo-lb/cron/leader"}); err == nil {
		t.Error("NewConsulLock without an address = nil error")
	}
}
