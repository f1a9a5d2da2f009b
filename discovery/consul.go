package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAnswerBytes bounds one Consul answer: a thousand instances with their
// checks are about 2 MiB; more is not an answer we want to hold.
const maxAnswerBytes = 16 << 20

// ErrNoIndex is returned for a 200 answer without a usable X-Consul-Index:
// without it the next query cannot block, and looping would hammer the agent.
var ErrNoIndex = errors.New("answer has no X-Consul-Index")

// instance is one passing service instance from /v1/health/service.
type instance struct {
	ID, Node, Address string
	Port              int
	Tags              []string
	// WeightPassing and WeightWarning are Service.Weights, 0 when absent.
	WeightPassing, WeightWarning int
}

// weight maps Service.Weights.Passing to a node weight. Consul fills
// {Passing: 1, Warning: 1} into every registration without Weights, so that
// pair reads as "not set" (default 100); anything else is clamped to 1..1000.
func (in instance) weight() int {
	p := in.WeightPassing
	if p <= 0 || p == 1 && in.WeightWarning == 1 {
		return defaultWeight
	}
	return min(p, maxWeight)
}

// wireEntry is the part of a /v1/health/service entry discovery reads.
// Pointers tell an absent object from an empty one.
type wireEntry struct {
	Node *struct {
		Node    string
		Address string
	}
	Service *struct {
		ID      string
		Service string
		Address string
		Port    int
		Tags    []string
		Weights *struct{ Passing, Warning int }
	}
	Checks []struct {
		CheckID string
		Status  string
	}
}

// parseHealth decodes a /v1/health/service answer. The bytes come from the
// network, so nothing in them may panic or mislead: a top level that is not
// a JSON array is an error; an entry that cannot be a node (no Service, no
// ID, no address, a port outside 1..65535, an address that is not an IP or
// host name, a check not passing despite ?passing) is skipped with a reason.
func parseHealth(b []byte) (insts []instance, skipped []string, err error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, nil, fmt.Errorf("decode health answer: %w", err)
	}
	for i, r := range raw {
		in, why := parseEntry(r)
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("entry %d (%s): %s", i, printable(in.ID), why))
			continue
		}
		insts = append(insts, in)
	}
	return insts, skipped, nil
}

// parseEntry returns the instance or why it is unusable.
func parseEntry(r json.RawMessage) (instance, string) {
	var e wireEntry
	if err := json.Unmarshal(r, &e); err != nil {
		return instance{}, "malformed: " + err.Error()
	}
	if e.Service == nil {
		return instance{}, "no Service"
	}
	s := e.Service
	in := instance{ID: s.ID, Address: s.Address, Port: s.Port, Tags: s.Tags}
	if e.Node != nil {
		in.Node = e.Node.Node
		if in.Address == "" {
			in.Address = e.Node.Address
		}
	}
	if s.Weights != nil {
		in.WeightPassing, in.WeightWarning = s.Weights.Passing, s.Weights.Warning
	}
	switch {
	case in.ID == "":
		return in, "no Service.ID"
	case len(in.ID) > 256:
		return in, "Service.ID longer than 256 bytes"
	case in.Port < 1 || in.Port > 65535:
		return in, fmt.Sprintf("port %d is not 1..65535", in.Port)
	case in.Address == "":
		return in, "neither Service.Address nor Node.Address is set"
	case !validHost(in.Address):
		return in, fmt.Sprintf("address %q is not an IP address or host name", printable(in.Address))
	}
	for _, c := range e.Checks {
		// FACTS.md: ?passing keeps only all-passing entries; an agent (or a
		// proxy in between) that ignored it must not smuggle one in.
		if c.Status != "passing" {
			return in, fmt.Sprintf("check %q is %q", printable(c.CheckID), printable(c.Status))
		}
	}
	return in, ""
}

// validHost accepts an IP address (IPv6 without brackets, as Consul stores
// it) or a DNS name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// printable shortens and defuses a value from the network for logs and status.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// client speaks the few Consul HTTP API calls discovery needs. Its token
// travels only in the X-Consul-Token header, never in a URL that could end
// up in an error message or log.
type client struct {
	http    *http.Client
	base    string // scheme://host:port
	token   string
	dc      string
	service string
	tags    []string
}

// answer is one health query's result.
type answer struct {
	insts   []instance
	skipped []string
	index   uint64
}

// health runs one /v1/health/service/<name>?passing query; index 0 asks
// without blocking.
func (c *client) health(ctx context.Context, index uint64, wait time.Duration) (answer, error) {
	q := url.Values{}
	q.Set("passing", "1")
	for _, t := range c.tags {
		q.Add("tag", t)
	}
	if c.dc != "" {
		q.Set("dc", c.dc)
	}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
		q.Set("wait", strconv.FormatInt(wait.Milliseconds(), 10)+"ms")
	}
	path := "/v1/health/service/" + url.PathEscape(c.service)
	resp, body, err := c.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil)
	if err != nil {
		return answer{}, err
	}
	idx, err := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	if err != nil {
		return answer{}, fmt.Errorf("consul GET %s: %w", path, ErrNoIndex)
	}
	insts, skipped, err := parseHealth(body)
	if err != nil {
		return answer{}, fmt.Errorf("consul GET %s: %w", path, err)
	}
	return answer{insts: insts, skipped: skipped, index: idx}, nil
}

// StatusError is a non-200 answer from the agent.
type StatusError struct {
	Method, Path string // Path without the query
	Code         int
	Body         string // the start of the body, made printable
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("consul %s %s: %d %s", e.Method, e.Path, e.Code, e.Body)
}

// do sends one request and reads the whole (bounded) body of a 200.
func (c *client) do(ctx context.Context, method, pathQuery string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("consul request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("X-Consul-Token", c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	path, _, _ := strings.Cut(pathQuery, "?")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in our message already, without the query
		}
		return nil, nil, fmt.Errorf("consul %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("consul %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: printable(strings.TrimSpace(string(b)))}
	}
	if len(b) > maxAnswerBytes {
		return nil, nil, fmt.Errorf("consul %s %s: answer larger than %d bytes", method, path, maxAnswerBytes)
	}
	return resp, b, nil
}
