package health

import "fmt"

// State is what a node may be used for. The balancer maps states to route
// classes; this package only decides which state a node is in.
type State uint8

// States of a node. The zero State is invalid and never reported.
const (
	// Up: the node answered 200 "connected" (FACTS 1.1): serve everything.
	Up State = iota + 1
	// Down: failed checks, an untrusted answer, or a passive ejection.
	Down
	// Draining: mosparo reports test-skipped__update-not-finished (code and
	// database versions differ, FACTS 1.4), or an operator drained the node.
	Draining
	// Setup: mosparo reports test-skipped__not-configured (not installed;
	// every non-setup route redirects to /setup/, FACTS 1.4).
	Setup
	// Maintenance: set by an operator; the node gets no traffic at all.
	Maintenance
)

var stateNames = [...]string{Up: "up", Down: "down", Draining: "draining", Setup: "setup", Maintenance: "maintenance"}

// String returns the lower-case name used in logs, /status and the CLI.
func (s State) String() string {
	if s >= Up && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText writes the name, so State is a JSON string in /status.
func (s State) MarshalText() ([]byte, error) {
	if s < Up || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("health: invalid state %d", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText reads a name written by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	for i := Up; int(i) < len(stateNames); i++ {
		if string(b) == stateNames[i] {
			*s = i
			return nil
		}
	}
	return fmt.Errorf("health: unknown state %q", b)
}

// Outcome is what happened to one proxied request, fed to Node.Observe.
type Outcome uint8

// Outcomes of a proxied request. The zero Outcome is ignored.
const (
	// Success: the node answered (with a status below 500, or any status
	// when the balancer does not count 5xx).
	Success Outcome = iota + 1
	// ConnectFailure: the request never reached the node (refused, reset
	// before the write, dial timeout).
	ConnectFailure
	// ServerError: the node answered 5xx.
	ServerError
	// Timeout: the node accepted the request but did not answer in time.
	Timeout
	// BadAnswer: the node took the request but its answer was not a
	// usable HTTP answer (connection reset or closed early, unparsable,
	// an unrequested 101, too large).
	BadAnswer
)

var outcomeNames = [...]string{Success: "success", ConnectFailure: "connect_failure", ServerError: "server_error", Timeout: "timeout", BadAnswer: "bad_answer"}

// String returns the lower-case name used in logs and metrics.
func (o Outcome) String() string {
	if o >= Success && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}
