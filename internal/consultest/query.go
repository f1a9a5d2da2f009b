package consultest

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Blocking-query bounds (FACTS.md): wait defaults to 5m and is capped at 10m.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

// queryParams are the parsed common parameters of a read.
type queryParams struct {
	index   uint64 // 0: do not block
	wait    time.Duration
	passing bool
	tags    []string
	filter  func([]*check) bool // nil: no filter
}

// checksFilter is the one filter expression FACTS.md records:
// "Checks.Status != critical" (or ==, any status). Checks is a list, and
// the expression matches an entry if it matches ANY of its checks, which is
// why it does not drop an instance with one critical check (serfHealth is
// passing). Use ?passing instead.
var checksFilter = regexp.MustCompile(`^\s*Checks\.Status\s*(==|!=)\s*"?([a-z]+)"?\s*$`)

func parseFilter(expr string) (func([]*check) bool, error) {
	m := checksFilter.FindStringSubmatch(expr)
	if m == nil {
		return nil, failed(errBadRequest, "Failed to create boolean expression evaluator: consultest knows only Checks.Status == / != <status>")
	}
	eq, status := m[1] == "==", m[2]
	return func(cs []*check) bool {
		for _, c := range cs {
			if (c.status == status) == eq {
				return true
			}
		}
		return false
	}, nil
}

// parseQuery reads index, wait, passing, tag and dc the way the agent does;
// errors carry the agent's 400/500 texts.
func (a *Agent) parseQuery(r *http.Request) (queryParams, error) {
	q := r.URL.Query()
	p := queryParams{wait: defaultWait, tags: q["tag"]}
	if dc := q.Get("dc"); dc != "" && dc != a.opts.Datacenter {
		return p, errNoDatacenter
	}
	if q.Has("index") {
		i, err := strconv.ParseUint(q.Get("index"), 10, 64)
		if err != nil {
			// FACTS.md: index=abc gets HTTP 400.
			return p, failed(errBadRequest, "Invalid index")
		}
		p.index = i
	}
	if q.Has("wait") {
		d, err := time.ParseDuration(q.Get("wait"))
		if err != nil || d < 0 {
			return p, failed(errBadRequest, "Invalid wait time")
		}
		if d > 0 {
			p.wait = min(d, maxWait)
		}
	}
	if q.Has("filter") {
		f, err := parseFilter(q.Get("filter"))
		if err != nil {
			return p, err
		}
		p.filter = f
	}
	if q.Has("passing") {
		// "?passing" alone means true, as does passing=1 or passing=true.
		if v := q.Get("passing"); v == "" {
			p.passing = true
		} else if b, err := strconv.ParseBool(v); err == nil {
			p.passing = b
		} else {
			return p, failed(errBadRequest, "Invalid value for ?passing")
		}
	}
	return p, nil
}

