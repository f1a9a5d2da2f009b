package discovery

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
)

// adminStub stands in for the admin listener the agent checks.
func adminStub(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func registerCfg(a *consultest.Agent, checkURL string) *configs.Consul {
	c := consulCfg(a)
	c.Register = &configs.ConsulRegister{
		ID: "lb-a", Name: "mosparo-lb", Address: "192.0.2.10", Port: 443, Tags: []string{"vip"},
		CheckURL:      checkURL,
		CheckInterval: configs.Duration(50 * time.Millisecond), CheckTimeout: configs.Duration(25 * time.Millisecond),
	}
	return c
}

func (h *harness) registered() bool {
	r := h.src.Status().Registration
	return r != nil && r.Registered
}

// The LB registers itself with an HTTP check on its admin listener, the
// check passes once the agent has run it, and a clean stop deregisters.
func TestRegisterTheLB(t *testing.T) {
	admin := adminStub(t)
	a := startAgent(t, consultest.Options{})
	h := run(t, a, registerCfg(a, admin.URL+"/status"), nil)
	h.until("registered", h.registered)
	reg, ok := a.Service("lb-a")
	if !ok {
		t.Fatal("agent has no lb-a")
	}
	if reg.Name != "mosparo-lb" || reg.Address != "192.0.2.10" || reg.Port != 443 || strings.Join(reg.Tags, ",") != "vip" || reg.Meta[instanceMetaKey] == "" {
		t.Errorf("registration = %+v, want mosparo-lb 192.0.2.10:443 [vip] with an instance mark", reg)
	}
	if reg.Check == nil || reg.Check.HTTP != admin.URL+"/status" || reg.Check.Interval != "50ms" || reg.Check.Timeout != "25ms" || reg.Check.Status != "" {
		t.Errorf("check = %+v, want an HTTP check on the admin listener without an initial status", reg.Check)
	}
	h.until("the check passing", func() bool {
		st, _, _ := a.CheckStatus("lb-a:admin")
		return st == consultest.Passing
	})
	h.stop()
	if _, ok := a.Service("lb-a"); ok {
		t.Errorf("lb-a still registered after Run returned")
	}
	if r := h.src.Status().Registration; r.Registered {
		t.Errorf("Registration after stop = %+v, want not registered", r)
	}
}

// On a reload the new Source takes the registration over and the old one,
// stopping, leaves it in place.
func TestRegistrationSurvivesReload(t *testing.T) {
	admin := adminStub(t)
	a := startAgent(t, consultest.Options{})
	cfg := registerCfg(a, admin.URL+"/status")
	old := run(t, a, cfg, nil)
	old.until("old registered", old.registered)
	oldMark := mark(t, a)
	cur := run(t, a, cfg, nil)
	cur.until("new registered", cur.registered)
	if mark(t, a) == oldMark {
		t.Fatalf("the new Source did not re-register")
	}
	old.until("old superseded", func() bool { return old.src.Status().Registration.Superseded })
	old.stop()
	if _, ok := a.Service("lb-a"); !ok {
		t.Fatalf("the old Source's stop removed the new registration")
	}
	cur.stop()
	if _, ok := a.Service("lb-a"); ok {
		t.Errorf("lb-a still registered after the last Source stopped")
	}
}

func mark(t *testing.T, a *consultest.Agent) string {
	t.Helper()
	reg, ok := a.Service("lb-a")
	if !ok {
		t.Fatal("agent has no lb-a")
	}
	return reg.Meta[instanceMetaKey]
}

// A registration the agent lost (a dev agent restart, an operator's
// deregister) comes back at the next verification.
func TestRegistrationRestored(t *testing.T) {
	admin := adminStub(t)
	a := startAgent(t, consultest.Options{})
	h := run(t, a, registerCfg(a, admin.URL+"/status"), nil)
	h.until("registered", h.registered)
	if err := a.Deregister("lb-a"); err != nil {
		t.Fatal(err)
	}
	a.Reset()
	h.until("registered again", func() bool {
		_, ok := a.Service("lb-a")
		return ok
	})
}

// The registration is refused while the agent is away, shows in Status,
// and is made once the agent is back.
func TestRegistrationWaitsForTheAgent(t *testing.T) {
	admin := adminStub(t)
	a := startAgent(t, consultest.Options{})
	a.Stop()
	h := run(t, a, registerCfg(a, admin.URL+"/status"), nil)
	h.until("a registration error", func() bool { return h.src.Status().Registration.LastError != "" })
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	h.until("registered", h.registered)
}

func TestRegistrationDefaults(t *testing.T) {
	cfg := &configs.Consul{Address: "127.0.0.1:8500", Service: "m", Wait: configs.Duration(time.Minute),
		BackoffMin: configs.Duration(time.Second), BackoffMax: configs.Duration(time.Second),
		Register: &configs.ConsulRegister{Name: "mosparo-lb", Port: 443,
			CheckInterval: configs.Duration(10 * time.Second), CheckTimeout: configs.Duration(2 * time.Second)}}
	tests := []struct {
		listen, host, wantURL, wantID string
	}{
		{":9090", "LB-A", "http://127.0.0.1:9090/healthz", "mosparo-lb-lb-a"},
		{"0.0.0.0:9090", "h", "http://127.0.0.1:9090/healthz", "mosparo-lb-h"},
		{"[::]:9090", "h", "http://127.0.0.1:9090/healthz", "mosparo-lb-h"},
		{"10.0.0.5:9091", "h", "http://10.0.0.5:9091/healthz", "mosparo-lb-h"},
		{"[fd00::5]:9091", "h", "http://[fd00::5]:9091/healthz", "mosparo-lb-h"},
	}
	for _, tt := range tests {
		s, err := New(configs.Discovery{Consul: cfg}, nil, Options{AdminListen: tt.listen, Hostname: tt.host})
		if err != nil {
			t.Fatalf("New(admin %s): %v", tt.listen, err)
		}
		r := s.Status().Registration
		if r == nil || r.CheckURL != tt.wantURL || r.ID != tt.wantID || r.Registered {
			t.Errorf("admin %s host %s: registration %+v, want check %s, id %s, not yet registered", tt.listen, tt.host, r, tt.wantURL, tt.wantID)
		}
	}
}
