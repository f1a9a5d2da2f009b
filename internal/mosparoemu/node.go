package mosparoemu

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Options configures one emulated node. The zero value is a usable demo node.
type Options struct {
	// Name is the node name; every response carries `X-Mosparo-Node: <Name>` (default "node").
	Name string
	// Addr is the listen address (default "127.0.0.1:0").
	Addr string
	// Logger receives lifecycle logs (nil = nop).
	Logger *zap.Logger
	// Projects are the node's projects (default: DemoProject()).
	Projects []Project
	// CronKey is webCronJobSecretKey (default "demo-cron-key").
	CronKey string
	// CronDisabled makes webCronJobActive false: the web cron answers 403 (FACTS 6.1 check 3).
	CronDisabled bool
	// CronInterval is webCronJobInterval (default 10 minutes, FACTS 6.1).
	CronInterval time.Duration
	// CronDuration is how long an accepted web-cron run takes (default 0); during a run a
	// second call gets 429 once a schedule exists (FACTS 6.1 check 5).
	CronDuration time.Duration
	// TrustedProxies is mosparo's TRUSTED_PROXIES, one entry per element, keywords REMOTE_ADDR
	// and PRIVATE_SUBNETS allowed (default "127.0.0.1", "REMOTE_ADDR" like the Docker images,
	// FACTS 4). A non-nil empty slice trusts nobody.
	TrustedProxies []string
	// HealthAllowList is MOSPARO_HEALTH_ALLOW_LIST, parsed like mosparo (FACTS 1.2: split on ","
	// and newlines, no trimming). Default "127.0.0.1,::1"; set AllowAllHealth for the empty list.
	HealthAllowList string
	// AllowAllHealth sets MOSPARO_HEALTH_ALLOW_LIST to the empty string (everyone allowed).
	AllowAllHealth bool
	// Database holds what mosparo keeps in its database (submit tokens, submissions). Nodes of
	// one cluster share one; nil gives the node a private one.
	Database *Database
	// LockoutAfter enables mosparo's lockout feature for the frontend API: more than this many
	// request-submit-token/check-form-data requests from one client IP (as resolved through
	// TrustedProxies, FACTS 4) within LockoutWindow lock that IP out for LockoutDuration
	// (default 0 = off; window default 1 minute, duration default 5 minutes). The counters
	// live in the Database, like mosparo's Lockout rows.
	LockoutAfter    int
	LockoutWindow   time.Duration
	LockoutDuration time.Duration
	// Clock is the clock for the web-cron schedule and lockouts (default clock.System).
	Clock clock.Clock
	// Version is the node's code version, Kernel::VERSION (default DefaultVersion); see
	// SetVersion.
	Version string
	// ScriptName is the front controller's SCRIPT_NAME, which decides the spellings of a route
	// that reach it (FACTS 11.1): ScriptNginx (default, the Docker image) or ScriptApacheRoot.
	ScriptName string
}

// Project is one mosparo project served by a node.
type Project struct {
	// UUID is the canonical lower-case project UUID (used in /resources/ URLs).
	UUID string
	// PublicKey and PrivateKey are the API key pair (FACTS 8.1).
	PublicKey, PrivateKey string
	// Hosts are the project hosts for CORS (FACTS 2.1): an exact "host[:port]" as in the Origin
	// header without scheme, or a "*"-prefixed suffix pattern; "*" alone matches every origin
	// (default ["*"]).
	Hosts []string
	// CSS is the prepared project CSS (default: about 12 KiB of deterministic
	// `.mosparo__<uuid>` rules, see DefaultCSS).
	CSS []byte
}

// Demo project values (FACTS 8.1 test vectors use these keys).
const (
	DemoUUID       = "0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a"
	DemoPublicKey  = "PUBLICKEY_example"
	DemoPrivateKey = "PRIVATEKEY_example"
	DemoCronKey    = "demo-cron-key"
)

