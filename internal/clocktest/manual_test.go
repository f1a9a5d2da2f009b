package clocktest

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// TestManualAdvance: scheduled functions run inside the Advance that
// reaches them, in due order (ties in scheduling order), and not before.
func TestManualAdvance(t *testing.T) {
	c := NewManual(t0)
	var got []string
	c.AfterFunc(2*time.Second, func() { got = append(got, "b") })
	c.AfterFunc(time.Second, func() { got = append(got, "a1") })
	c.AfterFunc(time.Second, func() { got = append(got, "a2") })
	stop := c.AfterFunc(1500*time.Millisecond, func() { got = append(got, "stopped") })
	if !stop() {
		t.Error("stop() of a pending call = false, want true")
	}
	if stop() {
		t.Error("second stop() = true, want false")
	}
	if now := c.Advance(999 * time.Millisecond); !now.Equal(t0.Add(999*time.Millisecond)) || len(got) != 0 {
		t.Fatalf("Advance(999ms) = %v with %q run, want %v and none", now, got, t0.Add(999*time.Millisecond))
	}
	c.Advance(5 * time.Second)
	if want := []string{"a1", "a2", "b"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("Pending() = %d, want 0", n)
	}
}

// TestManualAfter: the channel fires once Advance reaches the deadline, with
// the clock's time, and never blocks Advance.
func TestManualAfter(t *testing.T) {
	c := NewManual(t0)
	ch := c.After(time.Minute)
	c.Advance(59 * time.Second)
	select {
	case v := <-ch:
		t.Fatalf("After(1m) fired at %v, 59s in", v)
	default:
	}
	c.Advance(time.Second)
	select {
	case v := <-ch:
		if !v.Equal(t0.Add(time.Minute)) {
			t.Errorf("After(1m) sent %v, want %v", v, t0.Add(time.Minute))
		}
	default:
		t.Fatal("After(1m) did not fire at 1m")
	}
}

// TestObserved: each wait is reported before it starts; time is the
// wrapped clock's.
func TestObserved(t *testing.T) {
	m := NewManual(t0)
	c := Observe(m)
	ch := c.After(3 * time.Second)
	c.AfterFunc(time.Second, func() {})
	for _, want := range []time.Duration{3 * time.Second, time.Second} {
		if d := <-c.Waits; d != want {
			t.Errorf("wait reported %v, want %v", d, want)
		}
	}
	m.Advance(3 * time.Second)
	if v := <-ch; !v.Equal(c.Now()) {
		t.Errorf("After sent %v, want %v", v, c.Now())
	}
}
