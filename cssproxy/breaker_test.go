package cssproxy

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBreaker(3, 5*time.Second)
	for i := range 2 {
		if b.failure(now) {
			t.Fatalf("opened after %d failures, threshold 3", i+1)
		}
	}
	if !b.allow(now) {
		t.Fatal("closed breaker refused")
	}
	if !b.failure(now) || b.current() != BreakerOpen {
		t.Fatal("third failure did not open it")
	}
	if b.allow(now.Add(4 * time.Second)) {
		t.Error("open breaker allowed a lookup within the cooldown")
	}
	later := now.Add(5 * time.Second)
	if !b.allow(later) || b.current() != BreakerHalfOpen {
		t.Fatal("no probe after the cooldown")
	}
	if b.allow(later) {
		t.Error("a second probe was allowed while half-open")
	}
	if !b.failure(later) || b.current() != BreakerOpen {
		t.Fatal("failed probe did not reopen it")
	}
	if b.allow(later.Add(time.Second)) {
		t.Error("reopened breaker allowed a lookup")
	}
	probe := later.Add(5 * time.Second)
	if !b.allow(probe) {
		t.Fatal("no second probe")
	}
	if !b.success() || b.current() != BreakerClosed {
		t.Error("successful probe did not close it")
	}
	if b.success() {
		t.Error("success on a closed breaker reported a change")
	}
}

func TestBreakerStateNames(t *testing.T) {
	for s, want := range map[BreakerState]string{BreakerClosed: "closed", BreakerOpen: "open", BreakerHalfOpen: "half_open", 9: "unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}
