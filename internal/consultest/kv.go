package consultest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxKVValue is Consul's default kv_max_value_size: a larger PUT body gets
// 413 (FACTS-free: Consul's documented default, 512 KiB).
const MaxKVValue = 512 << 10

// kvState is the agent's key/value store and its sessions (kv.go,
// session.go). It is added for certstore (issue 14) and follows Consul's
// documented KV and session API; FACTS.md records none of it.
type kvState struct {
	entries  map[string]*kvEntry
	sessions map[string]*session
	// delays holds the lock-delay end per key whose holder's session was
	// invalidated: until then acquire fails.
	delays map[string]time.Time
	// index is the raft index of the last KV or session write.
	index uint64
}

type kvEntry struct {
	key                      string
	value                    []byte
	flags                    uint64
	createIndex, modifyIndex uint64
	lockIndex                uint64
	session                  string
}

// wipeKV empties the store, ending every session's timer. Caller holds a.mu.
func (a *Agent) wipeKV() {
	for _, s := range a.kv.sessions {
		if s.stopTimer != nil {
			s.stopTimer()
		}
	}
	a.kv = kvState{entries: map[string]*kvEntry{}, sessions: map[string]*session{}, delays: map[string]time.Time{}, index: a.opts.StartIndex}
}

// bumpKV advances the raft index for a KV or session write and wakes
// blocked queries. Caller holds a.mu.
func (a *Agent) bumpKV() uint64 {
	idx := a.bump()
	a.kv.index = idx
	return idx
}

// KV returns the value stored at key, as a test's view of the store.
func (a *Agent) KV(key string) (value []byte, session string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.kv.entries[key]
	if !ok {
		return nil, "", false
	}
	return append([]byte(nil), e.value...), e.session, true
}

