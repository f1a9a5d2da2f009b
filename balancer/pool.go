package balancer

import (
	"bytes"
	"math/bits"
	"sync/atomic"

	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/valyala/fasthttp"
)

// NodeHealth is the view of package health the balancer needs per node
// (implemented by *health.Node). All three methods are on the hot path and
// must not allocate.
type NodeHealth interface {
	State() health.State
	// Operator is the operator's Maintenance or Draining, else Up.
	Operator() health.State
	Weight(now int64) int
	Observe(o health.Outcome, now int64)
}

// upstream is one node as the data plane sees it: its keep-alive client,
// health view and counters. It belongs to one runtime.
type upstream struct {
	name   string
	addr   string
	admin  bool
	weight int
	hash   uint64
	hc     *fasthttp.HostClient
	health NodeHealth
	ver    Versioned       // nil when health does not fingerprint
	rec    RequestRecorder // nil without metrics

	// maxConns is limits.max_conns_per_node: with as many requests in
	// flight the node is full and new requests wait in its queue.
	maxConns int64
	inflight atomic.Int64
	requests atomic.Uint64
	failures atomic.Uint64 // what passive health was told: transport failures, and 5xx with count_5xx
	// queueTimeouts counts requests answered 503 after waiting timeouts.queue.
	queueTimeouts atomic.Uint64
}

// pool is the set of nodes one route class may use, with its policy.
type pool struct {
	class Class
	nodes []*upstream
	sel   Selector
}

// Tiers of eligibility: a lower tier is used only while no node of a
// higher one is eligible.
const (
	tierNone = iota
	tierPreferred
	tierOther
	tierFallback
	numTiers
)

// reqKind is what node eligibility needs to know of a request besides its
// route class.
type reqKind uint8

const (
	// kindUpdate: /administration/update/*; execute and finalize only a
	// node on the code being installed may answer (FACTS 11.3).
	kindUpdate reqKind = 1 << iota
	// kindDrainRedirect: a GET that a node with an unfinished update
	// answers with 302 to the finalize page instead (FACTS 11.2).
	kindDrainRedirect
)

// tierOf decides what a node in state st may serve for class c (issue 3,
// FACTS 1.4, 11.2, 11.4):
//   - up nodes serve everything; for admin and setup, admin: true nodes first;
//   - draining (mosparo's update-not-finished) nodes get only what they
//     answer themselves, and that only while no up node exists: never the
//     GETs SetupSubscriber redirects to the finalize page (CSS, logo, UI,
//     statistics, setup ...); they are preferred for the update routes;
//   - setup (not installed) nodes get setup and admin traffic, and the static
//     assets the wizard's pages load, as a fallback;
//   - down and maintenance nodes get nothing new.
func tierOf(c Class, st health.State, admin bool, kind reqKind) int {
	switch st {
	case health.Up:
		if c == Admin || c == Setup {
			if kind == kindUpdate {
				// execute and finalize: a draining node runs the new code.
				return tierOther
			}
			if admin {
				return tierPreferred
			}
			return tierOther
		}
		return tierPreferred
	case health.Draining:
		switch {
		case kind&kindDrainRedirect != 0:
			return tierNone
		case kind&kindUpdate != 0:
			return tierPreferred
		}
		return tierFallback
	case health.Setup:
		if kind&kindUpdate == 0 && (c == Admin || c == Setup || c == Static) {
			return tierFallback
		}
	}
	return tierNone
}

// fill computes the eligible mask (best non-empty tier, minus the nodes
// already tried) and effective weights into c.
func (p *pool) fill(c *candidates, tried uint64, now int64, kind reqKind) {
	var masks [numTiers]uint64
	for i, u := range p.nodes {
		st := health.Up
		w := u.weight
		if u.health != nil {
			st = u.health.State()
			w = u.health.Weight(now)
			if st == health.Draining && u.health.Operator() == health.Draining {
				// An operator's drain: no new requests at all (in-flight
				// ones finish), unlike mosparo's own update draining.
				st = health.Maintenance
			}
		}
		c.weights[i] = int32(w)
		if tried&(1<<uint(i)) != 0 {
			continue
		}
		masks[tierOf(p.class, st, u.admin, kind)] |= 1 << uint(i)
	}
	c.nodes = p.nodes
	c.mask, c.full = 0, 0
	for t := tierPreferred; t < numTiers; t++ {
		if masks[t] != 0 {
			c.mask = masks[t]
			break
		}
	}
	// A node with every connection in use would make the request wait in
	// its queue while another may be free: like HAProxy, choose among the
	// nodes that are not full, and queue only when all are.
	for m := c.mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if p.nodes[i].inflight.Load() >= p.nodes[i].maxConns {
			c.full |= 1 << uint(i)
		}
	}
	if c.full != c.mask {
		c.mask &^= c.full
	}
}

// byName returns the index of the node called name, or -1.
func (p *pool) byName(name []byte) int {
	for i, u := range p.nodes {
		if string(name) == u.name {
			return i
		}
	}
	return -1
}

var (
	pUpdate       = []byte("/administration/update/")
	pSubmitToken  = []byte("/api/v1/frontend/request-submit-token")
	pCheckForm    = []byte("/api/v1/frontend/check-form-data")
	pVerify       = []byte("/api/v1/verification/verify")
	pUpdateExempt = [][]byte{
		[]byte("/administration/update/execute"),
		[]byte("/administration/update/execute/update"),
		[]byte("/administration/update/finalize"),
	}
)

// kindOf classifies a request with canonical path for node eligibility.
func kindOf(c Class, get bool, path []byte) reqKind {
	var k reqKind
	if c == Admin && bytes.HasPrefix(path, pUpdate) {
		k |= kindUpdate
	}
	if get && drainRedirects(c, path) {
		k |= kindDrainRedirect
	}
	return k
}

// drainRedirects reports whether SetupSubscriber sends a GET for path to the
// finalize page while an update is pending: every route but the nine it
// lists (SetupSubscriber.php, mosparo 1.5.4). Static files never reach PHP;
// "statistic_api_daily" in that list names no route, so statistics GETs are
// redirected too. A HEAD is not redirected (the check is for "GET" only).
func drainRedirects(c Class, path []byte) bool {
	switch c {
	case Static, Health, Cron:
		return false
	case Frontend:
		return !bytes.Equal(path, pSubmitToken) && !bytes.Equal(path, pCheckForm)
	case API:
		return !bytes.Equal(path, pVerify)
	case Admin:
		for _, p := range pUpdateExempt {
			if bytes.Equal(path, p) {
				return false
			}
		}
	}
	return true
}

// anyDraining reports whether a node of the pool reports mosparo's
// unfinished update.
func (p *pool) anyDraining() bool {
	for _, u := range p.nodes {
		if u.health != nil && u.health.State() == health.Draining && u.health.Operator() != health.Draining {
			return true
		}
	}
	return false
}
