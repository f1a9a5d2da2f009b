package consulclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"
)

// ErrAnswerTooLarge is the read error of an answer body over Config.MaxAnswer.
var ErrAnswerTooLarge = errors.New("consul answer too large")

// Config says which agent to talk to and how.
type Config struct {
	// Address is host:port; Scheme http (default) or https.
	Address, Scheme string
	// Datacenter; "" is the agent's.
	Datacenter string
	// Token travels in the X-Consul-Token header only, never in a URL that
	// could end up in an error or log. As with every Consul client, ""
	// falls back to $CONSUL_HTTP_TOKEN.
	Token string
	// HTTPClient sends the requests; nil uses http.DefaultTransport. It is
	// copied, not changed.
	HTTPClient *http.Client
	// MaxAnswer bounds every answer body; required (> 0).
	MaxAnswer int64
	// Requests, when set, ends every request once it is done, for callers
	// of client methods that take no context (api.Lock).
	Requests context.Context
}

// New returns the official client on a copy of c.HTTPClient whose
// transport enforces MaxAnswer (and Requests).
func New(c Config) (*api.Client, error) {
	if c.MaxAnswer <= 0 {
		return nil, errors.New("consulclient: MaxAnswer must be positive")
	}
	if c.Scheme == "" {
		c.Scheme = "http"
	}
	var hc http.Client
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	hc.Transport = Transport(hc.Transport, c.MaxAnswer, c.Requests)
	cl, err := api.NewClient(&api.Config{Address: c.Address, Scheme: c.Scheme, Datacenter: c.Datacenter, Token: c.Token, HttpClient: &hc})
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	return cl, nil
}

// Error wraps an error of the client for logs and status: a non-200
// answer's body is shortened and its control characters replaced.
func Error(what string, err error) error {
	var se api.StatusError
	if errors.As(err, &se) {
		return fmt.Errorf("consul %s: %d %s", what, se.Code, Printable(strings.TrimSpace(se.Body)))
	}
	return fmt.Errorf("consul %s: %w", what, err)
}

// Printable shortens and defuses a value from the network for logs and status.
func Printable(s string) string {
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

// Transport bounds every answer body read through next (nil: the default
// transport) to max bytes: reading past it fails with ErrAnswerTooLarge
// instead of holding whatever a hostile or broken agent sends. A non-nil
// requests context ends every request when it is done.
func Transport(next http.RoundTripper, max int64, requests context.Context) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return transport{next: next, max: max, requests: requests}
}

type transport struct {
	next     http.RoundTripper
	max      int64
	requests context.Context
}

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	done := func() {}
	if t.requests != nil {
		ctx, cancel := context.WithCancel(req.Context())
		unhook := context.AfterFunc(t.requests, cancel)
		done = func() { unhook(); cancel() }
		req = req.WithContext(ctx)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		done()
		return nil, err
	}
	resp.Body = &body{rc: resp.Body, left: t.max, done: done}
	return resp, nil
}

// body reads at most left bytes and fails on the next one.
type body struct {
	rc   io.ReadCloser
	left int64
	done func()
}

func (b *body) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, ErrAnswerTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *body) Close() error {
	err := b.rc.Close()
	b.done()
	return err
}
