package consultest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Consul's session rules (its documentation): TTL between 10s and 24h,
// invalidated after twice the TTL without renewal (the server's grace);
// lock-delay 15s unless given, at most 60s.
const (
	sessionTTLMin       = 10 * time.Second
	sessionTTLMax       = 24 * time.Hour
	sessionTTLGrace     = 2
	defaultLockDelay    = 15 * time.Second
	maxLockDelay        = 60 * time.Second
	behaviorRelease     = "release"
	behaviorDelete      = "delete"
	sessionNotFoundText = "Session id '%s' not found"
)

type session struct {
	id, name, behavior string
	ttl, lockDelay     time.Duration
	createIndex        uint64
	stopTimer          func() bool
}

type jsonSession struct {
	ID          string
	Name        string
	Node        string
	LockDelay   time.Duration
	Behavior    string
	TTL         string
	NodeChecks  []string
	CreateIndex uint64
	ModifyIndex uint64
}

// Sessions lists the live session IDs, sorted.
func (a *Agent) Sessions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.kv.sessions))
	for id := range a.kv.sessions {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// InvalidateSession ends a session as Consul does when its TTL lapses or
// its node fails: its locks are released (or their keys deleted, per its
// behaviour) and held back for its lock-delay. It reports whether the
// session existed.
func (a *Agent) InvalidateSession(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.invalidate(id)
}

// invalidate: caller holds a.mu.
func (a *Agent) invalidate(id string) bool {
	s, ok := a.kv.sessions[id]
	if !ok {
		return false
	}
	if s.stopTimer != nil {
		s.stopTimer()
	}
	delete(a.kv.sessions, id)
	until := a.clock.Now().Add(s.lockDelay)
	for k, e := range a.kv.entries {
		if e.session != id {
			continue
		}
		if s.lockDelay > 0 {
			a.kv.delays[k] = until
		}
		if s.behavior == behaviorDelete {
			delete(a.kv.entries, k)
		} else {
			e.session = ""
			e.modifyIndex = a.index + 1
		}
	}
	a.bumpKV()
	return true
}

// armTTL (re)starts a session's TTL timer. Caller holds a.mu.
func (a *Agent) armTTL(s *session) {
	if s.ttl == 0 {
		return
	}
	if s.stopTimer != nil {
		s.stopTimer()
	}
	id := s.id
	s.stopTimer = a.clock.AfterFunc(sessionTTLGrace*s.ttl, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if cur, ok := a.kv.sessions[id]; ok && cur == s {
			a.invalidate(id)
		}
	})
}

func (a *Agent) handleSessionCreate(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	var body struct {
		Name      string
		TTL       string
		Behavior  string
		LockDelay json.RawMessage
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil && err != io.EOF {
		writeError(w, failed(errBadRequest, "Request decode failed: "+err.Error()))
		return
	}
	s := &session{name: body.Name, behavior: body.Behavior, lockDelay: defaultLockDelay}
	switch s.behavior {
	case "":
		s.behavior = behaviorRelease
	case behaviorRelease, behaviorDelete:
	default:
		writeError(w, failed(errBadRequest, "Invalid Behavior setting '"+body.Behavior+"'"))
		return
	}
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil || d != 0 && (d < sessionTTLMin || d > sessionTTLMax) {
			writeError(w, failed(errBadRequest, fmt.Sprintf("Invalid Session TTL '%s', must be between [%v=%v]", body.TTL, sessionTTLMin, sessionTTLMax)))
			return
		}
		s.ttl = d
	}
	if len(body.LockDelay) > 0 {
		d, err := parseLockDelay(body.LockDelay)
		if err != nil {
			writeError(w, failed(errBadRequest, "Request decode failed: "+err.Error()))
			return
		}
		s.lockDelay = min(d, maxLockDelay)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	s.id = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	a.mu.Lock()
	s.createIndex = a.bumpKV()
	a.kv.sessions[s.id] = s
	a.armTTL(s)
	a.mu.Unlock()
	writeJSON(w, map[string]string{"ID": s.id})
}

// parseLockDelay reads LockDelay as Consul does: a duration string
// ("15s", what the Go client sends as "15000ms"), or a number of
// nanoseconds, where values below one second are taken as seconds.
func parseLockDelay(raw json.RawMessage) (time.Duration, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid LockDelay %s", raw)
	}
	d := time.Duration(n)
	if d < time.Second {
		d *= time.Second
	}
	return d, nil
}

func (a *Agent) handleSessionRenew(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	id := r.PathValue("id")
	a.mu.Lock()
	s, ok := a.kv.sessions[id]
	var out jsonSession
	if ok {
		a.armTTL(s)
		out = a.sessionJSON(s)
	}
	a.mu.Unlock()
	if !ok {
		writeError(w, failed(errNotFound, fmt.Sprintf(sessionNotFoundText, id)))
		return
	}
	writeJSON(w, []jsonSession{out})
}

func (a *Agent) handleSessionDestroy(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	a.mu.Lock()
	a.invalidate(r.PathValue("id"))
	a.mu.Unlock()
	writeJSON(w, true)
}

func (a *Agent) handleSessionInfo(w http.ResponseWriter, r *http.Request) {
	anon, err := a.authorize(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	a.mu.Lock()
	out := []jsonSession{}
	if s, ok := a.kv.sessions[r.PathValue("id")]; ok && !anon {
		out = append(out, a.sessionJSON(s))
	}
	idx := a.kv.index
	a.mu.Unlock()
	w.Header().Set("X-Consul-Index", strconv.FormatUint(idx, 10))
	writeJSON(w, out)
}

func (a *Agent) handleSessionList(w http.ResponseWriter, r *http.Request) {
	anon, err := a.authorize(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	a.mu.Lock()
	out := []jsonSession{}
	for _, s := range a.kv.sessions {
		if !anon {
			out = append(out, a.sessionJSON(s))
		}
	}
	idx := a.kv.index
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	w.Header().Set("X-Consul-Index", strconv.FormatUint(idx, 10))
	writeJSON(w, out)
}

// sessionJSON: caller holds a.mu.
func (a *Agent) sessionJSON(s *session) jsonSession {
	ttl := ""
	if s.ttl > 0 {
		ttl = s.ttl.String()
	}
	return jsonSession{ID: s.id, Name: s.name, Node: a.opts.NodeName, LockDelay: s.lockDelay, Behavior: s.behavior,
		TTL: ttl, NodeChecks: []string{"serfHealth"}, CreateIndex: s.createIndex, ModifyIndex: s.createIndex}
}