// DemoProject returns the default project.
func DemoProject() Project {
	return Project{UUID: DemoUUID, PublicKey: DemoPublicKey, PrivateKey: DemoPrivateKey}
}

// Health is the state a node's health endpoint reports (FACTS 1.1).
type Health int32

// Health states, FACTS 1.1 table.
const (
	// Connected: 200 `connected`.
	Connected Health = iota + 1
	// DBFailed: 500 `connection-failed` with the exception message; every PHP route that
	// queries the database (frontend and server APIs, web cron, admin UI, the unhashed CSS
	// URL) answers Symfony's 500 HTML page, the hashed CSS is still served from the cache.
	DBFailed
	// NotConfigured: 200 `test-skipped__not-configured`; every non-setup route redirects to
	// /setup/ and the setup wizard is open (FACTS 1.4, 2.8).
	NotConfigured
	// UpdateNotFinished: 200 `test-skipped__update-not-finished`; GET UI routes redirect to
	// /administration/update/finalize (FACTS 1.4).
	UpdateNotFinished
	// Bypassed: MOSPARO_BYPASS_HEALTH_CHECK=1, 200 `bypassed` with healthy null.
	Bypassed
	// Broken: a broken env/config; every PHP route answers Symfony's 500 HTML page.
	Broken
)

func (h Health) String() string {
	switch h {
	case Connected:
		return "connected"
	case DBFailed:
		return "db-failed"
	case NotConfigured:
		return "not-configured"
	case UpdateNotFinished:
		return "update-not-finished"
	case Bypassed:
		return "bypassed"
	case Broken:
		return "broken"
	}
	return fmt.Sprintf("Health(%d)", int32(h))
}

// Node is one running emulated mosparo node. Its methods are safe for concurrent use. A Node
// must be closed with Close; it can be brought back with Restart.
type Node struct {
	name    string
	nameHdr []byte
	log     *zap.Logger
	now     func() time.Time

	projects    []*project
	byPublicKey map[string]*project
	byUUID      map[string]*project
	trusted     trustedProxies
	allow       allowList
	db          *Database

	lockoutAfter    int
	lockoutWindow   time.Duration
	lockoutDuration time.Duration

	cronKey      []byte
	cronDisabled bool
	cronInterval time.Duration
	cronDuration time.Duration
	cron         cronState

	script     string
	version    versionState
	finalized  atomic.Int64
	health     atomic.Int32
	cronAnswer atomic.Int32
	delay      atomic.Int64
	counts     [numRoutes]atomic.Int64
	paths      pathCounter
	sessions   sessionStore
	loginSeq   atomic.Uint64
	sessSeed   uint64

	mu   sync.Mutex // guards the fields below (the listening incarnation)
	addr string
	inc  *incarnation
}

// incarnation is one listening period of a node, between Start/Restart and Close.
type incarnation struct {
	ln        *trackingListener
	srv       *fasthttp.Server
	stop      chan struct{} // closed by Close: wakes sleeping handlers
	serveDone chan struct{}
}

// Start creates a node and listens; it is serving when Start returns.
func Start(opts Options) (*Node, error) {
	n, err := newNode(opts)
	if err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := n.listen(addr); err != nil {
		return nil, err
	}
	return n, nil
}

