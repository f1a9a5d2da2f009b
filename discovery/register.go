package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"go.uber.org/zap"
)

// instanceMetaKey marks a registration with the Source that made it, so a
// Source stopping after a reload does not deregister its successor's.
const instanceMetaKey = "mosparo_lb_instance"

// RegistrationStatus is the LB's own registration, for /status.
type RegistrationStatus struct {
	ID       string `json:"id"`
	CheckURL string `json:"check_url"`
	// Registered: the agent holds this Source's registration.
	Registered bool `json:"registered"`
	// Superseded: a newer Source (after a reload) re-registered the ID;
	// this one leaves it alone.
	Superseded  bool      `json:"superseded,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// registrar keeps the LB registered while Run runs and deregisters it
// after, unless a newer Source took the registration over.
type registrar struct {
	agent    consulAgent
	clock    clock.Clock
	log      *zap.Logger
	id       string
	instance string // random, per Source
	reg      *api.AgentServiceRegistration
	resync   time.Duration // how often the registration is verified
	bmin     time.Duration
	bmax     time.Duration

	mu   sync.Mutex
	st   RegistrationStatus
	once bool // this Source has registered at least once
}

func newRegistrar(rc configs.ConsulRegister, agent consulAgent, opts Options, clk clock.Clock, log *zap.Logger, bmin, bmax time.Duration) (*registrar, error) {
	// configs applies the defaults (issue 13: once, there); a section that
	// did not go through it is refused, not patched up here. ID and
	// CheckURL are derived here: they need the host name and admin.listen.
	interval, timeout := rc.CheckInterval.D(), rc.CheckTimeout.D()
	if rc.Name == "" || interval <= 0 || timeout <= 0 || timeout >= interval {
		return nil, fmt.Errorf("discovery: consul.register name %q, check interval %s, timeout %s: defaults not applied (configs.Load)", rc.Name, interval, timeout)
	}
	name := rc.Name
	id := rc.ID
	if id == "" {
		id = defaultID(name, opts.Hostname)
	}
	if strings.ContainsAny(id, "/?#%") {
		// The client puts the ID into the request path as it is.
		return nil, fmt.Errorf("discovery: consul.register.id %q must not contain / ? # %%", id)
	}
	checkURL := rc.CheckURL
	if checkURL == "" {
		u, err := adminCheckURL(opts.AdminListen)
		if err != nil {
			return nil, err
		}
		checkURL = u
	}
	if rc.Port < 1 || rc.Port > 65535 {
		return nil, fmt.Errorf("discovery: consul.register.port %d is not 1..65535", rc.Port)
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:]) // crypto/rand.Read never fails (Go 1.24+)
	r := &registrar{
		agent: agent, clock: clk, log: log.With(zap.String("service_id", id)), id: id,
		instance: hex.EncodeToString(tok[:]),
		resync:   min(max(interval, time.Second/10), time.Minute),
		bmin:     bmin, bmax: bmax,
		st: RegistrationStatus{ID: id, CheckURL: checkURL},
	}
	r.reg = &api.AgentServiceRegistration{
		ID: id, Name: name, Tags: rc.Tags, Address: rc.Address, Port: rc.Port,
		Meta: map[string]string{instanceMetaKey: r.instance},
		Check: &api.AgentServiceCheck{
			CheckID: id + ":admin", Name: "mosparo-lb admin listener", HTTP: checkURL, Method: http.MethodGet,
			Interval: interval.String(), Timeout: timeout.String(),
		},
	}
	if d := rc.DeregisterAfter.D(); d > 0 {
		r.reg.Check.DeregisterCriticalServiceAfter = d.String()
	}
	return r, nil
}

// adminCheckURL is the default check target: the admin listener's /healthz,
// with a wildcard host replaced by loopback (the agent is local).
func adminCheckURL(listen string) (string, error) {
	if listen == "" || listen == "off" {
		return "", errors.New("discovery: consul.register needs check_url when the admin listener is off or unknown")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("discovery: admin listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: "/healthz"}).String(), nil
}

func (r *registrar) status() RegistrationStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *registrar) update(f func(*RegistrationStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.st)
}

// run keeps the registration in place until ctx ends, then removes it.
func (r *registrar) run(ctx context.Context) {
	failures := 0
	for {
		err := r.ensure(ctx)
		if ctx.Err() != nil {
			break
		}
		wait := r.resync
		if err != nil {
			failures++
			r.update(func(st *RegistrationStatus) {
				st.Registered, st.LastError, st.LastErrorAt = false, err.Error(), r.clock.Now()
			})
			if failures == 1 {
				r.log.Warn("consul registration failed", zap.Error(err))
			}
			wait = backoff(failures, r.bmin, r.bmax)
		} else {
			failures = 0
		}
		select {
		case <-r.clock.After(wait):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	r.deregister()
}

// ensure registers the LB unless the agent already holds this Source's
// registration. Before this Source first registers, any existing one (left
// by a crashed predecessor) is overwritten; afterwards a different owner
// means a newer Source took over, and this one stands back.
func (r *registrar) ensure(ctx context.Context) error {
	owner, err := r.owner(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	superseded, once := r.st.Superseded, r.once
	r.mu.Unlock()
	switch {
	case superseded:
		return nil
	case owner == r.instance:
		r.update(func(st *RegistrationStatus) { st.Registered = true })
		return nil
	case owner != "" && once:
		r.log.Info("registration taken over by a newer instance")
		r.update(func(st *RegistrationStatus) { st.Registered, st.Superseded = false, true })
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.agent.ServiceRegisterOpts(r.reg, api.ServiceRegisterOpts{}.WithContext(cctx)); err != nil {
		return consulError("register", err)
	}
	r.log.Info("registered in consul")
	r.mu.Lock()
	r.st.Registered, r.once = true, true
	r.mu.Unlock()
	return nil
}

// owner returns the instance mark of the agent's registration of our ID,
// "" when there is none (or it carries no mark).
func (r *registrar) owner(ctx context.Context) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	svc, _, err := r.agent.Service(r.id, (&api.QueryOptions{}).WithContext(cctx))
	var se api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", consulError("read registration", err)
	}
	if svc == nil {
		return "", nil
	}
	return svc.Meta[instanceMetaKey], nil
}

// deregister removes the registration if it is still this Source's. A
// successor registering between the check and the removal re-registers on
// its next verification (resync), so the gap is bounded.
func (r *registrar) deregister() {
	r.mu.Lock()
	skip := r.st.Superseded || !r.once
	r.mu.Unlock()
	if skip {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	owner, err := r.owner(ctx)
	if err == nil && owner == r.instance {
		err = r.agent.ServiceDeregisterOpts(r.id, (&api.QueryOptions{}).WithContext(ctx))
		if err == nil {
			r.log.Info("deregistered from consul")
		}
	}
	if err != nil {
		r.log.Warn("consul deregistration failed", zap.Error(consulError("deregister", err)))
	}
	r.update(func(st *RegistrationStatus) { st.Registered = false })
}
