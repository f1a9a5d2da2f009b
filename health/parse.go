package health

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxReason bounds the node-supplied text kept in a reason (an exception
// message can be long; /status and logs must stay small).
const maxReason = 160

// answer is the part of mosparo's health body the verdict depends on
// (FACTS 1.1). Fields absent from the body stay at their zero values.
type answer struct {
	service        string
	healthy        string // "true", "false", "null" or "" when absent
	databaseStatus string
	errorText      string
}

var errNotObject = errors.New("not a JSON object")

// judge turns one health answer into a verdict (Up, Down, Draining or
// Setup) and a reason for /status, following FACTS 1.4. The body comes from
// the network and is untrusted: judge never panics and its reason is short,
// printable UTF-8.
func judge(status int, body []byte, trustBypassed bool) (State, string) {
	v, reason := judgeRaw(status, body, trustBypassed)
	return v, clean(reason)
}

func judgeRaw(status int, body []byte, trustBypassed bool) (State, string) {
	switch {
	case status == 404:
		// The route's allow-list condition runs before anything else, so a
		// 404 means the node refused the LB's address (FACTS 1.1, 1.2); our
		// probe sends no X-Forwarded-For, so the LB's own address is what
		// mosparo checks unless another proxy sits in between.
		return Down, "HTTP 404 from the health API: add this LB's address to MOSPARO_HEALTH_ALLOW_LIST " +
			"on the node (exact addresses or CIDRs, comma-separated, no spaces), list any proxy between " +
			"LB and node in TRUSTED_PROXIES, and check health.path"
	case status == 405:
		return Down, "HTTP 405 from the health API: health.path does not point at a GET route"
	case status != 200 && status != 500:
		return Down, fmt.Sprintf("HTTP %d from the health API, want 200", status)
	}
	a, err := parseAnswer(body)
	if err != nil {
		return Down, fmt.Sprintf("HTTP %d with a body that is not mosparo's health answer: %v", status, err)
	}
	if a.service != "mosparo" {
		return Down, fmt.Sprintf("HTTP %d from something that is not mosparo (service %s)", status, quote(a.service))
	}
	if status == 500 {
		if a.databaseStatus == "connection-failed" {
			return Down, "database connection failed: " + quote(a.errorText)
		}
		return Down, fmt.Sprintf("HTTP 500, databaseStatus %s", quote(a.databaseStatus))
	}
	switch a.databaseStatus {
	case "connected":
		if a.healthy != "true" {
			return Down, fmt.Sprintf("databaseStatus connected but healthy is %s", orAbsent(a.healthy))
		}
		return Up, "connected"
	case "test-skipped__update-not-finished":
		return Draining, "mosparo update not finished: code and database versions differ; run the update finalize step"
	case "test-skipped__not-configured", "not-configured":
		// The documentation spells it "not-configured"; the code sends the
		// prefixed value (FACTS 1.1). Accept both.
		return Setup, "mosparo is not installed: finish the setup at /setup/"
	case "bypassed":
		if trustBypassed {
			return Up, "bypassed (MOSPARO_BYPASS_HEALTH_CHECK=1), trusted by health.trust_bypassed"
		}
		return Down, "MOSPARO_BYPASS_HEALTH_CHECK=1 on the node: its answer tests nothing; unset it or set health.trust_bypassed"
	}
	return Down, "unknown databaseStatus " + quote(a.databaseStatus)
}

// parseAnswer reads the top-level object with a token decoder so that keys
// match exactly (encoding/json's struct decoding folds case) and a repeated
// key is an error rather than a silent "last one wins".
func parseAnswer(body []byte) (answer, error) {
	var a answer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return a, errNotObject
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return a, fmt.Errorf("bad JSON: %w", errShort(err))
		}
		key, _ := tok.(string)
		if seen[key] {
			return a, fmt.Errorf("key %s given twice", quote(key))
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return a, fmt.Errorf("bad JSON: %w", errShort(err))
		}
		var dst *string
		switch key {
		case "service":
			dst = &a.service
		case "databaseStatus":
			dst = &a.databaseStatus
		case "error":
			dst = &a.errorText
		case "healthy":
			switch s := string(raw); s {
			case "true", "false", "null":
				a.healthy = s
			default:
				return a, errors.New("healthy is not true, false or null")
			}
			continue
		default:
			continue
		}
		if string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return a, fmt.Errorf("%s is not a string", quote(key))
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return a, errors.New("bad JSON: unterminated object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return a, errors.New("bad JSON: data after the object")
	}
	return a, nil
}

// errShort keeps decoder errors from echoing long runs of input.
func errShort(err error) error {
	if s := err.Error(); len(s) > 80 {
		return errors.New(s[:80])
	}
	return err
}

// quote renders node-supplied text for a reason: cut to maxReason bytes,
// then Go-quoted, which escapes control characters and invalid UTF-8.
func quote(s string) string {
	if len(s) > maxReason {
		return strconv.Quote(s[:maxReason]) + "…"
	}
	return strconv.Quote(s)
}

// maxReasonTotal bounds a whole reason, whatever went into it.
const maxReasonTotal = 1024

// clean makes any reason safe for logs and /status: valid UTF-8, no control
// characters, bounded length.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > maxReasonTotal {
		cut := maxReasonTotal
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func orAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}
