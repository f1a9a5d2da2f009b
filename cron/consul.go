package cron

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ConsulLockOptions configure a ConsulLock. Zero fields take the defaults.
type ConsulLockOptions struct {
	// Address is the Consul agent's host:port. Default 127.0.0.1:8500.
	Address string
	// Scheme is http or https. Default http.
	Scheme string
	// Token is the ACL token (X-Consul-Token); needs session:write and
	// key:write on Key. Never logged.
	Token string
	// Datacenter to use; default the agent's.
	Datacenter string
	// Key is the KV key of the lock (cron.consul_lock). Required.
	Key string
	// Holder is stored as the key's value and the session name, so an
	// operator can see which LB holds the lock (e.g. the host name).
	Holder string
	// TTL of the session; it is renewed every TTL/3, and a holder that
	// cannot renew stops being the leader at once. Default 15s; Consul
	// accepts 10s..24h.
	TTL time.Duration
	// LockDelay is how long Consul keeps the key from being acquired after
	// the holder's session ends, so that a holder which has not renewed yet
	// (up to TTL/3) has stopped calling before a peer takes over. 0 keeps
	// Consul's default of 15s; keep it above TTL/3.
	LockDelay time.Duration
	// Client sends the requests; nil is an http.Client with a 10s timeout
	// and its own transport. Run closes its idle connections when it ends.
	Client *http.Client
	// Logger receives acquisitions, losses and errors; nil logs nothing.
	Logger *zap.Logger
}

// ConsulLock is a Leader held through a Consul session lock
// (PUT /v1/kv/<key>?acquire=<session>): among the LBs that use the same
// key, at most one holds it. Run keeps trying to acquire it and renews the
// session; IsLeader is true only while the last renew and acquire both
// succeeded. On a clean stop the lock is released and the session
// destroyed, so a peer takes over after Consul's lock delay (15s by
// default) instead of after the TTL.
type ConsulLock struct {
	opts    ConsulLockOptions
	base    url.URL
	log     *zap.Logger
	held    atomic.Bool
	running atomic.Bool
}

// NewConsulLock checks opts; start the lock with Run.
func NewConsulLock(opts ConsulLockOptions) (*ConsulLock, error) {
	if opts.Key == "" || strings.HasPrefix(opts.Key, "/") {
		return nil, fmt.Errorf("cron: consul lock key %q must be set and not start with /", opts.Key)
	}
	if opts.Address == "" {
		opts.Address = "127.0.0.1:8500"
	}
	if opts.Scheme == "" {
		opts.Scheme = "http"
	}
	if opts.TTL <= 0 {
		opts.TTL = 15 * time.Second
	}
	if opts.Client == nil {
		// An own transport, so Run can close its idle connections on stop
		// without touching anybody else's.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		opts.Client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	if opts.Holder == "" {
		opts.Holder = "mosparo-lb"
	}
	l := &ConsulLock{opts: opts, base: url.URL{Scheme: opts.Scheme, Host: opts.Address}, log: opts.Logger}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	return l, nil
}

// IsLeader implements Leader.
func (l *ConsulLock) IsLeader() bool { return l.held.Load() }

// Run holds or waits for the lock until ctx is done, then releases it and
// returns nil.
func (l *ConsulLock) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return fmt.Errorf("cron: consul lock: %w", ErrRunning)
	}
	defer l.running.Store(false)
	period := l.opts.TTL / 3
	var session string
	failing := false
	for {
		var err error
		session, err = l.keep(ctx, session)
		if err != nil && ctx.Err() == nil {
			// One log line per failing streak, not one per retry.
			if !failing {
				l.log.Warn("consul lock unavailable; not running the web cron", zap.String("key", l.opts.Key), zap.Error(err))
			}
			failing = true
		} else if err == nil {
			failing = false
		}
		t := time.NewTimer(period)
		select {
		case <-ctx.Done():
			t.Stop()
			l.setHeld(false)
			l.giveUp(session)
			l.opts.Client.CloseIdleConnections()
			return nil
		case <-t.C:
		}
	}
}

