package balancer

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// NodeStats lists the runtime's nodes in order with what the runtime was
// built with, counters from zero, and Queued as the in-flight requests
// beyond max_conns_per_node; /status serves it under these JSON names.
func TestNodeStats(t *testing.T) {
	specs := []NodeSpec{
		{Name: "n1", Address: "127.0.0.1:1", Weight: 100},
		{Name: "admin", Address: "[::1]:2", Weight: 0, Admin: true},
		{Name: "n3", Address: "192.0.2.3:80", Weight: 7},
	}
	rt, err := NewRuntime(testConfig(t, baseYAML+"limits: {max_conns_per_node: 4}\n"), specs, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(rt)
	got := s.NodeStats()
	want := []NodeStat{
		{Name: "n1", Address: "127.0.0.1:1", Weight: 100},
		{Name: "admin", Address: "[::1]:2", Admin: true},
		{Name: "n3", Address: "192.0.2.3:80", Weight: 7},
	}
	if !slices.Equal(got, want) {
		t.Errorf("NodeStats() = %+v, want %+v", got, want)
	}

	for _, tc := range []struct {
		inflight, queued int64
	}{{0, 0}, {3, 0}, {4, 0}, {5, 1}, {1004, 1000}} {
		rt.nodes[0].inflight.Store(tc.inflight)
		if st := s.NodeStats()[0]; st.InFlight != tc.inflight || st.Queued != tc.queued {
			t.Errorf("in flight %d with max 4: InFlight, Queued = %d, %d; want %d, %d", tc.inflight, st.InFlight, st.Queued, tc.inflight, tc.queued)
		}
	}
	rt.nodes[0].inflight.Store(0)

	u := rt.nodes[2]
	u.requests.Store(10)
	u.failures.Store(3)
	u.queueTimeouts.Store(2)
	b, err := json.Marshal(s.NodeStats()[2])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"n3","address":"192.0.2.3:80","admin":false,"weight":7,"in_flight":0,"requests":10,"failures":3,"queued":0,"queue_timeouts":2}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

// The counters belong to a runtime: a reload's new one starts from zero,
// with the new node set.
func TestNodeStatsAfterSwap(t *testing.T) {
	n1, n2 := startEcho(t, "n1"), startEcho(t, "n2")
	cfg := testConfig(t, baseYAML)
	srv, addr := startLB(t, cfg, nodesOf(n1))
	for range 3 {
		if code, _, err := fasthttp.Get(nil, "http://"+addr+"/login"); err != nil || code != 200 {
			t.Fatalf("GET = %d, %v", code, err)
		}
	}
	if st := srv.NodeStats(); len(st) != 1 || st[0].Requests != 3 {
		t.Fatalf("NodeStats() = %+v, want n1 with 3 requests", st)
	}
	rt, err := NewRuntime(cfg, nodesOf(n1, n2), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	swapRuntime(t, srv, rt)
	if st := srv.NodeStats(); len(st) != 2 || st[0].Name != "n1" || st[1].Name != "n2" || st[0].Requests != 0 || st[1].Requests != 0 {
		t.Errorf("NodeStats() after the swap = %+v, want n1 and n2 from zero", st)
	}
}

// Under concurrent traffic (a slow node behind a small connection limit,
// so requests queue, and a dead node, so attempts fail and are retried),
// every snapshot is consistent in itself: a failure or queue timeout is
// never counted ahead of its request, Queued is what InFlight says, and
// no counter goes back. The totals add up once the traffic ends. Run with
// -race: NodeStats reads what request goroutines write.
func TestNodeStatsUnderConcurrentTraffic(t *testing.T) {
	slow := startEcho(t, "slow")
	slow.delay.Store(int64(2 * time.Millisecond))
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	nodes := append(nodesOf(slow), NodeSpec{Name: "dead", Address: deadAddr, Weight: 100})
	cfg := testConfig(t, listenYAML+`
timeouts: {connect: 1s, request: 20s, queue: 20s}
limits: {max_conns_per_node: 2}
balancing: {policy: round_robin, retries: 1}
`)
	srv, addr := startLB(t, cfg, nodes)

	const clients, each = 8, 25
	stop := make(chan struct{})
	var checked int
	var problems []string
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		prev := map[string]NodeStat{}
		for {
			for _, st := range srv.NodeStats() {
				checked++
				p := prev[st.Name]
				switch {
				case st.Failures > st.Requests || st.QueueTimeouts > st.Requests:
					problems = append(problems, fmt.Sprintf("%s: failures %d, queue timeouts %d of %d requests", st.Name, st.Failures, st.QueueTimeouts, st.Requests))
				case st.InFlight < 0 || st.Queued != max(st.InFlight-2, 0):
					problems = append(problems, fmt.Sprintf("%s: in flight %d, queued %d with max 2", st.Name, st.InFlight, st.Queued))
				case st.Requests < p.Requests || st.Failures < p.Failures || st.QueueTimeouts < p.QueueTimeouts:
					problems = append(problems, fmt.Sprintf("%s went back: %+v after %+v", st.Name, st, p))
				}
				prev[st.Name] = st
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			c := &fasthttp.Client{}
			for range each {
				if code, _, err := c.Get(nil, "http://"+addr+"/login"); err != nil || code != 200 {
					errs <- fmt.Errorf("GET = %d, %v", code, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-pollDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(problems) > 0 {
		t.Errorf("%d of %d snapshots inconsistent, first: %s", len(problems), checked, problems[0])
	}
	st := srv.NodeStats()
	byName := map[string]NodeStat{st[0].Name: st[0], st[1].Name: st[1]}
	s, d := byName["slow"], byName["dead"]
	// Every GET was answered by the slow node, on the first attempt or
	// after the dead node failed it.
	if s.Requests != clients*each || s.Failures != 0 || s.InFlight != 0 || s.Queued != 0 || s.QueueTimeouts != 0 {
		t.Errorf("slow node: %+v, want %d requests, all answered, nothing in flight", s, clients*each)
	}
	if d.Requests == 0 || d.Failures != d.Requests || d.InFlight != 0 {
		t.Errorf("dead node: %+v, want every attempt failed, nothing in flight", d)
	}
}
