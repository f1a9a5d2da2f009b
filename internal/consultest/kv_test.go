package consultest

import (
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestKVPutGetDelete(t *testing.T) {
	_, c := start(t, Options{})
	kv := c.KV()
	if _, err := kv.Put(&api.KVPair{Key: "a/b", Value: []byte("v"), Flags: 7}, nil); err != nil {
		t.Fatal(err)
	}
	p, meta, err := kv.Get("a/b", nil)
	if err != nil || p == nil || string(p.Value) != "v" || p.Flags != 7 || p.CreateIndex == 0 || meta.LastIndex == 0 {
		t.Fatalf("Get = %+v, %+v, %v", p, meta, err)
	}
	if p, _, err := kv.Get("a/missing", nil); p != nil || err != nil {
		t.Errorf("Get(missing) = %+v, %v, want nil, nil (404)", p, err)
	}
	for _, k := range []string{"a/c/d", "a/c/e", "ab"} {
		if _, err := kv.Put(&api.KVPair{Key: k}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		prefix, sep string
		want        []string
	}{
		{"a/", "", []string{"a/b", "a/c/d", "a/c/e"}},
		{"a/", "/", []string{"a/b", "a/c/"}},
		{"a", "/", []string{"a/", "ab"}},
	} {
		got, _, err := kv.Keys(tt.prefix, tt.sep, nil)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Keys(%q, %q) = %q, %v, want %q", tt.prefix, tt.sep, got, err, tt.want)
		}
	}
	if _, err := kv.DeleteTree("a/c/", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Delete("a/b", nil); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := kv.Keys("", "", nil); !slices.Equal(got, []string{"ab"}) {
		t.Errorf("Keys after deletes = %q, want [ab]", got)
	}
}

func TestKVValueLimit(t *testing.T) {
	a, c := start(t, Options{})
	if _, err := c.KV().Put(&api.KVPair{Key: "k", Value: make([]byte, MaxKVValue)}, nil); err != nil {
		t.Errorf("Put(at the limit) = %v", err)
	}
	code, body, _ := do(t, "PUT", a.URL()+"/v1/kv/k", strings.Repeat("x", MaxKVValue+1))
	if code != 413 {
		t.Errorf("PUT over the limit = %d %q, want 413", code, body)
	}
}

// A blocking KV read returns when the key changes.
func TestKVBlocking(t *testing.T) {
	a, c := start(t, Options{})
	_, meta, err := c.KV().Get("k", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *api.KVPair, 1)
	go func() {
		p, _, _ := c.KV().Get("k", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		got <- p
	}()
	if err := a.AwaitBlocked(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KV().Put(&api.KVPair{Key: "k", Value: []byte("new")}, nil); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p == nil || string(p.Value) != "new" {
		t.Errorf("blocked Get = %+v, want the new value", p)
	}
}

func TestSessionLocks(t *testing.T) {
	clock := clocktest.NewManual(time.Unix(1_700_000_000, 0))
	a, c := start(t, Options{Clock: clock})
	kv, sess := c.KV(), c.Session()
	s1, _, err := sess.Create(&api.SessionEntry{TTL: "10s", LockDelay: time.Second, Behavior: api.SessionBehaviorRelease}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := sess.Create(&api.SessionEntry{TTL: "10s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acquire := func(s string) bool {
		t.Helper()
		ok, _, err := kv.Acquire(&api.KVPair{Key: "lock", Session: s}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !acquire(s1) || acquire(s2) {
		t.Fatal("the first session should hold the lock, the second not")
	}
	if ok, _, _ := kv.Release(&api.KVPair{Key: "lock", Session: s2}, nil); ok {
		t.Error("a non-holder released the lock")
	}
	if ok, _, _ := kv.Release(&api.KVPair{Key: "lock", Session: s1}, nil); !ok || !acquire(s2) {
		t.Fatal("after release the other session should get the lock")
	}
	if ok, _, _ := kv.Release(&api.KVPair{Key: "lock", Session: s2}, nil); !ok || !acquire(s1) {
		t.Fatal("s1 should get the lock back")
	}
	// TTL: renewed sessions live, the other is invalidated after twice its
	// TTL; its lock is released and held back for its lock-delay.
	clock.Advance(10 * time.Second)
	if e, _, err := sess.Renew(s2, nil); e == nil || err != nil {
		t.Fatalf("Renew(s2) = %+v, %v", e, err)
	}
	clock.Advance(10 * time.Second)
	if e, _, _ := sess.Renew(s1, nil); e != nil {
		t.Fatal("s1 outlived twice its TTL")
	}
	if p, _, _ := kv.Get("lock", nil); p == nil || p.Session != "" {
		t.Fatalf("lock after its holder's TTL = %+v, want released (behavior release)", p)
	}
	if acquire(s2) {
		t.Error("the lock was taken within the dead holder's lock-delay")
	}
	clock.Advance(time.Second)
	if !acquire(s2) {
		t.Error("the lock was refused after the lock-delay")
	}
	// Behavior delete: destroying the session deletes what it held.
	s3, _, err := sess.Create(&api.SessionEntry{Behavior: api.SessionBehaviorDelete, TTL: "10s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := kv.Acquire(&api.KVPair{Key: "other", Session: s3}, nil); !ok {
		t.Fatal("acquire of a free key failed")
	}
	if _, err := sess.Destroy(s3, nil); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := kv.Get("other", nil); p != nil {
		t.Errorf("key of a destroyed delete-session = %+v, want gone", p)
	}
	if _, _, err := kv.Acquire(&api.KVPair{Key: "x", Session: "unknown"}, nil); err == nil {
		t.Error("acquire with an unknown session succeeded")
	}
	if got := a.Sessions(); !slices.Equal(got, []string{s2}) {
		t.Errorf("Sessions = %v, want [%s]", got, s2)
	}
	if _, _, err := sess.Create(&api.SessionEntry{TTL: "5s"}, nil); err == nil {
		t.Error("a TTL under 10s was accepted")
	}
}