// keep makes sure a session exists and is renewed, then tries to acquire
// the lock with it; it returns the session to use next time.
func (l *ConsulLock) keep(ctx context.Context, session string) (string, error) {
	if session != "" {
		found, err := l.renew(ctx, session)
		if err != nil {
			l.setHeld(false)
			return session, err
		}
		if !found {
			// Expired or destroyed (by an operator, or a lost agent): the
			// lock it held is gone too.
			l.setHeld(false)
			session = ""
		}
	}
	if session == "" {
		id, err := l.create(ctx)
		if err != nil {
			return "", err
		}
		session = id
	}
	ok, err := l.acquire(ctx, session)
	if err != nil {
		l.setHeld(false)
		return session, err
	}
	l.setHeld(ok)
	return session, nil
}

// setHeld records the state and logs changes only.
func (l *ConsulLock) setHeld(v bool) {
	if l.held.Swap(v) == v {
		return
	}
	if v {
		l.log.Info("consul lock acquired; this LB runs the web cron", zap.String("key", l.opts.Key))
	} else {
		l.log.Info("consul lock lost or released", zap.String("key", l.opts.Key))
	}
}

// giveUp releases the lock and destroys the session on a clean stop; Run's
// context is gone, so a short one of its own bounds it.
func (l *ConsulLock) giveUp(session string) {
	if session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := l.do(ctx, "/v1/kv/"+l.opts.Key, url.Values{"release": {session}}, []byte(l.opts.Holder), nil); err != nil {
		l.log.Warn("consul lock release failed", zap.Error(err))
	}
	if _, err := l.do(ctx, "/v1/session/destroy/"+session, nil, nil, nil); err != nil {
		l.log.Warn("consul session destroy failed", zap.Error(err))
	}
}

func (l *ConsulLock) create(ctx context.Context) (string, error) {
	in := map[string]string{
		"Name":     "mosparo-lb cron: " + l.opts.Holder,
		"TTL":      l.opts.TTL.String(),
		"Behavior": "release",
	}
	if l.opts.LockDelay > 0 {
		in["LockDelay"] = l.opts.LockDelay.String()
	}
	body, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("session create: %w", err)
	}
	var out struct{ ID string }
	if _, err := l.do(ctx, "/v1/session/create", nil, body, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("session create: empty session id")
	}
	return out.ID, nil
}

func (l *ConsulLock) renew(ctx context.Context, session string) (bool, error) {
	code, err := l.do(ctx, "/v1/session/renew/"+session, nil, nil, nil)
	if code == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

func (l *ConsulLock) acquire(ctx context.Context, session string) (bool, error) {
	var ok bool
	_, err := l.do(ctx, "/v1/kv/"+l.opts.Key, url.Values{"acquire": {session}}, []byte(l.opts.Holder), &ok)
	return ok, err
}

// do sends one PUT and decodes a JSON answer into out (if not nil). It
// returns the HTTP status, and an error for anything but 200.
func (l *ConsulLock) do(ctx context.Context, path string, q url.Values, body []byte, out any) (int, error) {
	u := l.base
	u.Path = path
	if l.opts.Datacenter != "" {
		if q == nil {
			q = url.Values{}
		}
		q.Set("dc", l.opts.Datacenter)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("consul %s: %w", path, err)
	}
	if l.opts.Token != "" {
		req.Header.Set("X-Consul-Token", l.opts.Token)
	}
	resp, err := l.opts.Client.Do(req)
	if err != nil {
		// url.Error quotes the URL, which holds no secret (the token is a
		// header), but unwrap it to keep the message short.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("consul %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("consul %s: read answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("consul %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("consul %s: decode answer: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// Interface guards.
var _ Leader = (*ConsulLock)(nil)
