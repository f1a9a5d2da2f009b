package balancer

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Connection timeouts are kept by one watchdog per Server instead of
// per-request deadlines. A deadline on a Go connection (SetReadDeadline)
// reads the clock and moves a runtime timer under a lock; fasthttp arms up to
// five of them for one proxied request, which cost more than the header
// rewriting (docs/benchmarks.md). Here a connection only stores, with a coarse
// clock, when its current phase must end, and the watchdog, scanning every
// tick, fails the late ones by setting a deadline in the past: the blocked
// read or write returns the usual timeout error, so fasthttp and forward see
// exactly what a native deadline would give them.
//
// A phase never ends early and at most two ticks late; the tick follows the
// shortest configured timeout (tickFor).

// Which directions a phase limits; stored in the low bits of an expiry.
const (
	limitRead  = 1
	limitWrite = 2
	limitBits  = limitRead | limitWrite
)

// pastDeadline fails any blocked or future I/O at once.
var pastDeadline = time.Unix(1, 0)

type watchdog struct {
	tick  atomic.Int64 // ns between scans
	now   atomic.Int64 // coarse clock: unix ns at the last scan
	reset chan struct{}

	mu    sync.Mutex
	conns map[*watchedConn]struct{}
}

func newWatchdog(tick time.Duration) *watchdog {
	w := &watchdog{conns: make(map[*watchedConn]struct{}), reset: make(chan struct{}, 1)}
	w.tick.Store(int64(tick))
	w.now.Store(time.Now().UnixNano())
	return w
}

// tickFor is a twentieth of the shortest timeout, within [5ms, 250ms]: the
// 30 s defaults are kept to within half a second, a test's 300 ms to 30 ms.
func tickFor(timeouts ...time.Duration) time.Duration {
	tick := 250 * time.Millisecond
	for _, d := range timeouts {
		if d > 0 && d/20 < tick {
			tick = d / 20
		}
	}
	return max(tick, 5*time.Millisecond)
}

// setTick changes the scan interval (a reload changed the timeouts).
func (w *watchdog) setTick(tick time.Duration) {
	if w.tick.Swap(int64(tick)) != int64(tick) {
		select {
		case w.reset <- struct{}{}:
		default:
		}
	}
}

// run scans until ctx is done.
func (w *watchdog) run(ctx context.Context) {
	t := time.NewTicker(time.Duration(w.tick.Load()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.reset:
			t.Reset(time.Duration(w.tick.Load()))
		case now := <-t.C:
			w.scan(now.UnixNano())
		}
	}
}

// scan advances the coarse clock to now and expires every connection whose
// phase ended before it.
func (w *watchdog) scan(now int64) {
	w.now.Store(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.conns {
		e := c.expires.Load()
		// The CAS loses to a connection that moved on to its next phase
		// meanwhile; that phase keeps its own limit.
		if e != 0 && e&^limitBits <= now && c.expires.CompareAndSwap(e, 0) {
			c.expire(e & limitBits)
		}
	}
}

// expiry is when a phase of length d starting now ends. The coarse clock
// lags by up to a tick, so a tick is added: never early.
func (w *watchdog) expiry(d time.Duration, limits int64) int64 {
	return (w.now.Load()+int64(d)+w.tick.Load())&^limitBits | limits
}

// watch registers c; its Close forgets it.
func (w *watchdog) watch(c *watchedConn) *watchedConn {
	c.w = w
	w.mu.Lock()
	w.conns[c] = struct{}{}
	w.mu.Unlock()
	return c
}

func (w *watchdog) forget(c *watchedConn) {
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

// watchedConn is a connection whose timeouts the watchdog keeps. Client
// connections (srv set) move through phases themselves on Read and Write;
// connections to nodes are armed per exchange (armAt, disarm).
type watchedConn struct {
	net.Conn
	w       *watchdog
	expires atomic.Int64 // unix ns | limit bits; 0 = no limit
	rs      *rawSock     // raw system calls on plain TCP (rawio.go); nil: Conn's own

	// Client connections only.
	srv    *Server
	ln     *listenerInfo
	peer   netip.Addr // the client, read once (on proxy_protocol listeners, set by admitClient)
	phase  atomic.Int32
	closed atomic.Bool // the connection limit is released once
	// noPerIP: no place in max_conns_per_ip is held (yet), as on a
	// proxy_protocol listener before the header; guarded by the limiter.
	noPerIP bool
}

// Phases of a client connection.
const (
	phaseReading  = iota // a request, from its first byte: timeouts.client_read
	phaseHandling        // the handler runs; the upstream exchange has its own limit
	phaseIdle            // keep-alive, waiting for the next request: timeouts.idle
	phaseH2              // serving HTTP/2: x/net keeps the timeouts (http2.go)
)

func (c *watchedConn) arm(d time.Duration, limits int64) { c.expires.Store(c.w.expiry(d, limits)) }

// armAt limits the connection both ways until deadline (unix ns).
func (c *watchedConn) armAt(deadline int64) { c.expires.Store(deadline&^limitBits | limitBits) }

func (c *watchedConn) disarm() { c.expires.Store(0) }

func (c *watchedConn) expire(limits int64) {
	switch limits {
	case limitRead:
		_ = c.Conn.SetReadDeadline(pastDeadline)
	case limitWrite:
		_ = c.Conn.SetWriteDeadline(pastDeadline)
	default:
		_ = c.Conn.SetDeadline(pastDeadline)
	}
}

// Read starts timeouts.client_read when the first byte of a request arrives
// on an idle keep-alive connection.
func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.read(p)
	if n > 0 && c.srv != nil && c.phase.Load() == phaseIdle {
		c.phase.Store(phaseReading)
		c.arm(c.srv.rt.Load().clientRead, limitRead)
	}
	return n, err
}

// Write limits a response write to timeouts.request; once a response is out
// the connection is idle. Other writes (a TLS handshake, 100 Continue, an
// error answer to a bad request) leave the read limit as it was.
func (c *watchedConn) Write(p []byte) (int, error) {
	if c.srv == nil || c.phase.Load() == phaseH2 {
		return c.write(p)
	}
	rt := c.srv.rt.Load()
	before := c.expires.Load()
	armed := c.w.expiry(rt.timeout, limitWrite)
	c.expires.Store(armed)
	n, err := c.write(p)
	if c.phase.Load() == phaseReading {
		c.expires.CompareAndSwap(armed, before)
		return n, err
	}
	c.phase.Store(phaseIdle)
	c.arm(rt.idle, limitRead)
	return n, err
}

// handling is called as the handler starts: the request is read.
func (c *watchedConn) handling() {
	if c.phase.Load() == phaseH2 {
		return
	}
	c.phase.Store(phaseHandling)
	c.disarm()
}

// leaveWatchdog hands the connection's timeouts to x/net's HTTP/2 server.
func (c *watchedConn) leaveWatchdog() {
	c.phase.Store(phaseH2)
	c.disarm()
}

// isH2 reports whether the connection serves HTTP/2.
func (c *watchedConn) isH2() bool { return c.phase.Load() == phaseH2 }

func (c *watchedConn) Close() error {
	if c.srv != nil && c.closed.CompareAndSwap(false, true) {
		c.srv.conns.release(c)
	}
	c.w.forget(c)
	return c.Conn.Close()
}
