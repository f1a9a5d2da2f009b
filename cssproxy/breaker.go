package cssproxy

import (
	"sync/atomic"
	"time"
)

// BreakerState is the state of the shared-cache circuit breaker.
type BreakerState int32

// Breaker states. Closed lets every lookup through; Open refuses them until
// the cooldown ends; HalfOpen lets exactly one probe lookup decide.
const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

// String returns the name used in Stats and logs.
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

// breaker counts consecutive failed lookups. It is lock-free because
// allow() runs on every miss; transitions are CAS so that exactly one
// caller observes (and logs) each change. Time is passed in.
type breaker struct {
	threshold int32
	cooldown  time.Duration

	state       atomic.Int32
	consecutive atomic.Int32
	openUntil   atomic.Int64 // unix nanoseconds
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	return &breaker{threshold: int32(threshold), cooldown: cooldown}
}

// allow reports whether a lookup may go to the cache now. When the
// cooldown has passed, the first caller becomes the half-open probe.
func (b *breaker) allow(now time.Time) bool {
	switch BreakerState(b.state.Load()) {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if now.UnixNano() < b.openUntil.Load() {
			return false
		}
		return b.state.CompareAndSwap(int32(BreakerOpen), int32(BreakerHalfOpen))
	default:
		return false
	}
}

// success records a good lookup; it reports whether the breaker closed.
func (b *breaker) success() (closed bool) {
	b.consecutive.Store(0)
	for {
		s := b.state.Load()
		if BreakerState(s) == BreakerClosed {
			return false
		}
		if b.state.CompareAndSwap(s, int32(BreakerClosed)) {
			return true
		}
	}
}

// failure records a failed lookup; it reports whether the breaker opened.
func (b *breaker) failure(now time.Time) (opened bool) {
	n := b.consecutive.Add(1)
	s := BreakerState(b.state.Load())
	if s == BreakerOpen || (s == BreakerClosed && n < b.threshold) {
		return false
	}
	b.openUntil.Store(now.Add(b.cooldown).UnixNano())
	return b.state.CompareAndSwap(int32(s), int32(BreakerOpen))
}

// current returns the state for Stats.
func (b *breaker) current() BreakerState { return BreakerState(b.state.Load()) }