// serveQuery answers /v1/health/service/<name> (health true) and
// /v1/catalog/service/<name>, blocking while index is at least the
// service's index: it returns as soon as the index passes it, or after
// wait plus up to wait/16 of jitter with the same index (FACTS.md), or at
// once if Reset abandoned the query.
func (a *Agent) serveQuery(w http.ResponseWriter, r *http.Request, down <-chan struct{}, health bool) {
	anon, err := a.authorize(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := a.parseQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")

	a.mu.Lock()
	if p.index > 0 && a.serviceIndex(name) <= p.index && !a.block(r, p.wait, down, func() bool { return a.serviceIndex(name) <= p.index }) {
		a.mu.Unlock()
		return
	}
	idx := a.serviceIndex(name)
	var body any
	if health {
		out := []jsonHealthEntry{}
		for _, e := range a.instances(name, p.tags) {
			if anon || p.passing && !allPassing(e.checks) || p.filter != nil && !p.filter(e.checks) {
				continue
			}
			out = append(out, a.healthJSON(e))
		}
		body = out
	} else {
		out := []jsonCatalogService{}
		for _, e := range a.instances(name, p.tags) {
			if !anon {
				out = append(out, a.catalogJSON(e))
			}
		}
		body = out
	}
	a.mu.Unlock()

	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(idx, 10))
	h.Set("X-Consul-Knownleader", "true")
	h.Set("X-Consul-Lastcontact", "0")
	h.Set("X-Consul-Effective-Consistency", "leader")
	h.Set("X-Consul-Query-Backend", "blocking-query")
	if anon {
		h.Set("X-Consul-Results-Filtered-By-Acls", "true")
	}
	writeJSON(w, body)
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// JSON shapes of the agent's answers (field names as Consul sends them).
type (
	jsonNode struct {
		ID              string
		Node            string
		Address         string
		Datacenter      string
		TaggedAddresses map[string]string
		Meta            map[string]string
		CreateIndex     uint64
		ModifyIndex     uint64
	}
	jsonService struct {
		ID                string
		Service           string
		Tags              []string
		Meta              map[string]string
		Port              int
		Address           string
		Weights           Weights
		EnableTagOverride bool
		Datacenter        string `json:",omitempty"`
		CreateIndex       uint64
		ModifyIndex       uint64
	}
	jsonCheck struct {
		Node        string
		CheckID     string
		Name        string
		Status      string
		Notes       string
		Output      string
		ServiceID   string
		ServiceName string
		ServiceTags []string
		Type        string
		ExposedPort int
		Definition  map[string]any
		CreateIndex uint64
		ModifyIndex uint64
	}
	jsonHealthEntry struct {
		Node    jsonNode
		Service jsonService
		Checks  []jsonCheck
	}
	jsonCatalogService struct {
		ID                       string
		Node                     string
		Address                  string
		Datacenter               string
		ServiceID                string
		ServiceName              string
		ServiceTags              []string
		ServiceAddress           string
		ServiceMeta              map[string]string
		ServicePort              int
		ServiceWeights           Weights
		ServiceEnableTagOverride bool
		CreateIndex              uint64
		ModifyIndex              uint64
	}
)

// nodeJSON; caller holds a.mu.
func (a *Agent) nodeJSON(n *node) jsonNode {
	return jsonNode{
		ID:              nodeID(n.name),
		Node:            n.name,
		Address:         n.address,
		Datacenter:      a.opts.Datacenter,
		TaggedAddresses: map[string]string{"lan": n.address, "wan": n.address},
		Meta:            map[string]string{},
		CreateIndex:     n.createIndex,
		ModifyIndex:     n.modifyIndex,
	}
}

// nodeID derives a stable UUID-shaped node ID from the name.
func nodeID(name string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", h.Sum64()&0xffffffffffff)
}

func serviceJSON(s *service) jsonService {
	tags := s.reg.Tags
	if tags == nil {
		tags = []string{}
	}
	meta := s.reg.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	return jsonService{
		ID: s.reg.ID, Service: s.reg.Name, Tags: tags, Meta: meta, Port: s.reg.Port,
		Address: s.reg.Address, Weights: *s.reg.Weights,
		CreateIndex: s.createIndex, ModifyIndex: s.modifyIndex,
	}
}

// checkJSON; caller holds a.mu.
func (a *Agent) checkJSON(c *check) jsonCheck {
	out := jsonCheck{
		Node: c.node, CheckID: c.id, Name: c.name, Status: c.status, Notes: c.notes,
		Output: c.output, ServiceID: c.serviceID, ServiceTags: []string{}, Type: c.kind,
		Definition: map[string]any{}, CreateIndex: c.createIndex, ModifyIndex: c.modifyIndex,
	}
	if s, ok := a.services[svcKey{c.node, c.serviceID}]; ok && c.serviceID != "" {
		out.ServiceName = s.reg.Name
		if s.reg.Tags != nil {
			out.ServiceTags = s.reg.Tags
		}
	}
	if c.kind == "http" {
		out.Definition["HTTP"] = c.def.HTTP
		out.Definition["Interval"] = c.interval.String()
		out.Definition["Timeout"] = c.timeout.String()
		if c.def.DeregisterCriticalServiceAfter != "" {
			out.Definition["DeregisterCriticalServiceAfter"] = c.def.DeregisterCriticalServiceAfter
		}
	}
	return out
}

// healthJSON; caller holds a.mu.
func (a *Agent) healthJSON(e entry) jsonHealthEntry {
	out := jsonHealthEntry{Node: a.nodeJSON(e.node), Service: serviceJSON(e.service), Checks: []jsonCheck{}}
	for _, c := range e.checks {
		out.Checks = append(out.Checks, a.checkJSON(c))
	}
	return out
}

// catalogJSON; caller holds a.mu.
func (a *Agent) catalogJSON(e entry) jsonCatalogService {
	s := serviceJSON(e.service)
	return jsonCatalogService{
		ID: a.nodeJSON(e.node).ID, Node: e.node.name, Address: e.node.address, Datacenter: a.opts.Datacenter,
		ServiceID: s.ID, ServiceName: s.Service, ServiceTags: s.Tags, ServiceAddress: s.Address,
		ServiceMeta: s.Meta, ServicePort: s.Port, ServiceWeights: s.Weights,
		CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex,
	}
}

// block waits, with a.mu held, while waiting() holds, as a blocking query
// does: until a change, the wait (with Consul's jitter) lapsed or an agent
// reset. It reports false when the client left or the agent went down.
func (a *Agent) block(r *http.Request, wait time.Duration, down <-chan struct{}, waiting func() bool) bool {
	expired := make(chan struct{})
	var once sync.Once
	stop := a.clock.AfterFunc(wait+rand.N(wait/16+1), func() { once.Do(func() { close(expired) }) })
	defer stop()
	gen := a.resetGen
	a.setBlocked(1)
	for waiting() && a.resetGen == gen {
		ch := a.changed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-expired:
		case <-r.Context().Done():
		case <-down:
		}
		a.mu.Lock()
		if isDone(expired) || r.Context().Err() != nil || isDone(down) {
			break
		}
	}
	a.setBlocked(-1)
	return r.Context().Err() == nil && !isDone(down)
}
