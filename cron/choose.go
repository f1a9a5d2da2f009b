package cron

import (
	"cmp"
	"slices"
)

// Candidate is one mosparo node as the cron sees it.
type Candidate struct {
	// Name identifies the node in logs and /status; the stable order.
	Name string
	// Address is host:port of the node's own HTTP listener (not the LB's).
	Address string
	// Host is the node's host: setting; empty means the address.
	Host string
	// Admin nodes are preferred over others (the node operators sync from).
	Admin bool
	// Up: health says the node serves everything. Draining and setup
	// nodes are not Up: their code may not match the database (FACTS 1.4).
	Up bool
}

// Choose orders the nodes a call may go to: only Up ones, the preferred
// node first, then admin nodes, then the rest, each group by name (then
// address). The call goes to the first; the others are only tried when a
// connection to it could not even be opened. Every LB with the same view
// picks the same node, so a brief double leader (split brain) calls one
// node twice and mosparo's per-node lock answers 425 or 429 (FACTS 6.1).
func Choose(nodes []Candidate, preferred string) []Candidate {
	out := make([]Candidate, 0, len(nodes))
	for _, n := range nodes {
		if n.Up {
			out = append(out, n)
		}
	}
	rank := func(n Candidate) int {
		switch {
		case preferred != "" && n.Name == preferred:
			return 0
		case n.Admin:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(out, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Address, b.Address))
	})
	return out
}
