package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"go.uber.org/zap/zaptest"
)

// switchNode is a loopback HTTP server answering like mosparo's health API
// with an answer the test switches.
type switchNode struct {
	srv    *httptest.Server
	status atomic.Int64
	body   atomic.Value // string
	hang   atomic.Bool
	stop   chan struct{}
}

func newSwitchNode(t *testing.T) *switchNode {
	t.Helper()
	n := &switchNode{stop: make(chan struct{})}
	n.set(200, bodyConnected)
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.hang.Load() {
			select {
			case <-n.stop:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(n.status.Load()))
		_, _ = w.Write([]byte(n.body.Load().(string)))
	}))
	t.Cleanup(func() { close(n.stop); n.srv.Close() })
	return n
}

func (n *switchNode) set(status int, body string) {
	n.body.Store(body)
	n.status.Store(int64(status))
}

func (n *switchNode) addr() string { return strings.TrimPrefix(n.srv.URL, "http://") }

// TestRunFollowsRealNodes runs the checker against real loopback servers
// that switch between mosparo's answers: the state follows within
// interval*fall + timeout.
func TestRunFollowsRealNodes(t *testing.T) {
	d := func(ms int) configs.Duration { return configs.Duration(time.Duration(ms) * time.Millisecond) }
	jit, slow := d(20), d(0)
	cfg := configs.Health{
		Interval: d(100), FastInterval: d(30), DownInterval: d(100), Timeout: d(60),
		Rise: 2, Fall: 2, Jitter: &jit, SlowStart: &slow,
	}
	a, b := newSwitchNode(t), newSwitchNode(t)
	c := newChecker(t, cfg, Options{Logger: zaptest.NewLogger(t)})
	setTargets(t, c, []Target{{Name: "a", Address: a.addr()}, {Name: "b", Address: b.addr(), Host: "mosparo.test"}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	defer wg.Wait()
	defer cancel()

	// bound is interval*fall + timeout, plus slack for a loaded 2-core box
	// (other packages build and test in parallel on it).
	const slack = 350 * time.Millisecond // typical: 50-220ms in total
	bound := 2*100*time.Millisecond + 60*time.Millisecond + slack
	node := c.Node(a.addr())
	await := func(step string, want State, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for node.State() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: state %v after %v, want %v (%s)", step, node.State(), within, want, c.Snapshot()[0].Reason)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Nodes start Up; wait for the first check, which also proves the
	// goroutine's Run is running.
	for start := time.Now(); c.Snapshot()[0].LastCheck.IsZero(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > bound {
			t.Fatal("no check within the bound")
		}
	}
	await("first check", Up, bound)
	if err := c.Run(ctx); err == nil {
		t.Error("a second concurrent Run was allowed")
	}
	steps := []struct {
		name   string
		status int
		body   string
		hang   bool
		want   State
		reason string
	}{
		{"database down", 500, bodyFailed, false, Down, "database connection failed"},
		{"recovered", 200, bodyConnected, false, Up, "connected"},
		{"update not finished", 200, bodyUpdate, false, Draining, "update not finished"},
		{"not installed", 200, bodyNotInstalled, false, Setup, "not installed"},
		{"back", 200, bodyConnected, false, Up, "connected"},
		{"allow list", 404, "<html>Not Found</html>", false, Down, "MOSPARO_HEALTH_ALLOW_LIST"},
		{"back again", 200, bodyConnected, false, Up, "connected"},
		{"hangs", 200, bodyConnected, true, Down, "no answer within"},
		{"answers again", 200, bodyConnected, false, Up, "connected"},
		{"bypassed", 200, bodyBypassed, false, Down, "MOSPARO_BYPASS_HEALTH_CHECK"},
	}
	for _, s := range steps {
		a.hang.Store(s.hang)
		a.set(s.status, s.body)
		// Rising takes rise checks at the fast interval after the first
		// good one, which is at most one interval away.
		began := time.Now()
		await(s.name, s.want, bound)
		t.Logf("%s: %v", s.name, time.Since(began))
		if r := c.Snapshot()[0].Reason; !strings.Contains(r, s.reason) {
			t.Errorf("%s: reason %q, want it to contain %q", s.name, r, s.reason)
		}
	}
	if st := c.Node(b.addr()).State(); st != Up {
		t.Errorf("steady node b: %v", st)
	}

	// A killed node (listener closed) is down within the bound too.
	b.srv.CloseClientConnections()
	b.srv.Listener.Close()
	node = c.Node(b.addr())
	await("killed", Down, bound)
	// The pool's verdict follows the node's state in the same apply, just
	// after it is published: poll for it too.
	for deadline := time.Now().Add(bound); c.PoolHealthy(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("pool healthy with every node down")
		}
	}
}
