package consultest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a fake agent for one test and an official consul/api client
// for it, so every test also proves the fake speaks what the client expects.
func start(t *testing.T, opts Options) (*Agent, *api.Client) {
	t.Helper()
	a, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Close)
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := api.NewClient(&api.Config{Address: a.Addr(), HttpClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("api.NewClient: %v", err)
	}
	return a, c
}

// do sends a raw request and returns status and body.
func do(t *testing.T, method, url, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func ttlService(id, status string) *api.AgentServiceRegistration {
	return &api.AgentServiceRegistration{
		ID: id, Name: "web", Address: "127.0.0.1", Port: 19001,
		Check: &api.AgentServiceCheck{CheckID: id + "-ttl", TTL: "30s", Status: status},
	}
}

func passingIDs(t *testing.T, c *api.Client, q *api.QueryOptions, tags ...string) ([]string, *api.QueryMeta) {
	t.Helper()
	es, meta, err := c.Health().ServiceMultipleTags("web", tags, true, q)
	if err != nil {
		t.Fatalf("Health().Service: %v", err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.Service.ID)
	}
	return ids, meta
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// FACTS: register and deregister return 200 with an empty body.
func TestRegisterDeregisterAnswerEmpty200(t *testing.T) {
	a, _ := start(t, Options{})
	code, body, _ := do(t, "PUT", a.URL()+"/v1/agent/service/register",
		`{"ID":"web-1","Name":"web","Address":"127.0.0.1","Port":19001,"Check":{"CheckID":"web-1-ttl","TTL":"30s","Status":"passing"}}`)
	if code != 200 || body != "" {
		t.Errorf("register = %d %q, want 200 and an empty body", code, body)
	}
	code, body, _ = do(t, "PUT", a.URL()+"/v1/agent/service/deregister/web-1", "")
	if code != 200 || body != "" {
		t.Errorf("deregister = %d %q, want 200 and an empty body", code, body)
	}
	if code, _, _ = do(t, "PUT", a.URL()+"/v1/agent/service/deregister/web-1", ""); code != 404 {
		t.Errorf("deregister of an unknown ID = %d, want 404", code)
	}
}

// FACTS: a new check starts critical unless "Status" is given.
func TestNewCheckStartsCritical(t *testing.T) {
	a, c := start(t, Options{})
	if err := c.Agent().ServiceRegister(ttlService("web-1", "")); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().ServiceRegister(ttlService("web-2", "passing")); err != nil {
		t.Fatal(err)
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer target.Close()
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-3", Name: "web", Port: 1,
		Check: &api.AgentServiceCheck{CheckID: "web-3-http", HTTP: target.URL, Interval: "1h", Timeout: "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	checks, err := c.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"web-1-ttl": "critical", "web-2-ttl": "passing", "web-3-http": "critical"} {
		if got := checks[id]; got == nil || got.Status != want {
			t.Errorf("check %s = %+v, want status %s", id, got, want)
		}
	}
	if st, _, _ := a.CheckStatus("web-3-http"); st != Critical {
		t.Errorf("HTTP check before its first run = %s, want critical", st)
	}
}

// FACTS: ?passing keeps entries whose checks are all passing (warning is
// dropped too), and Checks include the node's serfHealth.
func TestPassingKeepsOnlyAllPassing(t *testing.T) {
	_, c := start(t, Options{})
	for _, id := range []string{"web-1", "web-2", "web-3"} {
		if err := c.Agent().ServiceRegister(ttlService(id, "passing")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Agent().WarnTTL("web-2-ttl", "slow"); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().FailTTL("web-3-ttl", "down"); err != nil {
		t.Fatal(err)
	}
	ids, _ := passingIDs(t, c, nil)
	if strings.Join(ids, ",") != "web-1" {
		t.Errorf("passing instances = %v, want [web-1]", ids)
	}
	all, _, err := c.Health().Service("web", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("all instances = %d, want 3", len(all))
	}
	var checkIDs []string
	for _, ch := range all[0].Checks {
		checkIDs = append(checkIDs, ch.CheckID)
	}
	if strings.Join(checkIDs, ",") != "serfHealth,web-1-ttl" {
		t.Errorf("checks of web-1 = %v, want serfHealth and web-1-ttl", checkIDs)
	}
	if all[0].Node.Node != "fake-agent" || all[0].Service.Port != 19001 || all[0].Service.Weights.Passing != 1 {
		t.Errorf("entry = node %+v service %+v, want fake-agent, port 19001, default weights 1", all[0].Node, all[0].Service)
	}
}

// FACTS: the response headers of health and catalog queries; index=abc is 400.
func TestQueryHeaders(t *testing.T) {
	a, c := start(t, Options{})
	if err := c.Agent().ServiceRegister(ttlService("web-1", "passing")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/health/service/web?passing", "/v1/catalog/service/web"} {
		code, _, h := do(t, "GET", a.URL()+path, "")
		if code != 200 {
			t.Errorf("GET %s = %d, want 200", path, code)
		}
		want := map[string]string{
			"X-Consul-Knownleader":           "true",
			"X-Consul-Lastcontact":           "0",
			"X-Consul-Effective-Consistency": "leader",
			"X-Consul-Query-Backend":         "blocking-query",
			"Content-Type":                   "application/json",
		}
		for k, v := range want {
			if got := h.Get(k); got != v {
				t.Errorf("GET %s header %s = %q, want %q", path, k, got, v)
			}
		}
		if got := h.Get("X-Consul-Index"); got == "" || got == "0" {
			t.Errorf("GET %s X-Consul-Index = %q, want a positive index", path, got)
		}
	}
	for _, q := range []string{"index=abc", "index=-1", "wait=soon", "passing=maybe"} {
		if code, _, _ := do(t, "GET", a.URL()+"/v1/health/service/web?"+q, ""); code != 400 {
			t.Errorf("GET ?%s = %d, want 400", q, code)
		}
	}
}

// FACTS: a blocking query returns with a higher index once the result changes.
func TestBlockingReturnsOnChange(t *testing.T) {
	a, c := start(t, Options{})
	if err := c.Agent().ServiceRegister(ttlService("web-1", "passing")); err != nil {
		t.Fatal(err)
	}
	_, meta := passingIDs(t, c, nil)
	type result struct {
		ids   []string
		index uint64
	}
	done := make(chan result, 1)
	go func() {
		es, m, err := c.Health().Service("web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		if err != nil {
			done <- result{}
			return
		}
		var ids []string
		for _, e := range es {
			ids = append(ids, e.Service.ID)
		}
		done <- result{ids, m.LastIndex}
	}()
	if err := a.AwaitBlocked(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().FailTTL("web-1-ttl", "gone"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.index <= meta.LastIndex || len(r.ids) != 0 {
		t.Errorf("after a TTL fail: ids %v index %d, want none and an index above %d", r.ids, r.index, meta.LastIndex)
	}
}

// FACTS: with no change the query returns at wait plus up to wait/16, with
// the same index and a 200; wait is capped at 10m.
func TestBlockingTimesOutWithSameIndex(t *testing.T) {
	tests := []struct {
		name string
		wait string
		d    time.Duration
	}{
		{"2s", "2s", 2 * time.Second},
		{"capped at 10m", "20m", 10 * time.Minute},
		{"default 5m", "", 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.NewManual(time.Unix(1e9, 0))
			a, _ := start(t, Options{Clock: clk})
			idx := a.ServiceIndex("web")
			type res struct {
				code int
				hdr  http.Header
			}
			done := make(chan res, 1)
			go func() {
				url := a.URL() + "/v1/health/service/web?passing&index=" + strconv.FormatUint(idx, 10)
				if tt.wait != "" {
					url += "&wait=" + tt.wait
				}
				c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				resp, err := c.Get(url)
				if err != nil {
					done <- res{}
					return
				}
				resp.Body.Close()
				done <- res{resp.StatusCode, resp.Header}
			}()
			if err := a.AwaitBlocked(testCtx(t), 1); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tt.d - time.Millisecond)
			if a.Blocked() != 1 {
				t.Fatalf("query returned before wait")
			}
			clk.Advance(tt.d/16 + 2*time.Millisecond)
			r := <-done
			if r.code != 200 || r.hdr.Get("X-Consul-Index") != strconv.FormatUint(idx, 10) {
				t.Errorf("after wait: %d index %q, want 200 and the same index %d", r.code, r.hdr.Get("X-Consul-Index"), idx)
			}
		})
	}
}

// FACTS: a TTL that is not refreshed goes critical with Output "TTL
// expired" (a 2 s TTL flipped at 2.0 s); pass resets the TTL.
func TestTTLExpires(t *testing.T) {
	clk := clocktest.NewManual(time.Unix(1e9, 0))
	a, _ := start(t, Options{Clock: clk})
	err := a.Register(Registration{ID: "web-1", Name: "web", Port: 1,
		Check: &CheckDefinition{CheckID: "t", TTL: "2s", Status: Passing}})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(1500 * time.Millisecond)
	if code, _, _ := do(t, "PUT", a.URL()+"/v1/agent/check/pass/t?note=alive", ""); code != 200 {
		t.Fatalf("pass = %d", code)
	}
	clk.Advance(1999 * time.Millisecond)
	if st, out, _ := a.CheckStatus("t"); st != Passing || out != "alive" {
		t.Errorf("1.999s after pass: %s %q, want passing \"alive\"", st, out)
	}
	clk.Advance(time.Millisecond)
	if st, out, _ := a.CheckStatus("t"); st != Critical || out != "TTL expired" {
		t.Errorf("2s after pass: %s %q, want critical \"TTL expired\"", st, out)
	}
}

// FACTS: pass|warn|fail set status and note; update takes Status and Output.
func TestCheckFlips(t *testing.T) {
	a, _ := start(t, Options{})
	if err := a.Register(Registration{ID: "web-1", Name: "web", Check: &CheckDefinition{CheckID: "t", TTL: "30s"}}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		method, path, body string
		code               int
		status, output     string
	}{
		{"PUT", "/v1/agent/check/pass/t?note=ok", "", 200, Passing, "ok"},
		{"PUT", "/v1/agent/check/warn/t?note=slow", "", 200, Warning, "slow"},
		{"PUT", "/v1/agent/check/fail/t", "", 200, Critical, ""},
		{"PUT", "/v1/agent/check/update/t", `{"Status":"passing","Output":"back"}`, 200, Passing, "back"},
		{"PUT", "/v1/agent/check/update/t", `{"Status":"sideways"}`, 400, Passing, "back"},
		{"PUT", "/v1/agent/check/update/t", `{`, 400, Passing, "back"},
		{"PUT", "/v1/agent/check/pass/nope", "", 404, Passing, "back"},
		{"PUT", "/v1/agent/check/pass/serfHealth", "", 500, Passing, "back"},
	}
	for _, s := range steps {
		code, body, _ := do(t, s.method, a.URL()+s.path, s.body)
		if code != s.code {
			t.Errorf("%s %s = %d %q, want %d", s.method, s.path, code, body, s.code)
		}
		if st, out, _ := a.CheckStatus("t"); st != s.status || out != s.output {
			t.Errorf("after %s: %s %q, want %s %q", s.path, st, out, s.status, s.output)
		}
	}
}

// FACTS: maintenance adds the critical _service_maintenance:<ID> check,
// dropping the instance from ?passing; enable=false removes it.
func TestServiceMaintenance(t *testing.T) {
	a, c := start(t, Options{})
	if err := c.Agent().ServiceRegister(ttlService("web-1", "passing")); err != nil {
		t.Fatal(err)
	}
	code, body, _ := do(t, "PUT", a.URL()+"/v1/agent/service/maintenance/web-1?enable=true&reason=drain", "")
	if code != 200 || body != "" {
		t.Fatalf("maintenance on = %d %q", code, body)
	}
	if st, _, ok := a.CheckStatus("_service_maintenance:web-1"); !ok || st != Critical {
		t.Errorf("maintenance check = %q %v, want critical", st, ok)
	}
	checks, _ := c.Agent().Checks()
	if ch := checks["_service_maintenance:web-1"]; ch == nil || ch.Notes != "drain" || ch.ServiceID != "web-1" {
		t.Errorf("maintenance check = %+v, want notes drain for web-1", ch)
	}
	if ids, _ := passingIDs(t, c, nil); len(ids) != 0 {
		t.Errorf("passing during maintenance = %v, want none", ids)
	}
	do(t, "PUT", a.URL()+"/v1/agent/service/maintenance/web-1?enable=false", "")
	if ids, _ := passingIDs(t, c, nil); len(ids) != 1 {
		t.Errorf("passing after maintenance = %v, want [web-1]", ids)
	}
	for _, q := range []string{"", "?enable=perhaps"} {
		if code, _, _ := do(t, "PUT", a.URL()+"/v1/agent/service/maintenance/web-1"+q, ""); code != 400 {
			t.Errorf("maintenance%s = %d, want 400", q, code)
		}
	}
	if code, _, _ := do(t, "PUT", a.URL()+"/v1/agent/service/maintenance/nope?enable=true", ""); code != 404 {
		t.Errorf("maintenance of an unknown ID = %d, want 404", code)
	}
	// Node maintenance applies to every service of the node.
	do(t, "PUT", a.URL()+"/v1/agent/maintenance?enable=true", "")
	if ids, _ := passingIDs(t, c, nil); len(ids) != 0 {
		t.Errorf("passing during node maintenance = %v, want none", ids)
	}
}

// waitPassing follows blocking queries until the passing set is want.
func waitPassing(t *testing.T, c *api.Client, want string) {
	t.Helper()
	ctx := testCtx(t)
	var idx uint64
	for {
		ids, meta := passingIDs(t, c, (&api.QueryOptions{WaitIndex: idx, WaitTime: 5 * time.Second}).WithContext(ctx))
		if strings.Join(ids, ",") == want {
			return
		}
		idx = meta.LastIndex
		if ctx.Err() != nil {
			t.Fatalf("passing = %v, want %s", ids, want)
		}
	}
}

// FACTS: an HTTP check stays critical until its first run passes and goes
// critical on its first failed run after the target stops, with Go's
// "connection refused" text as Output.
func TestHTTPCheck(t *testing.T) {
	a, c := start(t, Options{})
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") }))
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 1,
		Check: &api.AgentServiceCheck{CheckID: "h", HTTP: target.URL, Interval: "20ms", Timeout: "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	waitPassing(t, c, "web-1")
	target.Close()
	waitPassing(t, c, "")
	// A probe in flight while the target closed may fail with EOF or a
	// reset; the runs after it meet a closed port.
	ctx := testCtx(t)
	for {
		activity := a.Activity()
		st, out, _ := a.CheckStatus("h")
		if st == Critical && strings.Contains(out, "connection refused") && strings.HasPrefix(out, `Get "`) {
			return
		}
		if st != Critical {
			t.Errorf("check after the target stopped = %s %q, want critical", st, out)
		}
		select {
		case <-activity:
		case <-ctx.Done():
			t.Fatalf("check after the target stopped = %s %q, want Get \"…\": … connection refused", st, out)
		}
	}
}

func TestTagFilterNeedsEveryTag(t *testing.T) {
	a, c := start(t, Options{})
	for id, tags := range map[string][]string{"web-1": {"prod", "eu"}, "web-2": {"prod"}, "web-3": {"PROD", "EU"}} {
		if err := a.Register(Registration{ID: id, Name: "web", Tags: tags, Check: &CheckDefinition{TTL: "1m", Status: Passing}}); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := passingIDs(t, c, nil, "prod", "eu"); strings.Join(ids, ",") != "web-1,web-3" {
		t.Errorf("tags prod,eu = %v, want web-1 and web-3 (tags compare case-insensitively)", ids)
	}
	if ids, _ := passingIDs(t, c, nil, "prod"); len(ids) != 3 {
		t.Errorf("tag prod = %v, want all three", ids)
	}
}

func TestDatacenter(t *testing.T) {
	a, _ := start(t, Options{Datacenter: "eu1"})
	if code, _, _ := do(t, "GET", a.URL()+"/v1/health/service/web?dc=eu1", ""); code != 200 {
		t.Errorf("own dc = %d, want 200", code)
	}
	if code, body, _ := do(t, "GET", a.URL()+"/v1/health/service/web?dc=us9", ""); code != 500 || body != "No path to datacenter" {
		t.Errorf("unknown dc = %d %q, want 500 No path to datacenter", code, body)
	}
}

func TestACLToken(t *testing.T) {
	a, _ := start(t, Options{Token: "s3cret"})
	reg := `{"ID":"web-1","Name":"web","Check":{"TTL":"1m","Status":"passing"}}`
	if code, body, _ := do(t, "PUT", a.URL()+"/v1/agent/service/register", reg); code != 403 || body != "Permission denied" {
		t.Errorf("register without token = %d %q, want 403 Permission denied", code, body)
	}
	if code, _, _ := do(t, "PUT", a.URL()+"/v1/agent/service/register", reg, "X-Consul-Token", "s3cret"); code != 200 {
		t.Fatalf("register with token = %d, want 200", code)
	}
	code, body, h := do(t, "GET", a.URL()+"/v1/health/service/web?passing", "")
	if code != 200 || strings.TrimSpace(body) != "[]" || h.Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
		t.Errorf("anonymous read = %d %q filtered=%q, want an empty filtered list", code, body, h.Get("X-Consul-Results-Filtered-By-ACLs"))
	}
	if code, body, _ := do(t, "GET", a.URL()+"/v1/health/service/web", "", "X-Consul-Token", "wrong"); code != 403 || body != "ACL not found" {
		t.Errorf("wrong token = %d %q, want 403 ACL not found", code, body)
	}
	if _, body, _ := do(t, "GET", a.URL()+"/v1/health/service/web", "", "X-Consul-Token", "s3cret"); !strings.Contains(body, `"web-1"`) {
		t.Errorf("read with token = %q, want web-1", body)
	}
	reqs := a.Requests()
	if last := reqs[len(reqs)-1]; last.Token != "s3cret" || last.Path != "/v1/health/service/web" {
		t.Errorf("last logged request = %+v, want the token and path", last)
	}
}

func TestRegistrationRejectsBadInput(t *testing.T) {
	a, _ := start(t, Options{})
	for _, body := range []string{
		`{`,
		`[]`,
		`{"ID":"x"}`,
		`{"Name":"web","Port":70000}`,
		`{"Name":"web","Weights":{"Passing":0,"Warning":1}}`,
		`{"Name":"web","Check":{"Status":"fine","TTL":"1s"}}`,
		`{"Name":"web","Check":{"CheckID":"c"}}`,
		`{"Name":"web","Check":{"TTL":"soon"}}`,
		`{"Name":"web","Check":{"HTTP":"http://127.0.0.1:1/"}}`,
		`{"Name":"web","Check":{"HTTP":"http://127.0.0.1:1/","Interval":"1s","Timeout":"-1s"}}`,
	} {
		if code, _, _ := do(t, "PUT", a.URL()+"/v1/agent/service/register", body); code != 400 {
			t.Errorf("register %s = %d, want 400", body, code)
		}
	}
	a.mu.Lock()
	n := len(a.services)
	a.mu.Unlock()
	if n != 0 {
		t.Errorf("%d services after bad registrations, want 0", n)
	}
}

// The agent going away: in-flight and new queries fail; back on the same
// address with the catalog kept.
func TestStopAndStart(t *testing.T) {
	a, c := start(t, Options{})
	if err := c.Agent().ServiceRegister(ttlService("web-1", "passing")); err != nil {
		t.Fatal(err)
	}
	addr := a.Addr()
	_, meta := passingIDs(t, c, nil)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Health().Service("web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		errc <- err
	}()
	if err := a.AwaitBlocked(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	if err := <-errc; err == nil {
		t.Errorf("blocked query survived Stop, want an error")
	}
	if _, _, err := c.Health().Service("web", "", true, nil); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("query while stopped: %v, want connection refused", err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if a.Addr() != addr {
		t.Errorf("address after Start = %s, want %s", a.Addr(), addr)
	}
	if ids, _ := passingIDs(t, c, nil); strings.Join(ids, ",") != "web-1" {
		t.Errorf("after Start = %v, want [web-1]", ids)
	}
}

// Reset sends the index backwards and abandons blocked queries.
func TestResetSendsIndexBackwards(t *testing.T) {
	a, c := start(t, Options{})
	for i := 0; i < 5; i++ {
		if err := c.Agent().ServiceRegister(ttlService("web-1", "passing")); err != nil {
			t.Fatal(err)
		}
	}
	_, meta := passingIDs(t, c, nil)
	done := make(chan uint64, 1)
	go func() {
		_, m, err := c.Health().Service("web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		if err != nil {
			done <- 0
			return
		}
		done <- m.LastIndex
	}()
	if err := a.AwaitBlocked(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	a.Reset()
	if got := <-done; got == 0 || got >= meta.LastIndex {
		t.Errorf("index after Reset = %d, want 0 < index < %d", got, meta.LastIndex)
	}
}

// A failed node's serfHealth takes every service on it out of ?passing.
func TestNodeHealthAppliesToItsServices(t *testing.T) {
	a, c := start(t, Options{})
	if err := a.RegisterOn("node-b", "10.0.0.2", Registration{ID: "web-b", Name: "web", Port: 80, Check: &CheckDefinition{TTL: "1m", Status: Passing}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Register(Registration{ID: "web-a", Name: "web", Port: 80, Check: &CheckDefinition{TTL: "1m", Status: Passing}}); err != nil {
		t.Fatal(err)
	}
	before := a.ServiceIndex("web")
	if err := a.SetNodeHealth("node-b", Critical); err != nil {
		t.Fatal(err)
	}
	if a.ServiceIndex("web") <= before {
		t.Errorf("service index did not move on a node failure")
	}
	if ids, _ := passingIDs(t, c, nil); strings.Join(ids, ",") != "web-a" {
		t.Errorf("passing = %v, want [web-a]", ids)
	}
}

// An update that changes nothing does not move the index (agent
// anti-entropy syncs only changes), so a watcher is not woken for nothing.
func TestSameStatusKeepsIndex(t *testing.T) {
	a, _ := start(t, Options{})
	if err := a.Register(Registration{ID: "web-1", Name: "web", Check: &CheckDefinition{CheckID: "t", TTL: "1m", Status: Passing}}); err != nil {
		t.Fatal(err)
	}
	before := a.ServiceIndex("web")
	if err := a.UpdateTTL("t", Passing, ""); err != nil {
		t.Fatal(err)
	}
	if got := a.ServiceIndex("web"); got != before {
		t.Errorf("index after a no-op update = %d, want %d", got, before)
	}
}

// FACTS: filter=Checks.Status != critical did NOT drop an instance with one
// critical check (any check matching is enough); ?passing does.
func TestFilterMatchesAnyCheck(t *testing.T) {
	_, c := start(t, Options{})
	if err := c.Agent().ServiceRegister(ttlService("web-1", "critical")); err != nil {
		t.Fatal(err)
	}
	es, _, err := c.Health().Service("web", "", false, &api.QueryOptions{Filter: "Checks.Status != critical"})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Errorf("filter Checks.Status != critical kept %d, want 1 (serfHealth matches)", len(es))
	}
	if ids, _ := passingIDs(t, c, nil); len(ids) != 0 {
		t.Errorf("?passing kept %v, want none", ids)
	}
	if _, _, err := c.Health().Service("web", "", false, &api.QueryOptions{Filter: "Service.Port > 1"}); err == nil {
		t.Errorf("an unsupported filter was accepted silently")
	}
}
