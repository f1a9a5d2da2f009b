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

// ConnStats are the client-connection counters of a Server.
type ConnStats struct {
	Open            int    // client connections open now
	RefusedTotal    uint64 // closed at accept: limits.max_conns reached
	RefusedPerIP    uint64 // closed at accept: limits.max_conns_per_ip reached
	LargestPerIPNow int    // most connections one client address holds now
}

// Reasons a connection is refused.
type refusal uint8

const (
	admitted refusal = iota
	refusedTotal
	refusedPerIP
)

func (r refusal) String() string {
	switch r {
	case refusedTotal:
		return "max_conns"
	case refusedPerIP:
		return "max_conns_per_ip"
	}
	return "admitted"
}

// connLimiter counts open client connections, in all and per client.
type connLimiter struct {
	mu    sync.Mutex
	open  int
	perIP map[netip.Addr]int

	refused [3]atomic.Uint64 // by refusal
	logged  [3]atomic.Uint64 // refusals already reported in a log line
	lastLog atomic.Int64     // unix ns of the last refusal log line
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

// release forgets a connection admit counted.
func (l *connLimiter) release(peer netip.Addr) {
	key := limitKey(peer)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.perIP[key] - 1; n > 0 {
		l.perIP[key] = n
	} else {
		delete(l.perIP, key)
	}
}

func (l *connLimiter) stats() ConnStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ConnStats{Open: l.open, RefusedTotal: l.refused[refusedTotal].Load(), RefusedPerIP: l.refused[refusedPerIP].Load()}
	for _, n := range l.perIP {
		s.LargestPerIPNow = max(s.LargestPerIPNow, n)
	}
	return s
}

// logRefusal writes at most one line a second, with how many connections
// were refused since the last one, so a flood cannot flood the log too.
func (l *connLimiter) logRefusal(log *zap.Logger, r refusal, peer netip.Addr, now time.Time) {
	last := l.lastLog.Load()
	if now.UnixNano()-last < int64(time.Second) || !l.lastLog.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	total := l.refused[r].Load()
	since := total - l.logged[r].Swap(total)
	log.Warn("client connection refused", zap.Stringer("limit", r), zap.Stringer("from", peer), zap.Uint64("refused_since_last_line", since))
}