func newNode(opts Options) (*Node, error) {
	n := &Node{
		name:         opts.Name,
		log:          opts.Logger,
		now:          clock.OrSystem(opts.Clock).Now,
		db:           opts.Database,
		cronKey:      []byte(opts.CronKey),
		cronDisabled: opts.CronDisabled,
		cronInterval: opts.CronInterval,
		cronDuration: opts.CronDuration,

		lockoutAfter:    opts.LockoutAfter,
		lockoutWindow:   opts.LockoutWindow,
		lockoutDuration: opts.LockoutDuration,
	}
	if n.lockoutWindow <= 0 {
		n.lockoutWindow = time.Minute
	}
	if n.lockoutDuration <= 0 {
		n.lockoutDuration = 5 * time.Minute
	}
	if n.name == "" {
		n.name = "node"
	}
	n.nameHdr = []byte(n.name)
	if n.log == nil {
		n.log = zap.NewNop()
	}
	n.log = n.log.Named("mosparoemu").With(zap.String("node", n.name))
	if n.db == nil {
		n.db = NewDatabase()
	}
	if opts.CronKey == "" {
		n.cronKey = []byte(DemoCronKey)
	}
	if n.cronInterval <= 0 {
		n.cronInterval = 10 * time.Minute
	}
	tp := opts.TrustedProxies
	if tp == nil {
		tp = []string{"127.0.0.1", "REMOTE_ADDR"}
	}
	n.trusted = parseTrustedProxies(tp)
	switch {
	case opts.AllowAllHealth:
		n.allow = parseAllowList("")
	case opts.HealthAllowList == "":
		n.allow = parseAllowList("127.0.0.1,::1")
	default:
		n.allow = parseAllowList(opts.HealthAllowList)
	}
	projects := opts.Projects
	if len(projects) == 0 {
		projects = []Project{DemoProject()}
	}
	n.byPublicKey = make(map[string]*project, len(projects))
	n.byUUID = make(map[string]*project, len(projects))
	for _, p := range projects {
		if p.UUID == "" || p.PublicKey == "" {
			return nil, fmt.Errorf("mosparoemu: project %q: uuid and public key required", p.UUID)
		}
		pp := newProject(p)
		if _, dup := n.byUUID[pp.uuid]; dup {
			return nil, fmt.Errorf("mosparoemu: duplicate project uuid %q", p.UUID)
		}
		if _, dup := n.byPublicKey[p.PublicKey]; dup {
			return nil, fmt.Errorf("mosparoemu: duplicate public key %q", p.PublicKey)
		}
		n.projects = append(n.projects, pp)
		n.byPublicKey[p.PublicKey] = pp
		n.byUUID[pp.uuid] = pp
	}
	n.sessSeed = uint64(time.Now().UnixNano())
	n.SetVersion(opts.Version)
	n.script = opts.ScriptName
	if n.script == "" {
		n.script = ScriptNginx
	}
	n.health.Store(int32(Connected))
	return n, nil
}

func (n *Node) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mosparoemu: listen: %w", err)
	}
	tl := newTrackingListener(ln)
	inc := &incarnation{
		ln:        tl,
		stop:      make(chan struct{}),
		serveDone: make(chan struct{}),
	}
	inc.srv = &fasthttp.Server{
		Handler:            func(ctx *fasthttp.RequestCtx) { n.handle(ctx, inc) },
		Name:               "nginx",
		MaxRequestBodySize: 16 << 20,
		// nginx's large_client_header_buffers 4 8k: headers up to 32 KiB in total.
		ReadBufferSize:               32 << 10,
		DisablePreParseMultipartForm: true,
		Logger:                       zapPrintf{n.log},
		CloseOnShutdown:              true,
		// fasthttp's worker-pool cleaner only notices a stop after sleeping this long; keep
		// it short so the goroutine is gone right after Close (goleak in callers' tests).
		// Workers serve whole connections, so a short idle time costs nothing under load.
		MaxIdleWorkerDuration: 50 * time.Millisecond,
	}
	n.addr = ln.Addr().String()
	n.inc = inc
	go func() {
		defer close(inc.serveDone)
		_ = inc.srv.Serve(tl)
	}()
	n.log.Info("listening", zap.String("addr", n.addr))
	return nil
}

// Addr returns the listen address ("127.0.0.1:port"), also after Close.
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// URL returns "http://" + Addr().
func (n *Node) URL() string { return "http://" + n.Addr() }

// Name returns the node name.
func (n *Node) Name() string { return n.name }

