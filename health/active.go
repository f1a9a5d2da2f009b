package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// maxSleep bounds one wait of Run, so a clock step (injected or real) is
// noticed within it.
const maxSleep = 30 * time.Second

// probeJob is one check to run: the node and what to send.
type probeJob struct {
	n             *Node
	address, host string
	// fpDue: a fingerprint is due whatever the verdict; lastVerdict lets
	// the probe take one when the verdict changes; prev is the last one.
	fpDue       bool
	lastVerdict State
	prev        *versionRecord
	fpBusy      bool // the last check's fingerprint is still being taken
}

// probeResult is a finished check on its way back to Run's loop.
type probeResult struct {
	n              *Node
	v              State
	reason         string
	started, ended time.Time
	// fpFollows: a fingerprint is being taken after this check and comes
	// as a result of its own, with version set and v zero.
	fpFollows bool
	version   *versionRecord
}

// Run probes every node on its own schedule until ctx is done, then waits
// for the probes in flight (each bounded by health.timeout) and returns
// nil. Only one Run may be active at a time.
func (c *Checker) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("health: Run is already running")
	}
	results := make(chan probeResult)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		// Results of probes cut short by ctx were dropped: free their
		// nodes, or a later Run would never check them again.
		c.mu.Lock()
		for _, n := range c.nodes {
			n.inFlight, n.fpInFlight = false, false
		}
		c.mu.Unlock()
		c.running.Store(false)
	}()
	timer := time.NewTimer(maxSleep)
	defer timer.Stop()
	var jobs []probeJob
	for {
		now := c.now()
		var next time.Time
		jobs, next = c.due(now, jobs[:0])
		for _, j := range jobs {
			wg.Add(1)
			go c.probe(ctx, j, results, &wg)
		}
		timer.Reset(min(max(next.Sub(now), 0), maxSleep))
		select {
		case <-ctx.Done():
			return nil
		case r := <-results:
			c.apply(r)
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// due ends expired ejections, marks the nodes whose check is due as in
// flight and returns them with the time of the next event.
func (c *Checker) due(now time.Time, jobs []probeJob) ([]probeJob, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := now.Add(maxSleep)
	for _, n := range c.nodes {
		old := n.m.effective()
		if n.m.expire(now) {
			c.log.Info("ejection ended", zap.String("node", n.target.Name))
			c.publish(n, old, now)
		}
		if n.m.ejected() && n.m.ejectedUntil.Before(next) {
			next = n.m.ejectedUntil
		}
		if n.inFlight {
			continue
		}
		if !now.Before(n.m.nextProbe) {
			n.inFlight = true
			jobs = append(jobs, probeJob{n: n, address: n.address, host: n.target.Host, lastVerdict: n.verdict, prev: n.version,
				fpDue: n.version == nil || n.fpChecks+1 >= c.params().fpEvery, fpBusy: n.fpInFlight})
			continue
		}
		if n.m.nextProbe.Before(next) {
			next = n.m.nextProbe
		}
	}
	return jobs, next
}

// probe runs one check and hands the verdict to Run's loop, then takes
// the fingerprint if one is wanted and hands that over as well: a slow
// or hostile asset answer never delays the verdict.
func (c *Checker) probe(ctx context.Context, j probeJob, results chan<- probeResult, wg *sync.WaitGroup) {
	defer wg.Done()
	p := c.params()
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	started := c.now()
	status, body, err := c.client.Get(pctx, j.address, j.host, p.path)
	cancel()
	r := probeResult{n: j.n, started: started, ended: c.now()}
	if err != nil {
		r.v, r.reason = Down, clean(errReason(err, p.timeout))
	} else {
		r.v, r.reason = judge(status, body, p.trustBypassed)
	}
	ac, _ := c.client.(AssetClient)
	r.fpFollows = ac != nil && wantFingerprint(p, j, r.v)
	select {
	case results <- r:
	case <-ctx.Done():
		return
	}
	if !r.fpFollows {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, p.fpTimeout)
	rec := takeFingerprint(fctx, ac, j.address, j.host, j.prev, c.now())
	cancel()
	select {
	case results <- probeResult{n: j.n, version: rec}:
	case <-ctx.Done():
	}
}

// wantFingerprint reports whether to take the node's code-version
// fingerprint after a check with verdict v: when one is due or v differs
// from the last verdict (an update makes the updated node report
// draining, a code sync brings it back up), only from a node that answers
// (a down node keeps its last one), and never two at once.
func wantFingerprint(p *params, j probeJob, v State) bool {
	return p.fpEvery > 0 && v != Down && !j.fpBusy && (j.fpDue || v != j.lastVerdict)
}

// errReason words a failed probe for /status.
func errReason(err error, timeout time.Duration) string {
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout() {
		return fmt.Sprintf("no answer within health.timeout (%s): %v", timeout, err)
	}
	return err.Error()
}

// apply feeds a finished check to the node's machine and schedules the
// next one from the start of this one, so the period does not drift by the
// check's latency.
func (c *Checker) apply(r probeResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := r.n
	if r.version != nil {
		n.fpInFlight = false
		if !n.removed {
			c.setVersion(n, r.version)
		}
		return
	}
	n.inFlight = false
	if n.removed {
		return
	}
	p := c.params()
	n.verdict = r.v
	n.fpChecks++
	n.fpInFlight = n.fpInFlight || r.fpFollows
	old := n.m.effective()
	n.m.probed(p, r.v, r.reason, r.started, r.ended)
	n.m.nextProbe = r.started.Add(jittered(n.m.delay(p), p.jitter, c.rnd))
	c.publish(n, old, r.ended)
}

// jittered shortens delay d by a random amount below min(jitter, d/2), so
// checks of many nodes and LBs drift apart without ever being later than
// the configured interval (detection time bounds stay valid).
func jittered(d, jitter time.Duration, rnd func(int64) int64) time.Duration {
	j := min(jitter, d/2)
	if j <= 0 {
		return d
	}
	r := rnd(int64(j))
	if r < 0 || r >= int64(j) {
		r = 0 // a broken Rand must not stretch or invert the schedule
	}
	return d - time.Duration(r)
}
