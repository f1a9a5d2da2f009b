package mosparoemu

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"time"
)

// Database is the part of mosparo's database the emulator needs: submit tokens and the
// submissions checked by check-form-data (FACTS 2.1: all frontend state is in the DB, so any
// node can continue a flow another node started). Nodes given the same Database behave like a
// cluster on one DB. Safe for concurrent use; the zero value is not usable, use NewDatabase.
type Database struct {
	mu       sync.Mutex
	subs     map[string]*submission
	lockouts map[string]*ipActivity // project public key + " " + client IP
	order    []string               // insertion order, for bounded eviction
	head     int

	installed installedVersion
}

// maxSubmissions bounds the database so benchmarks issuing tokens forever stay in memory
// bounds; the oldest token is forgotten first.
const maxSubmissions = 1 << 17

// NewDatabase returns an empty database.
func NewDatabase() *Database {
	return &Database{subs: make(map[string]*submission), lockouts: make(map[string]*ipActivity)}
}

// Submission is what a test may seed or read: a submit token, the validation token issued by
// check-form-data and the form fields the browser sent (name -> raw value).
type Submission struct {
	PublicKey       string
	SubmitToken     string
	ValidationToken string // empty until check-form-data succeeded
	Fields          map[string]string
	// ClientIP is the client IP mosparo resolved (FACTS 4) at the last frontend request for
	// this token; the verification API uses it, lockouts and delays count by it.
	ClientIP string
	// Verified counts successful verification API calls for this submission.
	Verified int
}

type submission struct {
	publicKey       string
	submitToken     string
	validationToken string
	fields          map[string]string
	clientIP        string
	stored          bool
	verified        int
}

// Add stores a submission, e.g. the FACTS 8.1 test vector (SubmitToken "SUBMITTOKEN_example",
// ValidationToken "VALIDATIONTOKEN_example"), replacing one with the same submit token.
func (d *Database) Add(s Submission) {
	f := make(map[string]string, len(s.Fields))
	for k, v := range s.Fields {
		f[k] = v
	}
	d.put(&submission{
		publicKey:       s.PublicKey,
		submitToken:     s.SubmitToken,
		validationToken: s.ValidationToken,
		fields:          f,
		clientIP:        s.ClientIP,
		verified:        s.Verified,
	})
}

// Lookup returns the submission of a submit token.
func (d *Database) Lookup(submitToken string) (Submission, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.subs[submitToken]
	if s == nil {
		return Submission{}, false
	}
	f := make(map[string]string, len(s.fields))
	for k, v := range s.fields {
		f[k] = v
	}
	return Submission{
		PublicKey:       s.publicKey,
		SubmitToken:     s.submitToken,
		ValidationToken: s.validationToken,
		Fields:          f,
		ClientIP:        s.clientIP,
		Verified:        s.verified,
	}, true
}

// Len returns the number of stored submit tokens.
func (d *Database) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.subs)
}

// Reset forgets everything.
func (d *Database) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.subs = make(map[string]*submission)
	d.lockouts = make(map[string]*ipActivity)
	d.order = nil
	d.head = 0
}

func (d *Database) put(s *submission) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.subs[s.submitToken]; !ok {
		if len(d.order) < maxSubmissions {
			d.order = append(d.order, s.submitToken)
		} else {
			delete(d.subs, d.order[d.head])
			d.order[d.head] = s.submitToken
			d.head = (d.head + 1) % maxSubmissions
		}
	}
	d.subs[s.submitToken] = s
}

// has reports whether token is a submit token of the project with this public key.
func (d *Database) has(token []byte, publicKey string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.subs[string(token)]
	return s != nil && s.publicKey == publicKey
}

// update runs f on the submission of token while holding the lock.
func (d *Database) update(token string, f func(*submission)) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.subs[token]
	if s == nil {
		return false
	}
	f(s)
	return true
}

// randomToken returns 64 lower-case hex characters.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go >= 1.24)
	return hex.EncodeToString(b[:])
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ipActivity is what mosparo's lockout feature keeps per client IP (FACTS 4: Lockout rows keyed
// by the IP): requests in the current window and the end of a lockout.
type ipActivity struct {
	windowStart time.Time
	count       int
	lockedUntil time.Time
}

// maxLockoutEntries bounds the lockout table; a full table starts over.
const maxLockoutEntries = 1 << 16

// countRequest records one frontend request of ip for a project and returns the end of a
// lockout in force, or the zero time. Lockouts start when more than limit requests arrive
// within window.
func (d *Database) countRequest(publicKey, ip string, now time.Time, limit int, window, duration time.Duration) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := publicKey + " " + ip
	a := d.lockouts[key]
	if a == nil {
		if len(d.lockouts) >= maxLockoutEntries {
			d.lockouts = make(map[string]*ipActivity)
		}
		a = &ipActivity{windowStart: now}
		d.lockouts[key] = a
	}
	if now.Before(a.lockedUntil) {
		return a.lockedUntil
	}
	if now.Sub(a.windowStart) >= window {
		a.windowStart, a.count = now, 0
	}
	a.count++
	if a.count > limit {
		a.lockedUntil = now.Add(duration)
		a.windowStart, a.count = now, 0
		return a.lockedUntil
	}
	return time.Time{}
}