// Close stops listening and closes every open connection at once, like a killed node; requests
// in flight get their connection closed. It returns after all of them finished. Closing a
// closed node is a no-op.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	inc := n.inc
	if inc == nil {
		return nil
	}
	n.inc = nil
	// Connections first, so a handler woken by stop cannot deliver an answer any more.
	err := inc.ln.Close() // closes the listener and every accepted connection
	close(inc.stop)
	_ = inc.srv.Shutdown() // waits until every connection's goroutine is done
	<-inc.serveDone
	n.log.Info("closed")
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Restart listens again on the same address after Close, keeping all state (a restarted
// process with the same database and temp directory). On a running node it does nothing.
func (n *Node) Restart() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inc != nil {
		return nil
	}
	return n.listen(n.addr)
}

// SetHealth sets the state the health endpoint reports and the routing behaviour that goes with
// it (see Health). Unknown values count as Connected.
func (n *Node) SetHealth(h Health) {
	if h < Connected || h > Broken {
		h = Connected
	}
	n.health.Store(int32(h))
}

// HealthState returns the current Health.
func (n *Node) HealthState() Health { return Health(n.health.Load()) }

// SetCronAnswer forces the web cron's answer: 0 restores the real behaviour (FACTS 6.1, per-node
// lock and schedule), any of 200, 400, 401, 403, 425, 429, 500 is answered with mosparo's body
// for that status without running anything.
func (n *Node) SetCronAnswer(code int) { n.cronAnswer.Store(int32(code)) }

// SetDelay delays every answer by d (0 = none), for timeout tests. Close interrupts the delay.
func (n *Node) SetDelay(d time.Duration) { n.delay.Store(int64(d)) }

// Count returns how many requests of a route class arrived since Start or Reset: "health",
// "request-submit-token", "store-form-data", "check-form-data", "verify", "store-metadata",
// "statistic",
// "resources-css", "resources-hash-css", "resources-other", "cron", "setup", "admin", "echo",
// "static", "test" (/__sleep, /__status), "not-found". Unknown names give -1.
func (n *Node) Count(name string) int64 {
	r, ok := routeByName(name)
	if !ok {
		return -1
	}
	return n.counts[r].Load()
}

// Total returns the number of requests of every class.
func (n *Node) Total() int64 {
	var t int64
	for i := range n.counts {
		t += n.counts[i].Load()
	}
	return t
}

// Requests returns how many requests with this method and normalized path (no query) arrived,
// e.g. Requests("POST", "/api/v1/frontend/check-form-data").
func (n *Node) Requests(method, path string) int64 { return n.paths.get(method, path) }

// CronRuns returns how many web-cron runs this node actually performed (200 answers that ran
// the jobs, not forced answers).
func (n *Node) CronRuns() int64 { return n.cron.runs.Load() }

// Database returns the node's database (shared or private).
func (n *Node) Database() *Database { return n.db }

// Reset restores the node-local state of a fresh node: counters, health Connected, real cron
// behaviour with no schedule, no delay, no setup sessions. The Database is left alone.
func (n *Node) Reset() {
	for i := range n.counts {
		n.counts[i].Store(0)
	}
	n.paths.reset()
	n.health.Store(int32(Connected))
	n.cronAnswer.Store(0)
	n.delay.Store(0)
	n.cron.reset()
	n.sessions.reset()
}

// zapPrintf adapts the node logger to fasthttp's Logger.
type zapPrintf struct{ log *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) {
	if ce := z.log.Check(zap.DebugLevel, "fasthttp"); ce != nil {
		ce.Write(zap.String("message", strings.TrimSpace(fmt.Sprintf(format, args...))))
	}
}

// trackingListener remembers accepted connections so Close can drop them at once.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newTrackingListener(ln net.Listener) *trackingListener {
	return &trackingListener{Listener: ln, conns: make(map[*trackedConn]struct{})}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// Close closes the listener and every tracked connection; it is idempotent.
func (l *trackingListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	err := l.Listener.Close()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return err
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return err
}
