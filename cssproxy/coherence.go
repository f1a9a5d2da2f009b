package cssproxy

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// maxCoherenceProjects bounds the per-project verdicts; past it the table
// starts over (every project is checked again), which costs one forwarded
// request per project and keeps memory bounded whatever the cache holds.
const maxCoherenceProjects = 100_000

// Verdicts about a project's unhashed URL: what a node answered compared
// with the cached hash (FACTS 11.5).
const (
	verdictUnknown  int32 = iota // no node answer seen yet: the cache is trusted
	verdictAgree                 // the node redirected to the cached hash
	verdictDisagree              // the node redirected elsewhere
	verdictGone                  // the node answered 404: project deleted
)

// coherence checks the edge's unhashed 307 against mosparo's own answer.
// mosparo builds that redirect from the database hash, the edge from the
// cached one; after a project is deleted or the shared-cache flag is
// turned off, the stale keys stay (clearCssCache's swapped branches,
// FACTS 9.6) and the edge would redirect to old CSS forever. So the first
// unhashed request per project per interval is left to a node, its answer
// is compared with the cache (Observe), and on disagreement the edge stops
// answering that project's unhashed URL until the cache holds what the
// node said.
type coherence struct {
	interval time.Duration // 0: no checks

	mu       sync.RWMutex
	projects map[projectID]*projectVerdict

	checks, disagreements atomic.Uint64
}

// projectVerdict is one project's state. nodeHash is replaced, never
// changed, so readers need no lock.
type projectVerdict struct {
	lastCheck atomic.Int64 // unix nanoseconds of the last forwarded check
	verdict   atomic.Int32
	nodeHash  atomic.Pointer[[]byte]
}

func newCoherence(interval time.Duration) *coherence {
	return &coherence{interval: interval, projects: make(map[projectID]*projectVerdict)}
}

// allow decides whether the edge may answer id's unhashed URL with
// cached (the hash it holds) at now. It returns false for the one request
// per interval that must go to a node as the check, and while the last
// node answer disagrees with the cache.
func (c *coherence) allow(id projectID, cached []byte, now time.Time) bool {
	if c.interval <= 0 {
		return true
	}
	v := c.verdict(id)
	last := v.lastCheck.Load()
	if now.UnixNano()-last >= int64(c.interval) && v.lastCheck.CompareAndSwap(last, now.UnixNano()) {
		c.checks.Add(1)
		return false
	}
	return c.trusted(v, cached)
}

// trusted reports whether no node's last answer about id's unhashed URL
// disagrees with cached.
func (c *coherence) trustedID(id projectID, cached []byte) bool {
	if c.interval <= 0 {
		return true
	}
	return c.trusted(c.verdict(id), cached)
}

func (c *coherence) trusted(v *projectVerdict, cached []byte) bool {
	switch v.verdict.Load() {
	case verdictAgree, verdictUnknown:
		return true
	case verdictDisagree:
		// The cache may have caught up (mosparo regenerated it).
		if h := v.nodeHash.Load(); h != nil && bytes.Equal(*h, cached) {
			v.verdict.Store(verdictAgree)
			return true
		}
	}
	return false
}

// verdict returns id's state, creating it on first use.
func (c *coherence) verdict(id projectID) *projectVerdict {
	c.mu.RLock()
	v := c.projects[id]
	c.mu.RUnlock()
	if v != nil {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v = c.projects[id]; v == nil {
		if len(c.projects) >= maxCoherenceProjects {
			clear(c.projects)
		}
		v = &projectVerdict{}
		c.projects[id] = v
		// A zero lastCheck makes the first request the check.
	}
	return v
}

// observe records a node's answer to id's unhashed URL against cached
// (nil when the edge holds no positive entry). It reports whether the
// answer disagreed with the cache.
func (c *coherence) observe(id projectID, status int, location []byte, cached []byte) (disagree bool) {
	if c.interval <= 0 {
		return false
	}
	var next int32
	var nodeHash []byte
	switch {
	case status == fasthttp.StatusNotFound:
		next = verdictGone
	case status == fasthttp.StatusTemporaryRedirect:
		h, ok := locationHash(location, id)
		if !ok {
			return false // not a CSS redirect (e.g. a draining node's 302)
		}
		nodeHash = h
		next = verdictDisagree
		if cached != nil && bytes.Equal(h, cached) {
			next = verdictAgree
		}
	default:
		return false // errors and pending updates say nothing about the hash
	}
	v := c.verdict(id)
	if next == verdictDisagree {
		if old := v.nodeHash.Load(); old == nil || !bytes.Equal(*old, nodeHash) {
			h := bytes.Clone(nodeHash)
			v.nodeHash.Store(&h)
		}
	}
	prev := v.verdict.Swap(next)
	if next == verdictAgree || cached == nil {
		return false
	}
	c.disagreements.Add(1)
	return prev != next
}

// disagreeing counts the projects whose unhashed URL the edge leaves to
// the nodes right now.
func (c *coherence) disagreeing() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, v := range c.projects {
		if s := v.verdict.Load(); s == verdictDisagree || s == verdictGone {
			n++
		}
	}
	return n
}

// locationHash extracts <hash> from a Location ending in
// /resources/<uuid>/<hash>.css for id (absolute or not, query ignored).
// The result aliases location.
func locationHash(location []byte, id projectID) ([]byte, bool) {
	if i := bytes.IndexAny(location, "?#"); i >= 0 {
		location = location[:i]
	}
	if !bytes.HasSuffix(location, cssSuffix) {
		return nil, false
	}
	rest := location[:len(location)-len(cssSuffix)]
	slash := bytes.LastIndexByte(rest, '/')
	if slash < uuidLen+1 {
		return nil, false
	}
	hash := rest[slash+1:]
	if !bytes.Equal(rest[slash-uuidLen:slash], id[:]) || rest[slash-uuidLen-1] != '/' || len(hash) == 0 || len(hash) > maxHashLen {
		return nil, false
	}
	return hash, true
}
