package health

import (
	"time"

	"go.uber.org/zap"
)

// ejectionLength is base_ejection times the streak, capped at max_ejection.
func ejectionLength(p *params, streak int) time.Duration {
	if streak < 1 {
		streak = 1
	}
	if p.baseEject <= 0 || time.Duration(streak) > p.maxEject/p.baseEject {
		return p.maxEject
	}
	return min(p.baseEject*time.Duration(streak), p.maxEject)
}

// ejectionAllowed decides whether one more node of a pool of total nodes
// may be ejected while ejected nodes already are and othersUp other nodes
// are up. At most pct percent of the pool is ejected at once, except that
// one node always may be (Envoy's max_ejection_percent rule); but the last
// up node never is: with nothing left to serve, a doubtful node beats a 503.
func ejectionAllowed(total, ejected, othersUp, pct int) bool {
	if othersUp < 1 {
		return false
	}
	limit := max(total*pct/100, 1)
	return ejected < limit
}

// trip is called by the one Observe that saw the failure threshold. It
// ejects n when the pool allows it; otherwise it only makes the active
// checks of n fast, so they confirm or clear the suspicion (HAProxy's
// on-error fastinter).
func (c *Checker) trip(n *Node, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n.fails.Store(0)
	old := n.m.effective()
	if n.removed || old == Down || old == Maintenance {
		return
	}
	p := c.params()
	ejected, othersUp := 0, 0
	for _, o := range c.nodes {
		if o.m.ejected() {
			ejected++
		}
		if o != n && o.m.effective() == Up {
			othersUp++
		}
	}
	if next := now.Add(p.fast); next.Before(n.m.nextProbe) {
		n.m.nextProbe = next
	}
	c.poke()
	if !ejectionAllowed(len(c.nodes), ejected, othersUp, p.maxEjectPct) {
		// Log once per suspicion: under heavy failing traffic a refused
		// trip repeats every few requests until the next check.
		if !n.m.tripped {
			c.log.Warn("passive ejection refused", zap.String("node", n.target.Name),
				zap.Int("ejected", ejected), zap.Int("others_up", othersUp))
		}
		n.m.tripped = true
		return
	}
	n.m.eject(p, now)
	c.log.Warn("node ejected", zap.String("node", n.target.Name), zap.Int("failures", p.failures),
		zap.Time("until", n.m.ejectedUntil), zap.Int("ejections", n.m.ejections))
	c.publish(n, old, now)
}
