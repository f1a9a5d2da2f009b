package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/consulclient"
)

// maxAnswerBytes bounds one Consul answer: a thousand instances with their
// checks are about 2 MiB; more is not an answer we want to hold.
const maxAnswerBytes = 16 << 20

// ErrNoIndex is returned for an answer without a usable X-Consul-Index
// (missing, or 0): the next query could not block on it, and looping
// would hammer the agent.
var ErrNoIndex = errors.New("answer has no X-Consul-Index")

// consulHealth is the one catalog question discovery asks; *api.Health
// answers it.
type consulHealth interface {
	ServiceMultipleTags(service string, tags []string, passingOnly bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error)
}

// consulAgent is what the registrar needs of the local agent; *api.Agent
// provides it.
type consulAgent interface {
	Service(serviceID string, q *api.QueryOptions) (*api.AgentService, *api.QueryMeta, error)
	ServiceRegisterOpts(reg *api.AgentServiceRegistration, opts api.ServiceRegisterOpts) error
	ServiceDeregisterOpts(serviceID string, q *api.QueryOptions) error
}

// newConsulClient is the official client for one discovery.consul
// section, on hc, with every answer bounded to maxAnswerBytes.
func newConsulClient(c configs.Consul, hc *http.Client) (*api.Client, error) {
	cl, err := consulclient.New(consulclient.Config{Address: c.Address, Scheme: c.Scheme, Datacenter: c.Datacenter,
		Token: c.Token, HTTPClient: hc, MaxAnswer: maxAnswerBytes})
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return cl, nil
}

// instance is one passing service instance from /v1/health/service.
type instance struct {
	ID, Node, Address string
	Port              int
	Tags              []string
	// WeightPassing and WeightWarning are Service.Weights, 0 when absent.
	WeightPassing, WeightWarning int
}

// weight maps Service.Weights.Passing to a node weight. Consul fills
// {Passing: 1, Warning: 1} into every registration without Weights, so that
// pair reads as "not set" (default 100); anything else is clamped to 1..1000.
func (in instance) weight() int {
	p := in.WeightPassing
	if p <= 0 || p == 1 && in.WeightWarning == 1 {
		return configs.DefaultNodeWeight
	}
	return min(p, configs.MaxNodeWeight)
}

// answer is one health query's result.
type answer struct {
	insts   []instance
	skipped []string
	index   uint64
}

// healthQuery asks for the passing instances of one service.
type healthQuery struct {
	api     consulHealth
	service string
	tags    []string
}

// ask runs one ?passing health query; index 0 asks without blocking.
func (q healthQuery) ask(ctx context.Context, index uint64, wait time.Duration) (answer, error) {
	opts := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx)
	es, meta, err := q.api.ServiceMultipleTags(q.service, q.tags, true, opts)
	if err != nil {
		return answer{}, consulError("health query", err)
	}
	if meta == nil || meta.LastIndex == 0 {
		return answer{}, fmt.Errorf("consul health query: %w", ErrNoIndex)
	}
	insts, skipped := usable(es)
	return answer{insts: insts, skipped: skipped, index: meta.LastIndex}, nil
}

func consulError(what string, err error) error { return consulclient.Error(what, err) }

// usable keeps the entries that can be nodes. The entries come from the
// network, so nothing in them may panic or mislead: an entry that cannot be
// a node (no Service, no ID, no address, a port outside 1..65535, an
// address that is not an IP or host name, a check not passing despite
// ?passing) is skipped with a reason.
func usable(es []*api.ServiceEntry) (insts []instance, skipped []string) {
	for i, e := range es {
		in, why := entryInstance(e)
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("entry %d (%s): %s", i, printable(in.ID), why))
			continue
		}
		insts = append(insts, in)
	}
	return insts, skipped
}

// entryInstance returns the instance or why it is unusable.
func entryInstance(e *api.ServiceEntry) (instance, string) {
	if e == nil || e.Service == nil {
		return instance{}, "no Service"
	}
	s := e.Service
	in := instance{ID: s.ID, Address: s.Address, Port: s.Port, Tags: s.Tags,
		WeightPassing: s.Weights.Passing, WeightWarning: s.Weights.Warning}
	if e.Node != nil {
		in.Node = e.Node.Node
		if in.Address == "" {
			in.Address = e.Node.Address
		}
	}
	switch {
	case in.ID == "":
		return in, "no Service.ID"
	case len(in.ID) > 256:
		return in, "Service.ID longer than 256 bytes"
	case in.Port < 1 || in.Port > 65535:
		return in, fmt.Sprintf("port %d is not 1..65535", in.Port)
	case in.Address == "":
		return in, "neither Service.Address nor Node.Address is set"
	case !validHost(in.Address):
		return in, fmt.Sprintf("address %q is not an IP address or host name", printable(in.Address))
	}
	for _, c := range e.Checks {
		// FACTS.md: ?passing keeps only all-passing entries; an agent (or a
		// proxy in between) that ignored it must not smuggle one in.
		if c == nil || c.Status != api.HealthPassing {
			id, status := "", "missing"
			if c != nil {
				id, status = c.CheckID, c.Status
			}
			return in, fmt.Sprintf("check %q is %q", printable(id), printable(status))
		}
	}
	return in, ""
}

// validHost accepts an IP address (IPv6 without brackets, as Consul stores
// it) or a DNS name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// printable shortens and defuses a value from the network for logs and status.
func printable(s string) string { return consulclient.Printable(s) }

// Interface guards.
var (
	_ consulHealth = (*api.Health)(nil)
	_ consulAgent  = (*api.Agent)(nil)
)
