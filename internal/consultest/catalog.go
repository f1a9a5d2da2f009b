package consultest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Check statuses, as Consul spells them.
const (
	Passing  = "passing"
	Warning  = "warning"
	Critical = "critical"
)

// Registration is the body of PUT /v1/agent/service/register, the subset
// mosparo-lb uses. Field names match Consul's JSON.
type Registration struct {
	ID      string            `json:"ID"`
	Name    string            `json:"Name"`
	Tags    []string          `json:"Tags"`
	Address string            `json:"Address"`
	Port    int               `json:"Port"`
	Meta    map[string]string `json:"Meta"`
	Weights *Weights          `json:"Weights"`
	Check   *CheckDefinition  `json:"Check"`
	Checks  []CheckDefinition `json:"Checks"`
}

// Weights are a service's DNS/LB weights; Consul fills {1, 1} when absent.
type Weights struct {
	Passing int `json:"Passing"`
	Warning int `json:"Warning"`
}

// CheckDefinition is one check in a registration: a TTL check or an HTTP
// check (the two kinds FACTS.md records).
type CheckDefinition struct {
	CheckID  string `json:"CheckID"`
	Name     string `json:"Name"`
	Status   string `json:"Status"`
	Notes    string `json:"Notes"`
	TTL      string `json:"TTL"`
	HTTP     string `json:"HTTP"`
	Method   string `json:"Method"`
	Interval string `json:"Interval"`
	Timeout  string `json:"Timeout"`
	// DeregisterCriticalServiceAfter is accepted and echoed; the fake does
	// not reap services (FACTS.md records nothing about the reaper).
	DeregisterCriticalServiceAfter string `json:"DeregisterCriticalServiceAfter"`
}

// Errors the HTTP layer maps to Consul's status codes.
var (
	errNotFound     = errors.New("not found")
	errBadRequest   = errors.New("bad request")
	errNoTTL        = errors.New("no ttl")
	errPermission   = errors.New("permission denied")
	errACLNotFound  = errors.New("acl not found")
	errNoDatacenter = errors.New("no path to datacenter")
)

type node struct {
	name, address string
	createIndex   uint64
	modifyIndex   uint64
}

type svcKey struct{ node, id string }

type service struct {
	node        string
	reg         Registration // ID and Weights filled in
	createIndex uint64
	modifyIndex uint64
}

type checkKey struct{ node, id string }

type check struct {
	node, id, name string
	status, output string
	notes          string
	serviceID      string // "" for node-level checks (serfHealth, node maintenance)
	kind           string // "ttl", "http" or "" (serf, maintenance)
	def            CheckDefinition
	ttl            time.Duration
	interval       time.Duration
	timeout        time.Duration
	stopTimer      func() bool // pending TTL expiry or next HTTP run
	removed        bool        // set on deregistration; stops HTTP runs
	createIndex    uint64
	modifyIndex    uint64
}

// bump advances the raft index for a write touching the named services and
// wakes every blocked query. Caller holds a.mu.
func (a *Agent) bump(names ...string) uint64 {
	a.index++
	for _, n := range names {
		a.svcIndex[n] = a.index
	}
	close(a.changed)
	a.changed = make(chan struct{})
	a.touch()
	return a.index
}

// servicesOnNode lists the service names registered on a node. Caller holds a.mu.
func (a *Agent) servicesOnNode(nodeName string) []string {
	seen := map[string]bool{}
	var out []string
	for k, s := range a.services {
		if k.node == nodeName && !seen[s.reg.Name] {
			seen[s.reg.Name] = true
			out = append(out, s.reg.Name)
		}
	}
	return out
}

// addNode creates a catalog node with a passing serfHealth. Caller holds a.mu.
func (a *Agent) addNode(name, address string) {
	if _, ok := a.nodes[name]; ok {
		return
	}
	idx := a.bump()
	a.nodes[name] = &node{name: name, address: address, createIndex: idx, modifyIndex: idx}
	a.checks[checkKey{name, "serfHealth"}] = &check{
		node: name, id: "serfHealth", name: "Serf Health Status",
		status: Passing, output: "Agent alive and reachable",
		createIndex: idx, modifyIndex: idx,
	}
}

