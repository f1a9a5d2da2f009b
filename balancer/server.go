package balancer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/clock"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Server is the public side: one fasthttp.Server over every configured
// listener, serving whatever Runtime is current.
type Server struct {
	rt     atomic.Pointer[Runtime]
	srv    *fasthttp.Server
	logger *zap.Logger
	// clock is Deps.Clock of the runtime NewServer was given; now is its
	// Now, kept as a func so per-connection users (resetGuard) take it
	// without building a method value each time.
	clock clock.Clock
	now   func() time.Time
	wd    *watchdog // client and node connection timeouts (timeouts.go)
	conns *connLimiter
	h2    h2Front // HTTP/2 connections (http2.go)

	mu       sync.Mutex
	lns      []*watchingListener // in the current runtime's listen: order
	retired  []retiredRuntime
	serving  bool // Serve runs: Swap starts serving added listeners
	stopped  bool // Serve has returned or is shutting down
	serveWG  sync.WaitGroup
	failures chan error // a listener that stopped unasked; one is enough
}

type retiredRuntime struct {
	rt *Runtime
	at time.Time // when its idle connections may be closed
}

// closeRetired closes idle connections of replaced runtimes whose time has
// come (all of them when all is set).
func (s *Server) closeRetired(now time.Time, all bool) {
	s.mu.Lock()
	var keep []retiredRuntime
	var done []*Runtime
	for _, r := range s.retired {
		if all || now.After(r.at) {
			done = append(done, r.rt)
		} else {
			keep = append(keep, r)
		}
	}
	s.retired = keep
	s.mu.Unlock()
	for _, rt := range done {
		rt.CloseIdle()
	}
}

// listenerInfo is what a connection remembers of its listener; immutable.
// What a listener does (redirects) comes from the current runtime by index.
type listenerInfo struct {
	index   int
	address string
	tls     bool
}

// NewServer prepares a server for rt; Listen binds it, Serve runs it.
func NewServer(rt *Runtime) *Server {
	clk := clock.OrSystem(rt.deps.Clock)
	s := &Server{logger: rt.deps.Logger, clock: clk, now: clk.Now, wd: newWatchdog(rt.tick()), conns: newConnLimiter()}
	rt.wd = s.wd
	s.rt.Store(rt)
	cfg := rt.cfg
	s.srv = &fasthttp.Server{
		Handler:       s.handle,
		ErrorHandler:  serverError,
		ExpectHandler: s.expect,
		// No ReadTimeout, WriteTimeout or IdleTimeout: the watchdog keeps
		// them (timeouts.go), and ctx.Time is not used.
		LazyRequestTime:    true,
		MaxRequestBodySize: cfg.Limits.MaxBodyBytes,
		HeaderReceived:     s.headerReceived,
		ReadBufferSize:     cfg.Limits.MaxHeaderBytes,
		// A 12 KiB CSS answer goes out in one write instead of three (docs/benchmarks.md).
		WriteBufferSize:               32 << 10,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisablePreParseMultipartForm:  true,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{s.logger},
	}
	// Connections that chose h2 by ALPN after the handshake (http2.go).
	s.srv.NextProto("h2", s.serveH2)
	return s
}

// Binding is the set of sockets one runtime's listen: section needs: the
// server's own for every address it already listens on (shared by address,
// so a reload refuses no connection), new ones for the rest. Nothing
// serves a new socket until Swap; Abort closes them instead.
type Binding struct {
	lns   []*watchingListener // in listen: order
	infos []*listenerInfo
	added []*watchingListener
}

// Bind binds what rt's listen: section needs that s does not hold yet,
// through rt's Deps.Listen when set. By default sockets are bound with
// IP_FREEBIND, so a VIP this host does not hold yet is fine and a VRRP
// takeover needs no restart. Bind and Swap are serialised by the caller.
func (s *Server) Bind(ctx context.Context, rt *Runtime) (*Binding, error) {
	s.mu.Lock()
	held := make(map[string]*watchingListener, len(s.lns))
	for _, l := range s.lns {
		held[l.key] = l
	}
	s.mu.Unlock()
	b := &Binding{}
	listen := rt.deps.Listen
	if listen == nil {
		listen = func(network, address string) (net.Listener, error) { return listenFreebind(ctx, network, address) }
	}
	for i, l := range rt.cfg.Listen {
		wl := held[l.Address]
		if wl == nil {
			ln, err := listen("tcp", l.Address)
			if err != nil {
				b.Abort()
				return nil, fmt.Errorf("balancer: listen %s: %w", l.Address, err)
			}
			wl = &watchingListener{Listener: ln, srv: s, key: l.Address, stop: make(chan struct{})}
			wl.tls = s.tlsConfig(wl)
			wl.tlsNoH2 = withoutH2(wl.tls)
			b.added = append(b.added, wl)
		}
		b.lns = append(b.lns, wl)
		b.infos = append(b.infos, &listenerInfo{index: i, address: wl.Addr().String(), tls: l.TLS != nil})
	}
	return b, nil
}

