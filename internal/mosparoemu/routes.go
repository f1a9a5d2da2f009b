package mosparoemu

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// route is the class of a request, used for the per-route counters (Node.Count).
type route uint8

const (
	routeHealth route = iota
	routeRequestSubmitToken
	routeStoreFormData
	routeCheckFormData
	routeVerify
	routeStoreMetadata
	routeStatistic
	routeResourcesCSS
	routeResourcesHashCSS
	routeCron
	routeSetup
	routeAdmin
	routeEcho
	routeStatic
	routeResourcesOther
	routeTest
	routeNotFound
	numRoutes
)

// routeNames are the names Count accepts, indexed by route.
var routeNames = [numRoutes]string{
	routeHealth:             "health",
	routeRequestSubmitToken: "request-submit-token",
	routeStoreFormData:      "store-form-data",
	routeCheckFormData:      "check-form-data",
	routeVerify:             "verify",
	routeStoreMetadata:      "store-metadata",
	routeStatistic:          "statistic",
	routeResourcesCSS:       "resources-css",
	routeResourcesHashCSS:   "resources-hash-css",
	routeCron:               "cron",
	routeSetup:              "setup",
	routeAdmin:              "admin",
	routeEcho:               "echo",
	routeStatic:             "static",
	routeResourcesOther:     "resources-other",
	routeTest:               "test",
	routeNotFound:           "not-found",
}

func (r route) String() string {
	if r < numRoutes {
		return routeNames[r]
	}
	return "unknown"
}

func routeByName(name string) (route, bool) {
	for i, n := range routeNames {
		if n == name {
			return route(i), true
		}
	}
	return 0, false
}

// classify maps a normalized path to its route class. It allocates nothing.
func classify(path []byte) route {
	switch string(path) {
	case "/api/v1/health/check":
		return routeHealth
	case "/api/v1/frontend/request-submit-token":
		return routeRequestSubmitToken
	case "/api/v1/frontend/store-form-data":
		return routeStoreFormData
	case "/api/v1/frontend/check-form-data":
		return routeCheckFormData
	case "/api/v1/verification/verify":
		return routeVerify
	case "/api/v1/verification/store-metadata":
		return routeStoreMetadata
	case "/api/v1/statistic/by-date":
		return routeStatistic
	case "/cron-jobs/execute":
		return routeCron
	case "/__echo":
		return routeEcho
	case "/__sleep", "/__status", "/__counts":
		return routeTest
	case "/favicon.ico", "/robots.txt", pathManifest, pathEntrypoints:
		return routeStatic
	case "/", "/login", "/logout", "/2fa", "/2fa_check", "/password":
		return routeAdmin
	case "/setup":
		return routeSetup
	}
	switch {
	case bytes.HasPrefix(path, []byte("/resources/")):
		rest := path[len("/resources/"):]
		if bytes.HasSuffix(rest, []byte(".css")) {
			if bytes.IndexByte(rest, '/') < 0 {
				return routeResourcesCSS
			}
			if bytes.Count(rest, []byte("/")) == 1 {
				return routeResourcesHashCSS
			}
		}
		return routeResourcesOther
	case bytes.HasPrefix(path, []byte("/build/")), bytes.HasPrefix(path, []byte("/bundles/")):
		return routeStatic
	case bytes.HasPrefix(path, []byte("/setup/")):
		return routeSetup
	case bytes.HasPrefix(path, []byte("/project")), bytes.HasPrefix(path, []byte("/administration/")),
		bytes.HasPrefix(path, []byte("/account/")), bytes.HasPrefix(path, []byte("/password/")),
		bytes.HasPrefix(path, []byte("/project-group/")):
		return routeAdmin
	}
	return routeNotFound
}

// pathCounter counts requests per (method, path); lookups of known pairs allocate nothing.
type pathCounter struct {
	mu sync.RWMutex
	m  map[string]map[string]*atomic.Int64
}

// maxCountedPaths bounds the counter map so a benchmark walking random paths cannot grow it
// without limit; further new pairs are not counted.
const maxCountedPaths = 1 << 16

func (p *pathCounter) add(method, path []byte) {
	p.mu.RLock()
	c := p.m[string(method)][string(path)]
	p.mu.RUnlock()
	if c == nil {
		p.mu.Lock()
		if p.m == nil {
			p.m = make(map[string]map[string]*atomic.Int64)
		}
		byPath := p.m[string(method)]
		if byPath == nil {
			byPath = make(map[string]*atomic.Int64)
			p.m[string(method)] = byPath
		}
		c = byPath[string(path)]
		if c == nil && len(byPath) < maxCountedPaths {
			c = new(atomic.Int64)
			byPath[string(path)] = c
		}
		p.mu.Unlock()
		if c == nil {
			return
		}
	}
	c.Add(1)
}

func (p *pathCounter) get(method, path string) int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if c := p.m[method][path]; c != nil {
		return c.Load()
	}
	return 0
}

func (p *pathCounter) reset() {
	p.mu.Lock()
	p.m = nil
	p.mu.Unlock()
}