// register adds or replaces a service and its checks on a node. Caller holds a.mu.
func (a *Agent) register(nodeName string, reg Registration) error {
	if _, ok := a.nodes[nodeName]; !ok {
		return fmt.Errorf("%w: unknown node %q", errNotFound, nodeName)
	}
	if reg.Name == "" {
		return fmt.Errorf("%w: Missing service name", errBadRequest)
	}
	if reg.ID == "" {
		reg.ID = reg.Name
	}
	if reg.Port < 0 || reg.Port > 65535 {
		return fmt.Errorf("%w: Invalid Port %d", errBadRequest, reg.Port)
	}
	if reg.Weights == nil {
		reg.Weights = &Weights{Passing: 1, Warning: 1}
	} else if reg.Weights.Passing < 1 {
		return fmt.Errorf("%w: Passing must be greater than 0", errBadRequest)
	}
	var defs []CheckDefinition
	if reg.Check != nil {
		defs = append(defs, *reg.Check)
	}
	defs = append(defs, reg.Checks...)
	checks := make([]*check, 0, len(defs))
	for i, d := range defs {
		c, err := a.newCheck(nodeName, reg.ID, d, i, len(defs))
		if err != nil {
			return err
		}
		checks = append(checks, c)
	}
	k := svcKey{nodeName, reg.ID}
	names := []string{reg.Name}
	create := uint64(0)
	if old, ok := a.services[k]; ok {
		names = append(names, old.reg.Name)
		create = old.createIndex
	}
	idx := a.bump(names...)
	if create == 0 {
		create = idx
	}
	a.services[k] = &service{node: nodeName, reg: reg, createIndex: create, modifyIndex: idx}
	for _, c := range checks {
		ck := checkKey{nodeName, c.id}
		if old, ok := a.checks[ck]; ok {
			a.dropCheck(old)
		}
		c.createIndex, c.modifyIndex = idx, idx
		a.checks[ck] = c
		a.armCheck(c)
	}
	return nil
}

// newCheck validates a check definition. The n-th of several checks gets
// the ID service:<ID>:<n+1>, a lone check service:<ID>, as Consul does.
func (a *Agent) newCheck(nodeName, serviceID string, d CheckDefinition, n, of int) (*check, error) {
	c := &check{node: nodeName, serviceID: serviceID, def: d, notes: d.Notes}
	c.id = d.CheckID
	if c.id == "" {
		c.id = "service:" + serviceID
		if of > 1 {
			c.id = fmt.Sprintf("service:%s:%d", serviceID, n+1)
		}
	}
	c.name = d.Name
	if c.name == "" {
		c.name = fmt.Sprintf("Service '%s' check", serviceID)
	}
	switch d.Status {
	case "":
		// FACTS.md: a new check starts critical unless Status is given.
		c.status = Critical
	case Passing, Warning, Critical:
		c.status = d.Status
	default:
		return nil, fmt.Errorf("%w: Invalid Check Status %q", errBadRequest, d.Status)
	}
	var err error
	switch {
	case d.TTL != "":
		c.kind = "ttl"
		if c.ttl, err = time.ParseDuration(d.TTL); err != nil || c.ttl <= 0 {
			return nil, fmt.Errorf("%w: Invalid TTL %q", errBadRequest, d.TTL)
		}
	case d.HTTP != "":
		c.kind = "http"
		if c.interval, err = time.ParseDuration(d.Interval); err != nil || c.interval <= 0 {
			return nil, fmt.Errorf("%w: Interval %q must be a positive duration for an HTTP check", errBadRequest, d.Interval)
		}
		c.timeout = 10 * time.Second
		if d.Timeout != "" {
			if c.timeout, err = time.ParseDuration(d.Timeout); err != nil || c.timeout <= 0 {
				return nil, fmt.Errorf("%w: Invalid Timeout %q", errBadRequest, d.Timeout)
			}
		}
	default:
		return nil, fmt.Errorf("%w: check %q needs a TTL, or an HTTP URL and an Interval (the kinds this fake knows)", errBadRequest, c.id)
	}
	return c, nil
}

// dropCheck stops a check's timers. Caller holds a.mu.
func (a *Agent) dropCheck(c *check) {
	c.removed = true
	if c.stopTimer != nil {
		c.stopTimer()
		c.stopTimer = nil
	}
	delete(a.checks, checkKey{c.node, c.id})
}