// Abort closes the sockets b bound; for a runtime that will not be swapped in.
func (b *Binding) Abort() {
	for _, l := range b.added {
		l.shut()
		l.Close()
	}
	b.added = nil
}

// Listen binds every listener of the server's runtime.
func (s *Server) Listen(ctx context.Context) error {
	b, err := s.Bind(ctx, s.rt.Load())
	if err != nil {
		return err
	}
	s.install(b)
	return nil
}

// Swap makes rt serve every request from now on, on the listeners of b
// (from Bind(ctx, rt)): added ones start serving, ones rt no longer lists
// are closed after that, and connections they accepted finish as usual.
// Requests already running finish on the old runtime, whose idle upstream
// connections are then closed.
func (s *Server) Swap(rt *Runtime, b *Binding) {
	rt.wd = s.wd
	s.wd.setTick(rt.tick())
	rt.rate.adopt(&s.rt.Load().rate)
	old := s.rt.Swap(rt)
	s.install(b)
	// Old in-flight requests hold their own connections; they get the
	// request timeout before the old runtime's idle ones are closed (by
	// the janitor in Serve).
	if old != rt {
		s.mu.Lock()
		s.retired = append(s.retired, retiredRuntime{rt: old, at: s.now().Add(old.timeout)})
		s.mu.Unlock()
	}
}

// install makes b's listeners the server's, serving the added ones when
// Serve runs, and closes the ones b does not keep.
func (s *Server) install(b *Binding) {
	keep := make(map[*watchingListener]bool, len(b.lns))
	for i, l := range b.lns {
		l.info.Store(b.infos[i])
		keep[l] = true
	}
	s.mu.Lock()
	var removed []*watchingListener
	for _, l := range s.lns {
		if !keep[l] {
			removed = append(removed, l)
		}
	}
	s.lns = b.lns
	if s.serving {
		for _, l := range b.added {
			s.serveLocked(l)
		}
	} else if s.stopped {
		// Serve has closed what it served; nothing would close these.
		removed = append(removed, b.added...)
	}
	s.mu.Unlock()
	b.added = nil
	for _, l := range removed {
		l.shut()
		l.Close()
	}
}

// Addrs returns the bound addresses, in listen: order.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.lns))
	for i, l := range s.lns {
		out[i] = l.info.Load().address
	}
	return out
}

// Healthy reports whether the data plane can take connections: Serve has
// not stopped and every listener accepts (its last accept did not fail). VRRP
// tracks it like the pool, so a peer takes the VIP from an LB that cannot.
func (s *Server) Healthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || len(s.lns) == 0 {
		return false
	}
	now := s.now().UnixNano()
	for _, l := range s.lns {
		if l.dead.Load() {
			return false
		}
		// accept4 fails with EMFILE before looking at the backlog, so a
		// failure is reported until no retry (at most a second apart)
		// has failed for failWindow.
		if at := l.failedAt.Load(); at != 0 && now-at < int64(failWindow) {
			return false
		}
	}
	return true
}

// failWindow is how long a failed accept keeps a listener unhealthy: two
// of its longest retry delays.
const failWindow = 2 * time.Second

