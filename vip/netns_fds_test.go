//go:build linux

package vip

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
)

// releaseBound is how long an LB out of descriptors may take to give its
// VIP up once told to: a tracking poll (100 ms) and a netlink round trip,
// or a peer's preemption after an advert (100 ms here); the rest is slack
// for a loaded machine.
const releaseBound = 5 * time.Second

// TestNetnsReleaseWithoutDescriptors: an LB that has used up its file
// descriptors (EMFILE) must still give its VIP up, whichever way it is told
// to (issue 13): removing an address must not need a new descriptor.
// Before, every netlink call opened a socket of its own, so the instance
// went to FAULT or BACKUP but kept the address, and both hosts carried
// the VIP.
func TestNetnsReleaseWithoutDescriptors(t *testing.T) {
	cases := []struct {
		name  string
		extra []string
		peer  bool   // b runs a backup of priority 100
		log   string // A's log says so after the release
		// release asks lbA to give the VIP up.
		release func(t *testing.T, lbA *lb)
	}{
		{name: "track_pool fault", extra: []string{"track_pool: {mode: fault}"}, log: `"to": "FAULT"`,
			release: func(t *testing.T, lbA *lb) { lbA.setHealthy(false) }},
		{name: "preempted after track_pool lowered the priority", peer: true, log: `"to": "BACKUP"`,
			release: func(t *testing.T, lbA *lb) { lbA.setHealthy(false) }},
		{name: "graceful stop", peer: true, log: "vrrp instance stopped",
			release: func(t *testing.T, lbA *lb) { lbA.stop() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab4(t)
			a, b := l.Hosts["a"], l.Hosts["b"]
			lbA := startLB(t, a, instanceYAML(150, []string{"10.99.0.10/24"}, tc.extra...))
			lbA.waitState("MASTER", 10*time.Second)
			var lbB *lb
			if tc.peer {
				lbB = startLB(t, b, instanceYAML(100, []string{"10.99.0.10/24"}))
				lbB.waitState("BACKUP", 10*time.Second)
			}
			lbA.exhaustFDs()
			tc.release(t, lbA)
			var took time.Duration
			if tc.peer {
				took = waitOnly(t, releaseBound, vip4test, b, a)
			} else {
				took = netnstest.Eventually(t, releaseBound, "A gives the VIP up", func() bool { return !holds(a, vip4test)() })
			}
			t.Logf("A out of descriptors gave the VIP up in %s", took)
			wantLog(t, lbA.proc, tc.log)
			if out := lbA.proc.Out.String(); strings.Contains(out, "removing VIPs failed") {
				t.Errorf("A's log reports a failed removal:\n%s", out)
			}
			if !lbA.proc.Exited() {
				lbA.stop()
			}
		})
	}
}

// exhaustFDs makes the helper use up its descriptors and waits until it
// says so.
func (n *lb) exhaustFDs() {
	n.t.Helper()
	if err := os.WriteFile(n.exhaust, nil, 0o644); err != nil {
		n.t.Fatal(err)
	}
	wantLog(n.t, n.proc, "descriptors exhausted")
}
