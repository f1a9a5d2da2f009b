package vip

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// simNode is one router of the in-memory network.
type simNode struct {
	m       *Machine
	addr    netip.Addr
	up      bool
	hasVIP  bool
	garps   int
	history []State
}

type simMsg struct {
	to       int
	deliver  time.Time
	from     netip.Addr
	priority uint8
	interval time.Duration
}

// simNet connects machines with a fixed latency; cut drops traffic between
// two nodes, like raft's test network.
type simNet struct {
	t       *testing.T
	nodes   []*simNode
	now     time.Time
	latency time.Duration
	cut     map[[2]int]bool
	queue   []simMsg
}

func newSimNet(t *testing.T, cfgs ...MachineConfig) *simNet {
	n := &simNet{t: t, now: t0, latency: time.Millisecond, cut: map[[2]int]bool{}}
	for i, c := range cfgs {
		c.Addr = netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})
		n.nodes = append(n.nodes, &simNode{m: NewMachine(c), addr: c.Addr})
	}
	return n
}

func (n *simNet) start(i int) { n.nodes[i].up = true; n.step(i, Event{Kind: EventStartup}) }
func (n *simNet) stop(i int)  { n.step(i, Event{Kind: EventShutdown}); n.nodes[i].up = false }

// crash stops a node without a word; its VIPs stay (FACTS 5 "kill").
func (n *simNet) crash(i int) { n.nodes[i].up = false }

func (n *simNet) partition(a, b int, cut bool) { n.cut[[2]int{a, b}], n.cut[[2]int{b, a}] = cut, cut }

func (n *simNet) step(i int, ev Event) {
	nd := n.nodes[i]
	if !nd.up {
		return
	}
	before := nd.m.State()
	for _, a := range nd.m.Step(ev, n.now) {
		switch a.Kind {
		case ActionSendAdvert:
			for j := range n.nodes {
				if j != i && !n.cut[[2]int{i, j}] {
					n.queue = append(n.queue, simMsg{to: j, deliver: n.now.Add(n.latency), from: nd.addr, priority: a.Priority, interval: nd.m.cfg.AdvertInterval})
				}
			}
		case ActionAddVIPs:
			nd.hasVIP = true
		case ActionRemoveVIPs:
			nd.hasVIP = false
		case ActionGARP:
			nd.garps++
		}
	}
	if s := nd.m.State(); s != before {
		nd.history = append(nd.history, s)
	}
}

// run advances simulated time to until, delivering adverts and firing timers in order.
func (n *simNet) run(d time.Duration) {
	until := n.now.Add(d)
	for {
		next, who, msg := until, -1, -1
		for i, nd := range n.nodes {
			if dl := nd.m.Deadline(); nd.up && !dl.IsZero() && dl.Before(next) {
				next, who = dl, i
			}
		}
		for k, m := range n.queue {
			if m.deliver.Before(next) || m.deliver.Equal(next) && who < 0 {
				next, who, msg = m.deliver, -1, k
			}
		}
		if who < 0 && msg < 0 {
			n.now = until
			return
		}
		n.now = next
		if msg >= 0 {
			m := n.queue[msg]
			n.queue = append(n.queue[:msg], n.queue[msg+1:]...)
			n.step(m.to, Event{Kind: EventAdvert, From: m.from, Priority: m.priority, Interval: m.interval})
		} else {
			n.step(who, Event{Kind: EventTimer})
		}
	}
}

func (n *simNet) masters() []int {
	var ms []int
	for i, nd := range n.nodes {
		if nd.up && nd.m.State() == Master {
			ms = append(ms, i)
		}
	}
	return ms
}

func (n *simNet) wantMaster(i int) {
	n.t.Helper()
	if ms := n.masters(); len(ms) != 1 || ms[0] != i {
		n.t.Fatalf("at +%s masters = %v, want [%d]; %s", n.now.Sub(t0), ms, i, n)
	}
}

func (n *simNet) String() string {
	s := ""
	for i, nd := range n.nodes {
		s += fmt.Sprintf("[%d %s prio %d up %v vip %v] ", i, nd.m.State(), nd.m.Priority(), nd.up, nd.hasVIP)
	}
	return s
}

func node(prio uint8, ival time.Duration) MachineConfig {
	return MachineConfig{Priority: prio, AdvertInterval: ival, Preempt: true}
}

func TestNetworkElectionAndFailover(t *testing.T) {
	n := newSimNet(t, node(150, time.Second), node(100, time.Second), node(50, time.Second))
	for i := range n.nodes {
		n.start(i)
	}
	n.run(10 * time.Second)
	n.wantMaster(0)
	if n.nodes[1].history[len(n.nodes[1].history)-1] != Backup || n.nodes[1].hasVIP {
		t.Fatalf("node 1 %v", n)
	}
	// Crash: the highest backup times out first (skew), Master_Down_Interval
	// after the last advert it heard, i.e. within [MDI - interval, MDI] of the crash.
	n.crash(0)
	n.run(2*time.Second + ms(608))
	if len(n.masters()) != 0 {
		t.Fatalf("takeover before Master_Down_Interval: %s", n)
	}
	n.run(time.Second + ms(2))
	n.wantMaster(1)
	n.run(5 * time.Second)
	n.wantMaster(1)
	if n.nodes[2].m.State() != Backup {
		t.Errorf("node 2 %s, want BACKUP", n.nodes[2].m.State())
	}
}

