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
	wd     *watchdog // client and node connection timeouts (timeouts.go)
	conns  *connLimiter

	mu        sync.Mutex
	listeners []net.Listener
	infos     []*listenerInfo
	retired   []retiredRuntime
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
	s := &Server{logger: rt.deps.Logger, wd: newWatchdog(rt.tick()), conns: newConnLimiter()}
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
	return s
}

// Swap makes rt serve every request from now on; requests already running
// finish on the old one, whose idle upstream connections are then closed.
// Listener addresses are fixed at start: a changed listen: section is
// reported and needs a restart.
func (s *Server) Swap(rt *Runtime) error {
	rt.wd = s.wd
	s.wd.setTick(rt.tick())
	rt.rate.adopt(&s.rt.Load().rate)
	old := s.rt.Swap(rt)
	var err error
	if !sameListeners(old.cfg.Listen, rt.cfg.Listen) {
		err = errors.New("balancer: listen: changes take effect after a restart")
	}
	// Old in-flight requests hold their own connections; they get the
	// request timeout before the old runtime's idle ones are closed (by
	// the janitor in Serve).
	s.mu.Lock()
	s.retired = append(s.retired, retiredRuntime{rt: old, at: time.Now().Add(old.timeout)})
	s.mu.Unlock()
	return err
}

func sameListeners(a, b []configs.Listener) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Address != b[i].Address || (a[i].TLS == nil) != (b[i].TLS == nil) {
			return false
		}
	}
	return true
}

// Listen binds every configured listener. Sockets are bound with
// IP_FREEBIND, so a VIP this host does not hold yet is fine and a VRRP
// takeover needs no restart.
func (s *Server) Listen(ctx context.Context) error {
	rt := s.rt.Load()
	lc := net.ListenConfig{Control: freebind}
	for i, l := range rt.cfg.Listen {
		ln, err := lc.Listen(ctx, "tcp", l.Address)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("balancer: listen %s: %w", l.Address, err)
		}
		info := &listenerInfo{index: i, address: ln.Addr().String(), tls: l.TLS != nil}
		var wrapped net.Listener = &watchingListener{Listener: ln, srv: s, info: info}
		if l.TLS != nil {
			wrapped = tls.NewListener(wrapped, s.tlsConfig(i))
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, wrapped)
		s.infos = append(s.infos, info)
		s.mu.Unlock()
	}
	return nil
}

// Addrs returns the bound addresses, in listen: order.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.infos))
	for i, info := range s.infos {
		out[i] = info.address
	}
	return out
}

// Serve accepts on every listener until ctx is cancelled, then stops
// accepting and lets in-flight requests finish within shutdown.grace.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	lns := append([]net.Listener(nil), s.listeners...)
	s.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("balancer: Serve before Listen")
	}
	wctx, stopWatchdog := context.WithCancel(context.Background())
	defer stopWatchdog()
	go s.wd.run(wctx)
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func(ln net.Listener) { errc <- s.srv.Serve(ln) }(ln)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err = <-errc:
			err = fmt.Errorf("balancer: serve: %w", err)
			break wait
		case now := <-tick.C:
			s.closeRetired(now, false)
		}
	}
	grace := s.rt.Load().cfg.Shutdown.Grace.D()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if serr := s.srv.ShutdownWithContext(sctx); serr != nil && err == nil && !errors.Is(serr, context.DeadlineExceeded) {
		err = fmt.Errorf("balancer: shutdown: %w", serr)
	}
	// fasthttp's Shutdown closes only the listeners its Serve has registered
	// so far; one whose goroutine had not reached that point would be served
	// forever and this wait would never end. Closing them all here is what
	// makes every Serve return (closing twice only reports an error).
	for _, ln := range lns {
		ln.Close()
	}
	for range lns {
		if e := <-errc; e != nil && err == nil && ctx.Err() == nil {
			err = e
		}
		if len(errc) == 0 {
			break
		}
	}
	s.closeRetired(time.Time{}, true)
	s.rt.Load().CloseIdle()
	return err
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.listeners, s.infos = nil, nil
}

// tlsConfig serves the listener's certificates from the current runtime,
// chosen by SNI (first one when none matches); TLS 1.2 minimum.
func (s *Server) tlsConfig(index int) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			rt := s.rt.Load()
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
// whose timeouts the server's watchdog keeps.
type watchingListener struct {
	net.Listener
	srv  *Server
	info *listenerInfo
}

// Accept closes connections over limits.max_conns or max_conns_per_ip
// (connlimit.go) and returns the next one within them: an error here would
// stop fasthttp serving the listener.
func (l *watchingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		rt := l.srv.rt.Load()
		peer := tcpPeer(c.RemoteAddr())
		lim := rt.cfg.Limits
		if r := l.srv.conns.admit(peer, lim.MaxConns, lim.MaxConnsPerIP, rt.fwd.isTrusted(peer)); r != admitted {
			c.Close()
			l.srv.conns.logRefusal(l.srv.logger, r, peer, time.Now())
			continue
		}
		wc := l.srv.wd.watch(&watchedConn{Conn: c, srv: l.srv, ln: l.info, peer: peer})
		// Like the rest of a request, its first byte is due within client_read.
		wc.arm(rt.clientRead, limitRead)
		return wc, nil
	}
}

// ConnStats reports the client connections open and refused.
func (s *Server) ConnStats() ConnStats { return s.conns.stats() }

type fasthttpLogger struct{ l *zap.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", zap.String("msg", fmt.Sprintf(format, args...)))
}
