package discovery

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
	"go.uber.org/zap/zaptest"
)

// The same Source against a real Consul agent: a passing instance joins,
// a failed TTL check drops it, and the LB's own registration appears and is
// removed when Run ends.
func TestRealConsul(t *testing.T) {
	addr := consultest.RealAgent(t)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cl, err := api.NewClient(&api.Config{Address: addr, HttpClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "m1", Name: "mosparo", Address: "127.0.0.1", Port: 19001,
		Check: &api.AgentServiceCheck{CheckID: "m1-ttl", TTL: "60s", Status: api.HealthPassing}}); err != nil {
		t.Fatal(err)
	}
	cfg := &configs.Consul{Address: addr, Scheme: "http", Service: "mosparo", Wait: configs.Duration(2 * time.Second),
		BackoffMin: configs.Duration(50 * time.Millisecond), BackoffMax: configs.Duration(time.Second),
		Register: &configs.ConsulRegister{Name: "mosparo-lb", Port: 8080, CheckURL: "http://127.0.0.1:1/healthz",
			CheckInterval: configs.Duration(10 * time.Second), CheckTimeout: configs.Duration(2 * time.Second)}}
	s, err := New(configs.Discovery{Consul: cfg}, staticCfg, Options{Logger: zaptest.NewLogger(t), HTTPClient: &http.Client{Transport: tr}, Hostname: "lb-a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		if svc, _, err := cl.Agent().Service("mosparo-lb-lb-a", nil); err == nil {
			t.Errorf("registration %+v left after Run", svc)
		}
	}()
	until := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; status %+v", what, s.Status())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	until("the instance to join", func() bool { return len(s.Nodes()) == 2 })
	until("the LB to register", func() bool { st := s.Status(); return st.Registration != nil && st.Registration.Registered })
	if err := cl.Agent().UpdateTTL("m1-ttl", "down", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	until("the failed instance to leave", func() bool { return len(s.Nodes()) == 1 })
	if st := s.Status(); !st.Healthy || st.LastIndex == 0 {
		t.Errorf("Status = %+v, want healthy with an index", st)
	}
}
