package balancer

import "bytes"

// Class is a mosparo route class (DESIGN.md, "A request's way through").
// The zero value is Admin: whatever is not recognised is mosparo's stateful UI.
type Class uint8

// The route classes, from FACTS section 2.
const (
	Admin     Class = iota // the UI (firewall main): /project, /administration, /login ...
	Frontend               // /api/v1/frontend/*: the browser widget's POSTs (2.1)
	API                    // verification, statistic, rule-package: integrator backends (2.2)
	Resources              // /resources/*: per-project CSS and logo (2.5)
	Static                 // /build/*, /bundles/*, favicon, robots (2.6)
	Health                 // /api/v1/health/check (1.1)
	Cron                   // /cron-jobs/execute (6.1)
	Setup                  // /setup/*, /upgrade/* (2.8)
	// NumClasses is the number of route classes.
	NumClasses
)

var classNames = [NumClasses]string{"admin", "frontend", "api", "resources", "static", "health", "cron", "setup"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "invalid"
}

// ParseClass is the inverse of String, for configuration keys.
func ParseClass(s string) (Class, bool) {
	for i, n := range classNames {
		if n == s {
			return Class(i), true
		}
	}
	return 0, false
}

var (
	pFrontend   = []byte("/api/v1/frontend/")
	pHealth     = []byte("/api/v1/health/check")
	pAPI        = []byte("/api/")
	pResources  = []byte("/resources/")
	pBuild      = []byte("/build/")
	pBundles    = []byte("/bundles/")
	pUpdateLog  = []byte("/update-log/")
	pFavicon    = []byte("/favicon.ico")
	pRobots     = []byte("/robots.txt")
	pCron       = []byte("/cron-jobs/execute")
	pSetup      = []byte("/setup/")
	pSetupExact = []byte("/setup")
	pUpgrade    = []byte("/upgrade/")
)

// Classify maps a normalized request path to its route class. It must see the
// same path form the node will see (fasthttp's normalized one, PEERS 5.5), so
// a path that looks like a frontend call cannot reach a node as the UI.
func Classify(path []byte) Class {
	switch {
	case bytes.HasPrefix(path, pAPI):
		switch {
		case bytes.HasPrefix(path, pFrontend):
			return Frontend
		case bytes.Equal(path, pHealth) || hasSegmentPrefix(path, pHealth):
			return Health
		}
		// The verification, statistic and rule-package APIs; other /api/
		// paths do not exist in mosparo 1.5, and the node answers 404.
		return API
	case bytes.HasPrefix(path, pResources):
		return Resources
	case bytes.HasPrefix(path, pBuild), bytes.HasPrefix(path, pBundles), bytes.HasPrefix(path, pUpdateLog),
		bytes.Equal(path, pFavicon), bytes.Equal(path, pRobots):
		return Static
	case bytes.Equal(path, pCron) || hasSegmentPrefix(path, pCron):
		return Cron
	case bytes.HasPrefix(path, pSetup), bytes.Equal(path, pSetupExact), bytes.HasPrefix(path, pUpgrade):
		return Setup
	}
	return Admin
}

// hasSegmentPrefix reports whether path is prefix followed by "/" (a
// trailing slash variant Symfony would redirect), so the guard on health
// and cron cannot be bypassed with "/cron-jobs/execute/".
func hasSegmentPrefix(path, prefix []byte) bool {
	return len(path) > len(prefix) && path[len(prefix)] == '/' && bytes.HasPrefix(path, prefix)
}
