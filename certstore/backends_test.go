package certstore

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/hashicorp/consul/api"

	"github.com/mosparo-lb/mosparo-lb/internal/consulclient"
	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
)

// testOptions are fast lock settings for tests: a short lock-delay and
// retry, so a lost lock changes hands quickly.
func testOptions() Options {
	return Options{LockTTL: 10 * time.Second, LockDelay: 50 * time.Millisecond, LockRetry: 20 * time.Millisecond, LockWait: 5 * time.Second, Holder: "test"}
}

// newClient returns a bounded client of the agent at addr whose idle
// connections end with the test.
func newClient(t *testing.T, addr string, opts Options) *api.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cl, err := consulclient.New(consulclient.Config{Address: addr, MaxAnswer: opts.AnswerBound(), HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// newConsul returns a storage on the agent at addr; its locks are released
// when the test ends.
func newConsul(t *testing.T, addr string, opts Options) *Consul {
	t.Helper()
	s, err := NewConsul(newClient(t, addr, opts), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is already done when cleanups run.
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// fakeAgent starts the project's fake Consul agent for the test.
func fakeAgent(t *testing.T, opts consultest.Options) *consultest.Agent {
	t.Helper()
	a, err := consultest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// backend makes fresh storages that share one store: two of them stand
// for the two LBs of a pair.
type backend struct {
	name string
	// open starts the shared store and returns a maker of storages on it.
	open func(t *testing.T) func() certmagic.Storage
}

func backends() []backend {
	return []backend{
		{"file", func(t *testing.T) func() certmagic.Storage {
			dir := t.TempDir()
			return func() certmagic.Storage { return &certmagic.FileStorage{Path: dir} }
		}},
		{"consul-fake", func(t *testing.T) func() certmagic.Storage {
			a := fakeAgent(t, consultest.Options{})
			return func() certmagic.Storage { return newConsul(t, a.Addr(), testOptions()) }
		}},
		{"consul-real", func(t *testing.T) func() certmagic.Storage {
			addr := consultest.RealAgent(t)
			return func() certmagic.Storage { return newConsul(t, addr, testOptions()) }
		}},
	}
}
