package balancer

import (
	"net/netip"

	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/valyala/fasthttp"
)

// Versioned is the view of a node's code version the update routes need
// (implemented by *health.Node). A NodeHealth without it leaves the update
// routes to the tiers alone.
type Versioned interface {
	// Version is the node's code-version fingerprint, zero while unknown.
	Version() health.Fingerprint
}

// The answers to an update route whose node cannot be chosen safely: each
// says what the operator must fix.
var (
	bodyUpdateNodeDown = errorBody("balancing.update_node of the load balancer names a node that is down, in maintenance or unknown: " +
		"bring it back, or set balancing.update_node to the node with the new mosparo code.")
	bodyUpdateNoVersion = errorBody("The load balancer does not know the code version of every mosparo node it would choose from yet " +
		"(see version and version_error in its /status): wait a few seconds, and check that /build/entrypoints.json " +
		"and the files it names are served on every node.")
	bodyUpdateMixed = errorBody("The mosparo nodes run different code versions and none is chosen for updates: " +
		"sync the source code onto every node, or mark the node with the new code admin: true or " +
		"set balancing.update_node to it in the load balancer's configuration.")
)

// updateExcluded returns the nodes of p that must not get an update route
// (/administration/update/*), or the 503 body when no node can be chosen
// safely. finalize writes the answering node's own code version into the
// shared configuration (FACTS 11.3): a node on other code than the one the
// update is for would write its version back. So update routes go only to
// nodes whose fingerprint equals the update node's: balancing.update_node,
// else the admin: true nodes, else every node, as long as the nodes
// consulted answer and agree.
func (rt *Runtime) updateExcluded(p *pool) (uint64, []byte) {
	if !rt.versionRouting {
		return 0, nil
	}
	ref, body := rt.updateVersion()
	if body != nil {
		return 0, body
	}
	if ref.IsZero() {
		return ^uint64(0), nil // no node answers: the usual 503
	}
	var excluded uint64
	for i, u := range p.nodes {
		if u.version() != ref {
			excluded |= 1 << uint(i)
		}
	}
	return excluded, nil
}

// updateVersion is the fingerprint the update routes follow (see
// updateExcluded); zero with a nil body when no node answers at all.
func (rt *Runtime) updateVersion() (health.Fingerprint, []byte) {
	if rt.updateNode != "" {
		for _, u := range rt.nodes {
			if u.name != rt.updateNode {
				continue
			}
			if !u.answers() {
				break
			}
			if v := u.version(); !v.IsZero() {
				return v, nil
			}
			return health.Fingerprint{}, bodyUpdateNoVersion
		}
		return health.Fingerprint{}, bodyUpdateNodeDown
	}
	if v, body, found := agreedVersion(rt.nodes, true); found || body != nil {
		return v, body
	}
	v, body, _ := agreedVersion(rt.nodes, false)
	return v, body
}

// agreedVersion is the one fingerprint of the nodes that answer (the admin
// ones only when adminOnly), with found false when none answers; a node
// without a fingerprint or a second fingerprint gives the body to answer.
func agreedVersion(nodes []*upstream, adminOnly bool) (v health.Fingerprint, body []byte, found bool) {
	for _, u := range nodes {
		if adminOnly && !u.admin || !u.answers() {
			continue
		}
		switch uv := u.version(); {
		case uv.IsZero():
			return health.Fingerprint{}, bodyUpdateNoVersion, true
		case !found:
			v, found = uv, true
		case uv != v:
			return health.Fingerprint{}, bodyUpdateMixed, true
		}
	}
	return v, nil, found
}

// answers reports whether the node can answer update routes: up or with
// an unfinished update, and no operator state. A node that is not
// installed has no say: it redirects everything to its setup wizard.
func (u *upstream) answers() bool {
	if u.health == nil {
		return true
	}
	switch u.health.State() {
	case health.Up, health.Draining:
		return u.health.Operator() == health.Up
	}
	return false
}

// version is the node's fingerprint; zero without a Versioned health view.
func (u *upstream) version() health.Fingerprint {
	if u.ver == nil {
		return health.Fingerprint{}
	}
	return u.ver.Version()
}

// serveStale answers a /resources GET that no node can take while an
// update is pending from the CSS edge, stale entries allowed, rather than
// with a 503 (FACTS 11.2: the draining nodes would answer 302 to an HTML
// page). It reads the request as it would go to a node, forwarded headers
// included, so the 307's URL is the one a node would build.
func (rt *Runtime) serveStale(ctx *fasthttp.RequestCtx, st *reqState, peer netip.Addr) bool {
	sc, ok := rt.deps.CSS.(StaleEdgeCache)
	if !ok {
		return false
	}
	scheme, host, prefix, buf := rt.fwd.clientFacing(&ctx.Request.Header, peer, ctx.IsTLS(), st.buf)
	st.buf = buf
	return sc.ServeStale(ctx, scheme, host, prefix)
}