// deregister removes a service and every check bound to it. Caller holds a.mu.
func (a *Agent) deregister(nodeName, id string) error {
	k := svcKey{nodeName, id}
	s, ok := a.services[k]
	if !ok {
		return fmt.Errorf("%w: Unknown service ID %q", errNotFound, id)
	}
	for _, c := range a.checks {
		if c.node == nodeName && c.serviceID == id {
			a.dropCheck(c)
		}
	}
	delete(a.services, k)
	a.bump(s.reg.Name)
	return nil
}

// setStatus changes a check and, like the agent's anti-entropy, writes to
// the catalog (bumping the index) only when status or output changed.
// Caller holds a.mu.
func (a *Agent) setStatus(c *check, status, output string) {
	if c.status == status && c.output == output {
		return
	}
	c.status, c.output = status, output
	var names []string
	if c.serviceID == "" {
		names = a.servicesOnNode(c.node)
	} else if s, ok := a.services[svcKey{c.node, c.serviceID}]; ok {
		names = []string{s.reg.Name}
	}
	c.modifyIndex = a.bump(names...)
}

// updateTTL is pass/warn/fail/update: set the status and restart the TTL.
// Caller holds a.mu.
func (a *Agent) updateTTL(nodeName, id, status, output string) error {
	c, ok := a.checks[checkKey{nodeName, id}]
	if !ok {
		return fmt.Errorf("%w: Unknown check ID %q", errNotFound, id)
	}
	if c.kind != "ttl" {
		return fmt.Errorf("%w: CheckID %q does not have associated TTL", errNoTTL, id)
	}
	switch status {
	case Passing, Warning, Critical:
	default:
		return fmt.Errorf("%w: Invalid check status: %q", errBadRequest, status)
	}
	a.setStatus(c, status, output)
	a.armCheck(c)
	return nil
}

// maintenance adds or removes the critical maintenance check of a service
// (_service_maintenance:<ID>) or, with id "", of the node (_node_maintenance).
// Caller holds a.mu.
func (a *Agent) maintenance(nodeName, id string, enable bool, reason string) error {
	cid := "_node_maintenance"
	var names []string
	if id != "" {
		s, ok := a.services[svcKey{nodeName, id}]
		if !ok {
			return fmt.Errorf("%w: Unknown service ID %q", errNotFound, id)
		}
		cid = "_service_maintenance:" + id
		names = []string{s.reg.Name}
	} else {
		names = a.servicesOnNode(nodeName)
	}
	k := checkKey{nodeName, cid}
	old, exists := a.checks[k]
	if !enable {
		if exists {
			a.dropCheck(old)
			a.bump(names...)
		}
		return nil
	}
	if exists {
		return nil
	}
	if reason == "" {
		reason = "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
		if id == "" {
			reason = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
		}
	}
	name := "Service Maintenance Mode"
	if id == "" {
		name = "Node Maintenance Mode"
	}
	idx := a.bump(names...)
	a.checks[k] = &check{node: nodeName, id: cid, name: name, status: Critical, notes: reason,
		serviceID: id, createIndex: idx, modifyIndex: idx}
	return nil
}

// entry is one service instance with its node and checks, the unit the
// health and catalog endpoints return. Caller holds a.mu.
type entry struct {
	node    *node
	service *service
	checks  []*check
}

// instances lists a service's instances sorted by node then ID, each with
// the node's checks (serfHealth, node maintenance) and its own. Caller holds a.mu.
func (a *Agent) instances(name string, tags []string) []entry {
	var out []entry
	for k, s := range a.services {
		if s.reg.Name != name || !hasTags(s.reg.Tags, tags) {
			continue
		}
		e := entry{node: a.nodes[k.node], service: s}
		for _, c := range a.checks {
			if c.node == k.node && (c.serviceID == "" || c.serviceID == s.reg.ID) {
				e.checks = append(e.checks, c)
			}
		}
		sort.Slice(e.checks, func(i, j int) bool { return e.checks[i].id < e.checks[j].id })
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].node.name != out[j].node.name {
			return out[i].node.name < out[j].node.name
		}
		return out[i].service.reg.ID < out[j].service.reg.ID
	})
	return out
}

// hasTags reports whether have contains every wanted tag. Consul's catalog
// compares tags case-insensitively.
func hasTags(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if strings.EqualFold(h, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// allPassing is the ?passing rule of FACTS.md: every check passing; warning
// is dropped as well as critical.
func allPassing(cs []*check) bool {
	for _, c := range cs {
		if c.status != Passing {
			return false
		}
	}
	return true
}
