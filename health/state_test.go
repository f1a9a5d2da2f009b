package health

import (
	"encoding/json"
	"testing"
)

func TestStateText(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{Up, "up"}, {Down, "down"}, {Draining, "draining"}, {Setup, "setup"}, {Maintenance, "maintenance"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			b, err := json.Marshal(tt.s)
			if err != nil || string(b) != `"`+tt.want+`"` {
				t.Errorf("json.Marshal = %s, %v; want %q", b, err, tt.want)
			}
			var back State
			if err := json.Unmarshal(b, &back); err != nil || back != tt.s {
				t.Errorf("round trip = %v, %v; want %v", back, err, tt.s)
			}
		})
	}
	if got := State(0).String(); got != "State(0)" {
		t.Errorf("State(0).String() = %q", got)
	}
	if _, err := State(0).MarshalText(); err == nil {
		t.Error("State(0).MarshalText succeeded, want an error")
	}
	var s State
	if err := s.UnmarshalText([]byte("sideways")); err == nil {
		t.Error("UnmarshalText(sideways) succeeded")
	}
	if got := Timeout.String(); got != "timeout" {
		t.Errorf("Timeout.String() = %q", got)
	}
	if got := BadAnswer.String(); got != "bad_answer" {
		t.Errorf("BadAnswer.String() = %q", got)
	}
	if got := Outcome(9).String(); got != "Outcome(9)" {
		t.Errorf("Outcome(9).String() = %q", got)
	}
}
