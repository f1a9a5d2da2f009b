package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/mosparo-lb/mosparo-lb/vip"
	"go.uber.org/zap"
)

// VRRPHandover is the new process's side of a binary upgrade's VRRP
// handover (docs/operations.md, "Restarts and upgrades"); cmd/mosparo-lb
// implements it over internal/handoff's conversation with the parent.
type VRRPHandover interface {
	// States waits for the instance states the parent hands over
	// (vip.EncodeHandover).
	States(ctx context.Context) ([]byte, error)
	// Answer sends the states of the instances this process took over,
	// once they run, and waits until the parent has let go of them (nil)
	// or has gone away.
	Answer(ctx context.Context, answer []byte) error
}

// adoptVRRP is the part that, in a process started by an upgrade, starts
// the VRRP instances once the parent's states arrived (the data plane
// serves already), answers once they run and commits them when the parent
// has let go. Stopped before that, the adopted instances give up nothing:
// the parent still holds their VIPs.
func (d *Daemon) adoptVRRP(ctx context.Context) error {
	b, err := d.opts.Handover.States(ctx)
	var states []vip.HandoverState
	if err == nil {
		states, err = vip.DecodeHandover(b)
	}
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		d.log.Warn("no VRRP state handed over by the upgrading process; VRRP instances start as usual", zap.Error(err))
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.vrrpHeld = false
	g := d.cur.Load()
	m := g.vips
	var took []vip.HandoverState
	if m != nil {
		took = m.AdoptStates(states)
	}
	d.startParts(g, true)
	d.mu.Unlock()
	d.log.Info("upgrade: VRRP instances adopted from the old process", zap.Any("states", took))
	var answer []vip.HandoverState
	if m != nil {
		if m.Started(ctx) != nil {
			return nil
		}
		answer = m.States(took)
	}
	enc, err := vip.EncodeHandover(answer)
	if err == nil {
		err = d.opts.Handover.Answer(ctx, enc)
	}
	if ctx.Err() != nil {
		return nil
	}
	d.mu.Lock()
	if cur := d.cur.Load(); cur.vips != nil {
		cur.vips.Commit() // a reload meanwhile passed the adoption on
	}
	if m != nil {
		m.Commit()
	}
	d.mu.Unlock()
	if err != nil {
		d.log.Warn("upgrade: the old process went away without confirming; its VRRP instances are ours", zap.Error(err))
	} else {
		d.log.Info("upgrade: the old process let go of its VRRP instances", zap.Any("states", answer))
	}
	<-ctx.Done()
	return nil
}

// VRRPHandoverStates encodes the current state of every VRRP instance for
// the process an upgrade starts (none without vrrp.instances); the
// instances keep running until ReleaseVRRP.
func (d *Daemon) VRRPHandoverStates() ([]byte, []vip.HandoverState, error) {
	var states []vip.HandoverState
	if g := d.cur.Load(); g != nil && g.vips != nil {
		states = g.vips.HandoverStates()
	}
	b, err := vip.EncodeHandover(states)
	return b, states, err
}

// ErrNotTakenOver: the new process did not take a master instance over
// as master; the upgrade must not go on.
var ErrNotTakenOver = errors.New("daemon: the new process is not master of an instance this process is master of")

// ReleaseVRRP checks the new process's answer and lets go of the instances
// it took over: when Run ends they stop without a priority-0 advert and
// leave their VIPs to the new process. Every instance this process is
// master of and the new one adopted must be master there too; otherwise
// nothing is released and the error wraps ErrNotTakenOver. Instances the
// new process did not adopt (its configuration dropped them) stop as
// usual. ReclaimVRRP undoes a release.
func (d *Daemon) ReleaseVRRP(answer []byte) ([]vip.HandoverState, error) {
	took, err := vip.DecodeHandover(answer)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.cur.Load()
	if g == nil || g.vips == nil {
		return took, nil
	}
	for _, mine := range g.vips.HandoverStates() {
		if mine.State != vip.Master {
			continue
		}
		for _, t := range took {
			if t.Interface == mine.Interface && t.VRID == mine.VRID && t.IPv6 == mine.IPv6 && t.State != vip.Master {
				return nil, fmt.Errorf("%w: %s is %s there", ErrNotTakenOver, mine.Name, t.State)
			}
		}
	}
	g.vips.Release(took)
	return took, nil
}

// ReclaimVRRP undoes ReleaseVRRP when the new process is gone after all.
func (d *Daemon) ReclaimVRRP() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if g := d.cur.Load(); g != nil && g.vips != nil {
		g.vips.Reclaim()
	}
}
