package balancer

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Client connections are capped at accept (issue 11, item 11): each open
// connection costs a goroutine and buffers (about 11 KiB while a request is
// half sent), and the unit allows a million descriptors, so without a cap
// slow clients grow the process until the kernel kills it. Over a cap the
// connection is closed before a byte is read; it never reaches fasthttp.
// On a proxy_protocol listener the client is known only from the PROXY
// header: max_conns is checked at accept, max_conns_per_ip once the header
// is read (admitConn, admitClient), and over it the connection reads as
// closed.

// ConnStats are the client-connection counters of a Server.
type ConnStats struct {
	Open            int    // client connections open now
	RefusedTotal    uint64 // closed at accept: limits.max_conns reached
	RefusedPerIP    uint64 // closed at accept: limits.max_conns_per_ip reached
	LargestPerIPNow int    // most connections one client address holds now
	// On proxy_protocol listeners (proxyproto.go):
	RefusedProxyPeer   uint64 // closed at accept: the peer is not in proxy_protocol.from
	RefusedProxyHeader uint64 // closed: no valid PROXY header within its timeout
}

// Reasons a connection is refused.
type refusal uint8

const (
	admitted refusal = iota
	refusedTotal
	refusedPerIP
	refusedProxyPeer
	refusedProxyHeader
	numRefusals
)

func (r refusal) String() string {
	switch r {
	case refusedTotal:
		return "max_conns"
	case refusedPerIP:
		return "max_conns_per_ip"
	case refusedProxyPeer:
		return "proxy_protocol_from"
	case refusedProxyHeader:
		return "proxy_protocol_header"
	}
	return "admitted"
}

// connLimiter counts open client connections, in all and per client.
type connLimiter struct {
	mu    sync.Mutex
	open  int
	perIP map[netip.Addr]int

	refused [numRefusals]atomic.Uint64 // by refusal
	logged  [numRefusals]atomic.Uint64 // refusals already reported in a log line
	lastLog atomic.Int64               // unix ns of the last refusal log line
}

func newConnLimiter() *connLimiter {
	return &connLimiter{perIP: map[netip.Addr]int{}}
}

// limitKey groups the addresses of one client: an IPv6 host holds a whole
// /64 and could otherwise open the per-IP cap on each address of it.
func limitKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// admit counts a new connection from peer, or refuses it. perIP <= 0 (or
// exempt, for trusted proxies that carry many clients) skips the per-client
// cap.
func (l *connLimiter) admit(peer netip.Addr, maxConns, perIP int, exempt bool) refusal {
	key := limitKey(peer)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= maxConns {
		l.refused[refusedTotal].Add(1)
		return refusedTotal
	}
	if !exempt && perIP > 0 && l.perIP[key] >= perIP {
		l.refused[refusedPerIP].Add(1)
		return refusedPerIP
	}
	l.open++
	l.perIP[key]++
	return admitted
}

// admitConn counts a connection in maxConns only: its client is known
// once its PROXY header is read, and admitClient counts it then.
func (l *connLimiter) admitConn(maxConns int) refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= maxConns {
		l.refused[refusedTotal].Add(1)
		return refusedTotal
	}
	l.open++
	return admitted
}

// admitClient counts c, admitted by admitConn, under client, which
// becomes c's peer, or refuses it as admit does. The peer is set under
// the lock release takes, so a Close racing with it releases the place
// taken or none; a connection already closed takes none.
func (l *connLimiter) admitClient(c *watchedConn, client netip.Addr, perIP int, exempt bool) refusal {
	key := limitKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed.Load() {
		return admitted // it reads nothing more
	}
	if !exempt && perIP > 0 && l.perIP[key] >= perIP {
		l.refused[refusedPerIP].Add(1)
		return refusedPerIP
	}
	l.perIP[key]++
	c.peer, c.noPerIP = client, false
	return admitted
}

// count records a refusal made without the limiter.
func (l *connLimiter) count(r refusal) { l.refused[r].Add(1) }

// release forgets a connection admit (or admitConn and admitClient) counted.
func (l *connLimiter) release(c *watchedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if c.noPerIP {
		return
	}
	key := limitKey(c.peer)
	if n := l.perIP[key] - 1; n > 0 {
		l.perIP[key] = n
	} else {
		delete(l.perIP, key)
	}
}

func (l *connLimiter) stats() ConnStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ConnStats{
		Open: l.open, RefusedTotal: l.refused[refusedTotal].Load(), RefusedPerIP: l.refused[refusedPerIP].Load(),
		RefusedProxyPeer: l.refused[refusedProxyPeer].Load(), RefusedProxyHeader: l.refused[refusedProxyHeader].Load(),
	}
	for _, n := range l.perIP {
		s.LargestPerIPNow = max(s.LargestPerIPNow, n)
	}
	return s
}

// logRefusal writes at most one line a second, with how many connections
// were refused since the last one, so a flood cannot flood the log too.
// extra fields say more (what was wrong with a PROXY header).
func (l *connLimiter) logRefusal(log *zap.Logger, r refusal, peer netip.Addr, now time.Time, extra ...zap.Field) {
	last := l.lastLog.Load()
	if now.UnixNano()-last < int64(time.Second) || !l.lastLog.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	total := l.refused[r].Load()
	since := total - l.logged[r].Swap(total)
	fields := append([]zap.Field{zap.Stringer("limit", r), zap.Stringer("from", peer), zap.Uint64("refused_since_last_line", since)}, extra...)
	log.Warn("client connection refused", fields...)
}
