package vip

import (
	"testing"
	"time"
)

// TestTimersRFC checks Skew_Time and Master_Down_Interval against the table
// of FACTS 1.3 (RFC 5798 6.1) to the nanosecond.
func TestTimersRFC(t *testing.T) {
	tests := []struct {
		prio     uint8
		interval time.Duration
		skew     time.Duration
		mdi      time.Duration
	}{
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{150, time.Second, 414062500, 3414062500},
		{100, 100 * time.Millisecond, 60937500, 360937500},
		{150, 100 * time.Millisecond, 41406250, 341406250},
		{254, time.Second, 7812500, 3007812500},
		{1, time.Second, 996093750, 3996093750},
		{255, time.Second, 3906250, 3003906250},
		// 10 ms, priority 1: 255*10ms/256 = 9.9609375 ms, not 0 as in integer centiseconds.
		{1, 10 * time.Millisecond, 9960938, 39960938},
		{100, 40950 * time.Millisecond, 24953906250, 147803906250},
	}
	for _, tt := range tests {
		if got := SkewTime(tt.prio, tt.interval); got != tt.skew {
			t.Errorf("SkewTime(%d, %s) = %d, want %d", tt.prio, tt.interval, got, tt.skew)
		}
		if got := MasterDownInterval(tt.prio, tt.interval, 3); got != tt.mdi {
			t.Errorf("MasterDownInterval(%d, %s, 3) = %d, want %d", tt.prio, tt.interval, got, tt.mdi)
		}
	}
	if got, want := MasterDownInterval(100, time.Second, 5), 5609375*time.Microsecond; got != want {
		t.Errorf("MasterDownInterval(100, 1s, 5) = %s, want %s", got, want)
	}
	if got, want := MasterDownInterval(100, time.Second, 0), 3609375*time.Microsecond; got != want {
		t.Errorf("MasterDownInterval(100, 1s, 0) = %s, want the RFC default %s", got, want)
	}
}

// TestTimersRFC3768 checks VRRPv2's Skew_Time, in seconds whatever the
// interval, and the machine's Master_Down_Interval built from it.
func TestTimersRFC3768(t *testing.T) {
	tests := []struct {
		prio     uint8
		interval time.Duration
		skew     time.Duration
		mdi      time.Duration
	}{
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{150, 3 * time.Second, 414062500, 9414062500},
		{254, 255 * time.Second, 7812500, 765007812500},
		{1, 2 * time.Second, 996093750, 6996093750},
	}
	for _, tt := range tests {
		if got := SkewTimeV2(tt.prio); got != tt.skew {
			t.Errorf("SkewTimeV2(%d) = %d, want %d", tt.prio, got, tt.skew)
		}
		m := NewMachine(MachineConfig{Version: Version2, Priority: tt.prio, AdvertInterval: tt.interval})
		t0 := time.Unix(1000, 0)
		m.Step(Event{Kind: EventStartup}, t0)
		if got := m.Deadline().Sub(t0); got != tt.mdi {
			t.Errorf("v2 priority %d, %s: Master_Down_Interval = %d, want %d", tt.prio, tt.interval, got, tt.mdi)
		}
		m.Step(Event{Kind: EventAdvert, From: peerB, Priority: 0, Interval: tt.interval}, t0)
		if got := m.Deadline().Sub(t0); got != tt.skew {
			t.Errorf("v2 priority %d, %s: after priority 0 the down timer is %d, want Skew_Time %d", tt.prio, tt.interval, got, tt.skew)
		}
	}
}
