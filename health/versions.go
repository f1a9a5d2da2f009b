package health

import (
	"slices"
	"strings"

	"go.uber.org/zap"
)

// Versions is which code versions the nodes run, for /status: a copy,
// safe to keep.
type Versions struct {
	// Mixed is true while nodes run different versions: the source code
	// of a new release was not synced onto every node (FACTS 11.3), and
	// the update routes go only to the nodes matching the update node.
	Mixed bool `json:"mixed"`
	// Nodes lists the node names by fingerprint; nodes without one are
	// under "unknown".
	Nodes map[string][]string `json:"nodes"`
}

// unknownVersion is the Versions.Nodes key of nodes without a fingerprint.
const unknownVersion = "unknown"

// Versions returns the versions the nodes run now.
func (c *Checker) Versions() Versions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.versions()
}

// setVersion stores a new fingerprint record of n, publishes it to the
// data plane and logs once whenever the pool turns mixed, changes while
// mixed, or runs one version again. Caller holds c.mu.
func (c *Checker) setVersion(n *Node, rec *versionRecord) {
	n.fpChecks = 0
	old := n.Version()
	n.version = rec
	if rec.fp != old {
		f := rec.fp
		n.fp.Store(&f)
		c.log.Info("node version fingerprint", zap.String("node", n.target.Name), zap.Stringer("from", old),
			zap.Stringer("to", rec.fp), zap.String("error", rec.err))
	}
	v := c.versions()
	key := versionsKey(v)
	if key == c.versionsLogged {
		return
	}
	wasMixed := c.versionsMixed
	c.versionsLogged, c.versionsMixed = key, v.Mixed
	switch {
	case v.Mixed:
		c.log.Warn("nodes run different mosparo code versions: sync the source code onto every node",
			zap.Any("versions", v.Nodes))
	case wasMixed:
		c.log.Info("nodes run one mosparo code version again", zap.Any("versions", v.Nodes))
	}
}

// versions computes Versions. Caller holds c.mu.
func (c *Checker) versions() Versions {
	v := Versions{Nodes: map[string][]string{}}
	known := 0
	for _, n := range c.nodes {
		k := n.Version().String()
		if k == "" {
			k = unknownVersion
		} else if len(v.Nodes[k]) == 0 {
			known++
		}
		v.Nodes[k] = append(v.Nodes[k], n.target.Name)
	}
	v.Mixed = known > 1
	return v
}

// versionsKey is a canonical text of the mixed versions, so each change is
// logged once; "" when they are not mixed.
func versionsKey(v Versions) string {
	if !v.Mixed {
		return ""
	}
	var b strings.Builder
	keys := make([]string, 0, len(v.Nodes))
	for k := range v.Nodes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strings.Join(v.Nodes[k], ","))
		b.WriteByte(';')
	}
	return b.String()
}
