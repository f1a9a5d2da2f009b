package vip

import "slices"

// Adopt prepares m, built for a reloaded configuration and not run yet, to
// continue the instances of prev whose identity is unchanged: interface,
// virtual router ID and address family (name, priority, timers, VIPs and
// tracking may all change). Cancelling prev.Run then stops those instances
// without a priority-0 advert and without removing their VIPs, and m.Run,
// started after prev.Run has returned, resumes them: a master stays master
// (advert at once, VIPs kept, added ones added, dropped ones removed,
// GARPs sent); a backup starts as a new backup. Instances of prev without a
// successor stop as usual. Call Adopt once, before cancelling prev.Run.
func (m *Manager) Adopt(prev *Manager) {
	for _, in := range m.instances {
		for _, old := range prev.instances {
			if old.cfg.Interface == in.cfg.Interface && old.cfg.VirtualRouterID == in.cfg.VirtualRouterID &&
				old.is6 == in.is6 && !old.handover.Load() {
				old.handover.Store(true)
				in.from = old
				// An upgrade not committed yet binds the successor too.
				in.silent.Store(old.silent.Load())
				break
			}
		}
	}
}

// takeFrom reports whether this instance resumes a master handed over by
// Adopt; the old instance must have stopped.
func (in *instance) takeFrom() bool {
	return in.from != nil && State(in.from.final.Load()) == Master && in.from.holding.Load()
}

// vipsNotIn are in's VIPs that keep does not list (by prefix and device).
func (in *instance) vipsNotIn(keep []vipAddr) []vipAddr {
	var out []vipAddr
	for _, v := range in.vips {
		if !slices.ContainsFunc(keep, func(k vipAddr) bool { return k.prefix == v.prefix && k.dev == v.dev }) {
			out = append(out, v)
		}
	}
	return out
}
