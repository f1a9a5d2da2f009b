package cron

import (
	"bytes"
	"fmt"
)

// Outcome is how one web-cron run ended, FACTS 6.1.
type Outcome uint8

// Outcomes. The zero Outcome means no run yet.
const (
	OutcomeNone Outcome = iota
	// Done: 200, the node ran cleanup, rule packages and GeoIP.
	Done
	// NotDue: 425, the node's own schedule is not due yet. Fine.
	NotDue
	// Busy: 429, a run started on that node less than 5 minutes ago. Fine.
	Busy
	// KeyMissing: 400, the node saw no key parameter.
	KeyMissing
	// BadKey: 401, the key differs from webCronJobSecretKey.
	BadKey
	// Inactive: 403 "403 Forbidden", webCronJobActive is off.
	Inactive
	// Denied: 403 with mosparo's access-denied page: the LB's address is
	// not on web_cron_job_access_ip_allow_list.
	Denied
	// ServerError: 5xx; the node may have run part of the jobs.
	ServerError
	// Timeout: no answer within cron.timeout; it may still be running.
	Timeout
	// Failed: the connection broke after the request was sent.
	Failed
	// Unreachable: no node accepted a connection.
	Unreachable
	// Unexpected: another status, such as the 302 to /setup/ of a node
	// that is not installed.
	Unexpected
	// NoNode: no node was up.
	NoNode
)

var outcomeNames = [...]string{
	OutcomeNone: "none",
	Done:        "done",
	NotDue:      "not_due",
	Busy:        "busy",
	KeyMissing:  "key_missing",
	BadKey:      "bad_key",
	Inactive:    "inactive",
	Denied:      "denied",
	ServerError: "server_error",
	Timeout:     "timeout",
	Failed:      "failed",
	Unreachable: "unreachable",
	Unexpected:  "unexpected",
	NoNode:      "no_node",
}

// String returns the snake_case name used in logs, /status and metrics.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// MarshalText writes the name, so an Outcome is a JSON string.
func (o Outcome) MarshalText() ([]byte, error) {
	if int(o) >= len(outcomeNames) {
		return nil, fmt.Errorf("cron: invalid outcome %d", uint8(o))
	}
	return []byte(outcomeNames[o]), nil
}

// OK reports whether the outcome needs nobody's attention: the jobs ran,
// or the node said they are not due or already running.
func (o Outcome) OK() bool { return o == Done || o == NotDue || o == Busy }

// ConfigError reports whether mosparo refused the call for a setting that
// an operator must fix; retrying cannot help.
func (o Outcome) ConfigError() bool {
	return o == KeyMissing || o == BadKey || o == Inactive || o == Denied
}

// Explain is the operator's text for an outcome: what it means and, for
// errors, the fix.
func (o Outcome) Explain() string {
	switch o {
	case OutcomeNone:
		return "no run yet"
	case Done:
		return "ran cleanup, rule-package refresh and GeoIP update"
	case NotDue:
		return "the node's own web-cron schedule is not due yet (425); it runs at the next interval. If this repeats, make cron.interval at least mosparo's web cron interval (Administration > Cron jobs)"
	case Busy:
		return "a run started on the node less than 5 minutes ago (429); tried again at the next interval"
	case KeyMissing:
		return "the node got no key (400): set cron.key or cron.key_file, and make sure nothing between the LB and the node drops the query string"
	case BadKey:
		return "the key was refused (401): set cron.key (or cron.key_file) to the secret key shown in mosparo under Administration > Cron jobs"
	case Inactive:
		return "the web cron is off in mosparo (403, webCronJobActive): enable it under Administration > Cron jobs"
	case Denied:
		return "the node refused this LB's address (403): add the LB's address to the web cron IP allow list (Administration > Cron jobs, web_cron_job_access_ip_allow_list), or remove the list"
	case ServerError:
		return "the node failed (5xx); not retried on another node because part of the jobs may have run; tried again at the next interval"
	case Timeout:
		return "no answer within cron.timeout; the run may still be going on the node, so it is not retried elsewhere; raise cron.timeout above PHP's max_execution_time if this repeats"
	case Failed:
		return "the connection broke after the call was sent; tried again at the next interval"
	case Unreachable:
		return "no up node accepted a connection; tried again in a few seconds"
	case Unexpected:
		return "unexpected answer; is the node installed (a 302 to /setup/) and is the address the node's own web server?"
	case NoNode:
		return "no node is up; tried again as soon as one is"
	}
	return o.String()
}

// forbiddenBody is the plain-text body of the 403 for webCronJobActive off;
// an allow-list refusal is mosparo's access-denied page instead (FACTS 6.1).
var forbiddenBody = []byte("403 Forbidden")

// classify maps a node's answer to an outcome (FACTS 6.1 checks in order).
func classify(status int, body []byte) Outcome {
	switch {
	case status == 200:
		return Done
	case status == 425:
		return NotDue
	case status == 429:
		return Busy
	case status == 400:
		return KeyMissing
	case status == 401:
		return BadKey
	case status == 403 && bytes.Equal(bytes.TrimSpace(body), forbiddenBody):
		return Inactive
	case status == 403:
		return Denied
	case status >= 500 && status <= 599:
		return ServerError
	}
	return Unexpected
}