// KVKeys lists the stored keys starting with prefix, sorted.
func (a *Agent) KVKeys(prefix string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k := range a.kv.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

type jsonKVPair struct {
	Key         string
	CreateIndex uint64
	ModifyIndex uint64
	LockIndex   uint64
	Flags       uint64
	Value       []byte // base64, as Consul sends it; null when empty
	Session     string `json:",omitempty"`
}

func (a *Agent) kvRoutes(mux *http.ServeMux, down <-chan struct{}) {
	mux.HandleFunc("GET /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) { a.handleKVGet(w, r, down) })
	mux.HandleFunc("PUT /v1/kv/{key...}", a.handleKVPut)
	mux.HandleFunc("DELETE /v1/kv/{key...}", a.handleKVDelete)
	mux.HandleFunc("PUT /v1/session/create", a.handleSessionCreate)
	mux.HandleFunc("PUT /v1/session/renew/{id}", a.handleSessionRenew)
	mux.HandleFunc("PUT /v1/session/destroy/{id}", a.handleSessionDestroy)
	mux.HandleFunc("GET /v1/session/info/{id}", a.handleSessionInfo)
	mux.HandleFunc("GET /v1/session/list", a.handleSessionList)
}

// handleKVGet serves a key, ?recurse (every pair under the prefix) and
// ?keys[&separator=] (names only, folded at the separator), blocking on
// index+wait like the catalog queries; 404 when nothing matches.
func (a *Agent) handleKVGet(w http.ResponseWriter, r *http.Request, down <-chan struct{}) {
	anon, err := a.authorize(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := a.parseQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	key := r.PathValue("key")

	a.mu.Lock()
	if p.index > 0 && a.kv.index <= p.index {
		expired := make(chan struct{})
		var once sync.Once
		stop := a.clock.AfterFunc(p.wait+rand.N(p.wait/16+1), func() { once.Do(func() { close(expired) }) })
		defer stop()
		gen := a.resetGen
		a.setBlocked(1)
		for a.kv.index <= p.index && a.resetGen == gen {
			ch := a.changed
			a.mu.Unlock()
			select {
			case <-ch:
			case <-expired:
			case <-r.Context().Done():
			case <-down:
			}
			a.mu.Lock()
			if isDone(expired) || r.Context().Err() != nil || isDone(down) {
				break
			}
		}
		a.setBlocked(-1)
		if r.Context().Err() != nil || isDone(down) {
			a.mu.Unlock()
			return
		}
	}
	idx := a.kv.index
	var body any
	found := false
	switch {
	case q.Has("keys"):
		sep := q.Get("separator")
		seen := map[string]bool{}
		names := []string{}
		for k := range a.kv.entries {
			if !strings.HasPrefix(k, key) || anon {
				continue
			}
			if sep != "" {
				if i := strings.Index(k[len(key):], sep); i >= 0 {
					k = k[:len(key)+i+len(sep)]
				}
			}
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
		sort.Strings(names)
		found, body = len(names) > 0, names
	case q.Has("recurse"):
		pairs := []jsonKVPair{}
		for k, e := range a.kv.entries {
			if strings.HasPrefix(k, key) && !anon {
				pairs = append(pairs, kvJSON(e))
			}
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
		found, body = len(pairs) > 0, pairs
	default:
		if e, ok := a.kv.entries[key]; ok && !anon {
			found, body = true, []jsonKVPair{kvJSON(e)}
		}
	}
	a.mu.Unlock()

	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(idx, 10))
	h.Set("X-Consul-Knownleader", "true")
	h.Set("X-Consul-Lastcontact", "0")
	if !found {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, body)
}

func kvJSON(e *kvEntry) jsonKVPair {
	return jsonKVPair{Key: e.key, CreateIndex: e.createIndex, ModifyIndex: e.modifyIndex, LockIndex: e.lockIndex,
		Flags: e.flags, Value: append([]byte(nil), e.value...), Session: e.session}
}

// handleKVPut stores the body at key; ?flags, ?cas, ?acquire and ?release
// as Consul has them. The answer is true or false.
func (a *Agent) handleKVPut(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	key := r.PathValue("key")
	if key == "" {
		writeError(w, failed(errBadRequest, "Missing key name"))
		return
	}
	value, err := io.ReadAll(io.LimitReader(r.Body, MaxKVValue+1))
	if err != nil {
		writeError(w, failed(errBadRequest, "Request decode failed: "+err.Error()))
		return
	}
	if len(value) > MaxKVValue {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		fmt.Fprintf(w, "Request body too large, max size: %d bytes.", MaxKVValue)
		return
	}
	var flags, cas uint64
	for _, f := range []struct {
		name string
		v    *uint64
	}{{"flags", &flags}, {"cas", &cas}} {
		if q.Has(f.name) {
			if *f.v, err = strconv.ParseUint(q.Get(f.name), 10, 64); err != nil {
				writeError(w, failed(errBadRequest, "Invalid "+f.name))
				return
			}
		}
	}
	a.mu.Lock()
	ok, err := a.putKV(key, value, flags, q.Has("cas"), cas, q.Get("acquire"), q.Get("release"))
	a.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, ok)
}

// putKV applies one PUT. Caller holds a.mu.
func (a *Agent) putKV(key string, value []byte, flags uint64, hasCAS bool, cas uint64, acquire, release string) (bool, error) {
	e := a.kv.entries[key]
	if hasCAS && (cas == 0 && e != nil || cas != 0 && (e == nil || e.modifyIndex != cas)) {
		return false, nil
	}
	switch {
	case acquire != "":
		if _, ok := a.kv.sessions[acquire]; !ok {
			return false, fmt.Errorf("invalid session %q", acquire)
		}
		if e != nil && e.session != "" && e.session != acquire {
			return false, nil
		}
		if until, ok := a.kv.delays[key]; ok && a.clock.Now().Before(until) {
			return false, nil
		}
	case release != "":
		if _, ok := a.kv.sessions[release]; !ok {
			return false, fmt.Errorf("invalid session %q", release)
		}
		if e == nil || e.session != release {
			return false, nil
		}
	}
	idx := a.bumpKV()
	if e == nil {
		e = &kvEntry{key: key, createIndex: idx}
		a.kv.entries[key] = e
	}
	e.value, e.flags, e.modifyIndex = value, flags, idx
	switch {
	case acquire != "":
		if e.session != acquire {
			e.lockIndex++
		}
		e.session = acquire
	case release != "":
		e.session = ""
	}
	return true, nil
}

// handleKVDelete removes a key, or with ?recurse every key under it.
func (a *Agent) handleKVDelete(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	key := r.PathValue("key")
	recurse := r.URL.Query().Has("recurse")
	a.mu.Lock()
	for k := range a.kv.entries {
		if k == key || recurse && strings.HasPrefix(k, key) {
			delete(a.kv.entries, k)
		}
	}
	a.bumpKV()
	a.mu.Unlock()
	writeJSON(w, true)
}
