package mosparoemu

import (
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"testing"
	"time"
)

func TestCronChecksInOrder(t *testing.T) {
	clock := clocktest.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	n := startNode(t, Options{Clock: clock})
	disabled := startNode(t, Options{CronDisabled: true})
	u := "/cron-jobs/execute"
	steps := []struct {
		name    string
		node    *Node
		query   string
		advance time.Duration
		status  int
		body    string
	}{
		{"key missing", n, "", 0, 400, "400 Bad Request"},
		{"inactive before key check", disabled, "?key=wrong", 0, 403, "403 Forbidden"},
		{"wrong key", n, "?key=wrong", 0, 401, "401 Unauthorized"},
		{"first run", n, "?key=" + DemoCronKey, 0, 200, "200 OK"},
		{"too early", n, "?key=" + DemoCronKey, 9 * time.Minute, 425, "425 Too Early"},
		{"interval passed", n, "?key=" + DemoCronKey, time.Minute, 200, "200 OK"},
		{"too early again", n, "?key=" + DemoCronKey, 0, 425, "425 Too Early"},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		r := get(t, s.node.URL()+u+s.query)
		if r.status != s.status || r.body != s.body {
			t.Errorf("%s: %d %q, want %d %q", s.name, r.status, r.body, s.status, s.body)
		}
	}
	if got := n.CronRuns(); got != 2 {
		t.Errorf("CronRuns = %d, want 2", got)
	}
	if got := n.Count("cron"); got != 6 {
		t.Errorf("Count(cron) = %d, want 6", got)
	}
	// The schedule is per node (FACTS 9.7): a second node runs right away.
	other := startNode(t, Options{Clock: clock})
	if r := get(t, other.URL()+u+"?key="+DemoCronKey); r.status != 200 {
		t.Errorf("second node = %d, want 200", r.status)
	}
}

// TestCronBusy: a run in progress blocks others with 429 once a schedule exists (FACTS 6.1).
func TestCronBusy(t *testing.T) {
	clock := clocktest.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	n := startNode(t, Options{Clock: clock, CronDuration: time.Second})
	u := n.URL() + "/cron-jobs/execute?key=" + DemoCronKey
	if r := get(t, u); r.status != 200 {
		t.Fatalf("first run = %d", r.status)
	}
	clock.Advance(11 * time.Minute)
	done := make(chan int)
	go func() {
		r, err := testClient().Get(u)
		if err != nil {
			done <- 0
			return
		}
		r.Body.Close()
		done <- r.StatusCode
	}()
	deadline := time.Now().Add(30 * time.Second) // a bound for a busy machine, not a timing
	for n.Count("cron") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if r := get(t, u); r.status != 429 || r.body != "429 Too Many Requests" {
		t.Errorf("concurrent run = %d %q, want 429", r.status, r.body)
	}
	if status := <-done; status != 200 {
		t.Errorf("long run = %d, want 200", status)
	}
}

func TestCronForcedAnswer(t *testing.T) {
	n := startNode(t, Options{})
	for _, code := range []int{200, 400, 401, 403, 425, 429, 500} {
		n.SetCronAnswer(code)
		r := get(t, n.URL()+"/cron-jobs/execute")
		if r.status != code || r.body != string(cronBody(code)) {
			t.Errorf("forced %d: got %d %q", code, r.status, r.body)
		}
	}
	if n.CronRuns() != 0 {
		t.Errorf("forced answers ran the cron %d times", n.CronRuns())
	}
	n.SetCronAnswer(0)
	if r := get(t, n.URL()+"/cron-jobs/execute?key="+DemoCronKey); r.status != 200 || n.CronRuns() != 1 {
		t.Errorf("real behaviour restored: %d, runs %d", r.status, n.CronRuns())
	}
}