func TestNetworkGracefulHandover(t *testing.T) {
	n := newSimNet(t, node(150, 100*time.Millisecond), node(100, 100*time.Millisecond))
	n.start(0)
	n.start(1)
	n.run(2 * time.Second)
	n.wantMaster(0)
	n.stop(0)
	if n.nodes[0].hasVIP {
		t.Fatal("stopped master kept its VIP")
	}
	// Priority 0 -> the backup takes over after Skew_Time (61 ms) + latency.
	n.run(ms(60))
	if len(n.masters()) != 0 {
		t.Fatalf("takeover before Skew_Time: %s", n)
	}
	n.run(ms(3))
	n.wantMaster(1)
}

func TestNetworkPreemption(t *testing.T) {
	n := newSimNet(t, node(150, time.Second), node(100, time.Second))
	n.start(1)
	n.run(5 * time.Second)
	n.wantMaster(1)
	n.start(0) // returns: waits MDI(150) = 3.414 s ignoring the lower master, then preempts
	n.run(3 * time.Second)
	n.wantMaster(1)
	n.run(time.Second)
	n.wantMaster(0)
	if n.nodes[1].hasVIP || !n.nodes[0].hasVIP {
		t.Fatalf("VIPs not moved: %s", n)
	}
}

func TestNetworkNopreempt(t *testing.T) {
	hi := node(150, time.Second)
	hi.Preempt = false
	n := newSimNet(t, hi, node(100, time.Second))
	n.start(1)
	n.run(5 * time.Second)
	n.start(0)
	n.run(30 * time.Second)
	n.wantMaster(1)
}

func TestNetworkSplitBrainHeals(t *testing.T) {
	lower := node(100, time.Second)
	lower.HigherPrioSendAdvert = true
	n := newSimNet(t, node(150, time.Second), lower, node(50, time.Second))
	for i := range n.nodes {
		n.start(i)
	}
	n.run(5 * time.Second)
	n.wantMaster(0)
	// Node 0 is cut off from the others: node 1 takes over, two masters.
	n.partition(0, 1, true)
	n.partition(0, 2, true)
	n.run(10 * time.Second)
	if ms := n.masters(); len(ms) != 2 {
		t.Fatalf("masters = %v, want a split brain of two; %s", ms, n)
	}
	garps := n.nodes[0].garps
	n.partition(0, 1, false)
	n.partition(0, 2, false)
	// One advert interval later the lower master has yielded, and the
	// higher one has answered its lower advert with a GARP burst, whichever
	// advert crossed first: the loser advertises once as it yields.
	n.run(1100 * time.Millisecond)
	n.wantMaster(0)
	if n.nodes[0].garps == garps {
		t.Error("higher master sent no GARP while healing the split brain")
	}
	if n.nodes[1].hasVIP {
		t.Error("lower master kept its VIP")
	}
}

func TestNetworkEqualPriorityTieBreak(t *testing.T) {
	n := newSimNet(t, node(100, time.Second), node(100, time.Second))
	n.start(0)
	n.start(1)
	n.run(10 * time.Second)
	n.wantMaster(1) // 10.0.0.2 > 10.0.0.1
}

func TestNetworkBackupAdoptsMasterInterval(t *testing.T) {
	// The backup is configured at 1 s but the master advertises every 100 ms:
	// after a crash it takes over within MDI(100 @ 100 ms) = 361 ms.
	n := newSimNet(t, node(150, 100*time.Millisecond), node(100, time.Second))
	n.start(0)
	n.start(1)
	n.run(5 * time.Second)
	n.wantMaster(0)
	n.crash(0)
	n.run(ms(362))
	n.wantMaster(1)
}

func TestNetworkTrackingHandover(t *testing.T) {
	n := newSimNet(t, node(150, 100*time.Millisecond), node(100, 100*time.Millisecond))
	n.start(0)
	n.start(1)
	n.run(2 * time.Second)
	n.wantMaster(0)
	n.step(0, Event{Kind: EventTrack, Penalty: 253})
	n.run(ms(400)) // backup ignores the now lower adverts, preempts after its MDI
	n.wantMaster(1)
	n.step(0, Event{Kind: EventTrack})
	n.run(time.Second)
	n.wantMaster(0)
	n.step(0, Event{Kind: EventTrack, Fault: true})
	if n.nodes[0].m.State() != Fault || n.nodes[0].hasVIP {
		t.Fatalf("fault: %s", n)
	}
	n.run(ms(100))
	n.wantMaster(1)
}
