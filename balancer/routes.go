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

// Classify maps a normalized request path to its route class, front-controller
// prefixes included (see Canonical); a path Canonical refuses is Admin.
func Classify(path []byte) Class {
	canon, _ := Canonical(path)
	return classify(canon)
}

// classify maps a canonical path to its route class. It must see the same
// path form the node will route (fasthttp's normalized one, PEERS 5.5, with
// the front-controller prefixes removed), so a path that looks like a
// frontend call cannot reach a node as the UI.
func classify(path []byte) Class {
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

var (
	pIndexPHP = []byte("/index.php")
	pPublic   = []byte("/public")
	pSlash    = []byte("/")
	scriptPHP = []byte("index.php")
)

// Canonical is the path mosparo routes for a normalized (percent-decoded)
// request path: every leading "/index.php" and "/public" segment removed, in
// any order and number (FACTS 11.1: nginx passes /index.php/<route> to PHP,
// Apache's root .htaccess /public/<route> and /public/index.php/<route>, and
// Symfony's base-URL detection strips them). The result aliases path.
//
// ok is false when "index.php" (any case) is still in the canonical path.
// No mosparo route contains it, and Symfony's base-URL detection cuts such
// paths at places that differ per web server (with Apache's root .htaccess,
// "/x/public/index.php/cron-jobs/execute" and "/index.php1234567/cron-jobs/execute"
// both reach the web cron), so the edge refuses them rather than guess.
// Every path the edge forwards is thus one Symfony routes unchanged.
func Canonical(path []byte) (canon []byte, ok bool) {
	for {
		switch {
		case hasSegment(path, pIndexPHP):
			path = path[len(pIndexPHP):]
		case hasSegment(path, pPublic):
			path = path[len(pPublic):]
		default:
			if len(path) == 0 {
				return pSlash, true
			}
			return path, !containsFold(path, scriptPHP)
		}
	}
}

// hasSegment reports whether path is seg or starts with seg + "/".
func hasSegment(path, seg []byte) bool {
	return bytes.HasPrefix(path, seg) && (len(path) == len(seg) || path[len(seg)] == '/')
}

// containsFold reports whether s contains the lower-case ASCII word w in any
// case, without allocating.
func containsFold(s, w []byte) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for ; j < len(w); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// hasSegmentPrefix reports whether path is prefix followed by "/" (a
// trailing slash variant Symfony would redirect), so the guard on health
// and cron cannot be bypassed with "/cron-jobs/execute/".
func hasSegmentPrefix(path, prefix []byte) bool {
	return len(path) > len(prefix) && path[len(prefix)] == '/' && bytes.HasPrefix(path, prefix)
}