// Serve accepts on every listener until ctx is cancelled or a listener
// stops accepting unasked (then it returns that error: a process that
// cannot serve must not look alive), then stops accepting and lets
// in-flight requests finish within shutdown.grace.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if len(s.lns) == 0 || s.serving || s.stopped {
		s.mu.Unlock()
		return errors.New("balancer: Serve before Listen, twice or after it returned")
	}
	s.serving = true
	s.failures = make(chan error, 1)
	for _, l := range s.lns {
		s.serveLocked(l)
	}
	s.mu.Unlock()
	wctx, stopWatchdog := context.WithCancel(context.Background())
	defer stopWatchdog()
	go s.wd.run(wctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err = <-s.failures:
			break wait
		case <-tick.C:
			// The ticker only paces the janitor; the retired runtimes'
			// times are the clock's (Swap).
			s.closeRetired(s.now(), false)
		}
	}
	s.mu.Lock()
	s.serving, s.stopped = false, true
	lns := s.lns
	for _, l := range lns {
		l.shut()
	}
	s.mu.Unlock()
	grace := s.rt.Load().cfg.Shutdown.Grace.D()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	s.h2.shutdown() // GOAWAY first: fasthttp waits for h2 connections too
	if serr := s.srv.ShutdownWithContext(sctx); serr != nil && err == nil && !errors.Is(serr, context.DeadlineExceeded) {
		err = fmt.Errorf("balancer: shutdown: %w", serr)
	}
	// fasthttp's Shutdown closes only the listeners its Serve has registered
	// so far; one whose goroutine had not reached that point would be served
	// forever and this wait would never end. Closing them all here is what
	// makes every Serve return (closing twice only reports an error).
	for _, l := range lns {
		l.Close()
	}
	s.serveWG.Wait()
	s.closeRetired(time.Time{}, true)
	s.rt.Load().CloseIdle()
	return err
}

// serveLocked serves l until it is closed; returning for any other reason
// is a failure that ends Serve.
func (s *Server) serveLocked(l *watchingListener) {
	s.serveWG.Go(func() {
		err := s.srv.Serve(l)
		if l.closing.Load() {
			return
		}
		l.dead.Store(true)
		if err == nil {
			err = errors.New("stopped accepting")
		}
		select {
		case s.failures <- fmt.Errorf("balancer: listener %s: %w", l.info.Load().address, err):
		default:
		}
	})
}

// tlsConfig serves the listener's certificates from the current runtime:
// an ACME domain's managed one (acme.go), else the files chosen by SNI
// (first one when none matches); TLS 1.2 minimum.
func (s *Server) tlsConfig(l *watchingListener) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1", acmeALPN}, // h2 only where listen[].http2 is on (listenerTLS)
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			rt := s.rt.Load()
			index := l.info.Load().index
			if cert, done, err := rt.acmeCertificate(index, hello); done {
				return cert, err
			}
			if index >= len(rt.certs) || len(rt.certs[index]) == 0 {
				return nil, errors.New("balancer: no certificate for this listener")
			}
			certs := rt.certs[index]
			for i := range certs {
				if hello.SupportsCertificate(&certs[i]) == nil {
					return &certs[i], nil
				}
			}
			return &certs[0], nil
		},
	}
}

// redirect answers plain HTTP with a permanent redirect to HTTPS, keeping
// method and body semantics (308). checkRequest has validated Host and put
// an absolute-form target's authority there; a request without Host
// (HTTP/1.0) goes to the listener's default_host, else gets 400 rather than
// a Location of "https:///x" (issue 11, item 9).
func redirect(ctx *fasthttp.RequestCtx, l *configs.Listener) {
	host := ctx.Request.Header.Host()
	if len(host) == 0 {
		host = []byte(l.DefaultHost)
	}
	if len(host) == 0 || !validHost(host) {
		badRequest(ctx)
		return
	}
	u := append([]byte("https://"), hostOnly(host)...)
	if l.RedirectPort != 0 && l.RedirectPort != 443 {
		u = append(u, ':')
		u = strconv.AppendInt(u, int64(l.RedirectPort), 10)
	}
	target := ctx.Request.Header.RequestURI()
	if !isOriginForm(target) {
		_, target, _ = absoluteForm(target)
	}
	if len(target) == 0 || target[0] != '/' {
		u = append(u, '/') // "*", or an absolute-form "http://a?q"
	}
	if string(target) != "*" {
		u = append(u, target...)
	}
	ctx.Response.Header.SetBytesV("Location", u)
	ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
}

// hostOnly drops the port of a valid Host value, keeping an IPv6
// literal's brackets ("[::1]:80" is "[::1]", not "::1").
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		return h[:bytes.IndexByte(h, ']')+1]
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// ListenFreebind binds address as the server does without Deps.Listen:
// with IP_FREEBIND, so a VIP this host does not hold yet is fine. A Listen
// hook falls back to it for addresses it has no socket for.
func ListenFreebind(network, address string) (net.Listener, error) {
	return listenFreebind(context.Background(), network, address)
}

func listenFreebind(ctx context.Context, network, address string) (net.Listener, error) {
	lc := net.ListenConfig{Control: freebind}
	return lc.Listen(ctx, network, address)
}

// freebind lets the socket bind to an address not (yet) on this host.
func freebind(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "tcp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			if serr != nil {
				return
			}
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// watchingListener hands out connections that remember their listener and
// whose timeouts the server's watchdog keeps, TLS ones when its listen:
// entry says so.
type watchingListener struct {
	net.Listener
	srv      *Server
	key      string // the configured address, by which reloads share it
	tls      *tls.Config
	tlsNoH2  *tls.Config                  // tls without h2, for listeners with http2 off
	info     atomic.Pointer[listenerInfo] // replaced by each Swap
	closing  atomic.Bool                  // closed on purpose: not a failure
	stop     chan struct{}                // closed by shut: ends a retry pause in Accept
	stopOnce sync.Once
	dead     atomic.Bool  // serving stopped unasked
	failedAt atomic.Int64 // unix ns of the last failed accept; 0 after a success
}

// Accept returns the next connection within limits.max_conns and
// max_conns_per_ip (connlimit.go), closing those over them: an error here
// would stop fasthttp serving the listener.
func (l *watchingListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			l.failedAt.Store(0)
			if wc := l.admit(c); wc != nil {
				return wc, nil
			}
			continue
		}
		if l.closing.Load() || !resourceShortage(err) {
			return nil, err
		}
		// Out of descriptors or memory: the connection waits in the
		// backlog; retry with backoff (as net/http does) and report the
		// listener unhealthy meanwhile so VRRP can move the VIP.
		if l.failedAt.Swap(l.srv.now().UnixNano()) == 0 {
			l.srv.logger.Error("listener cannot accept; retrying", zap.String("listener", l.key), zap.Error(err))
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		// On the server's clock, like failedAt, so a test steps through
		// the retries; shut ends the pause, or a clock that is not moving
		// would keep Serve from returning.
		select {
		case <-l.srv.clock.After(delay):
		case <-l.stop:
		}
	}
}

// shut marks l as closed on purpose (a failing Accept then returns instead
// of retrying); closing it is the caller's.
func (l *watchingListener) shut() {
	l.closing.Store(true)
	l.stopOnce.Do(func() {
		if l.stop != nil {
			close(l.stop)
		}
	})
}

// admit wraps c for serving, or closes it and returns nil when it is over
// a connection limit.
func (l *watchingListener) admit(c net.Conn) net.Conn {
	rt := l.srv.rt.Load()
	peer := tcpPeer(c.RemoteAddr())
	info := l.info.Load()
	var wc *watchedConn
	if pp := rt.proxyPolicy(info.index); pp != nil {
		// The per-IP limit waits for the client the header names.
		if wc = l.srv.acceptProxied(c, peer, pp, rt, info); wc == nil {
			return nil
		}
	} else {
		lim := rt.cfg.Limits
		if r := l.srv.conns.admit(peer, lim.MaxConns, lim.MaxConnsPerIP, rt.fwd.isTrusted(peer)); r != admitted {
			c.Close()
			l.srv.conns.logRefusal(l.srv.logger, r, peer, l.srv.now())
			return nil
		}
		wc = l.srv.wd.watch(&watchedConn{Conn: c, srv: l.srv, ln: info, peer: peer, rs: newRawSock(c)})
		// Like the rest of a request, its first byte is due within client_read.
		wc.arm(rt.clientRead, limitRead)
	}
	if info.tls {
		return tls.Server(wc, l.listenerTLS(rt, info.index))
	}
	return wc
}

// resourceShortage reports an accept error that passes when descriptors
// or memory are freed.
func resourceShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// ConnStats reports the client connections open and refused.
func (s *Server) ConnStats() ConnStats { return s.conns.stats() }

type fasthttpLogger struct{ l *zap.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", zap.String("msg", fmt.Sprintf(format, args...)))
}
