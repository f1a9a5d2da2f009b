package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"go.uber.org/zap"
)

// Deps are the views of the other components the admin API serves.
type Deps struct {
	Logger *zap.Logger
	// Status returns the JSON-encodable status document for GET /status.
	Status func() any
	// SetNodeState applies an operator state ("drain", "maintenance",
	// "ready") to a node by name; nil disables the write endpoints.
	SetNodeState func(name, state string) error
	// Metrics, when set, is served on GET /metrics.
	Metrics *Metrics
	// Listen gives Listen its socket (one handed over by systemd or an
	// upgrading process); nil binds one with net.Listen.
	Listen func(network, address string) (net.Listener, error)
}

// Server is the admin HTTP listener.
type Server struct {
	cfg  configs.Admin
	deps Deps
	mux  *http.ServeMux
	h    http.Handler // mux behind the Host check
	ln   net.Listener
	ui   *statusPage // the web page at / and its CSRF value (page.go)
}

// New prepares the admin server; Listen binds it.
func New(cfg configs.Admin, deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	s := &Server{cfg: cfg, deps: deps, mux: http.NewServeMux(), ui: newStatusPage()}
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.HandleFunc("GET /assets/", s.asset)
	s.mux.HandleFunc("GET /status", s.status)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("POST /nodes/{name}/{action}", s.nodeAction)
	if deps.Metrics != nil {
		s.mux.Handle("GET /metrics", deps.Metrics.Handler())
	}
	s.h = http.HandlerFunc(s.checkHost)
	return s
}

// Handler exposes the routes (for tests and embedding), Host check included.
func (s *Server) Handler() http.Handler { return s.h }

// checkHost applies hostAllowed to every route before the mux: /status and
// /metrics name nodes and their states, which a DNS-rebinding page must not
// read any more than it may drive the write routes (issue 11, item 10).
func (s *Server) checkHost(w http.ResponseWriter, r *http.Request) {
	if err := s.hostAllowed(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Listen binds admin.listen.
func (s *Server) Listen() error {
	listen := s.deps.Listen
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin: listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is cancelled.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("admin: %w", err)
	}
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s.deps.Status()); err != nil {
		s.deps.Logger.Warn("status encode", zap.Error(err))
	}
}

func (s *Server) nodeAction(w http.ResponseWriter, r *http.Request) {
	if err := s.checkWrite(r); err != nil {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": true, "errorMessage": err.Error()})
		return
	}
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": true, "errorMessage": "a valid admin token is required"})
		return
	}
	if s.deps.SetNodeState == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]any{"error": true, "errorMessage": "node states are not managed"})
		return
	}
	name, action := r.PathValue("name"), r.PathValue("action")
	switch action {
	case "drain", "maintenance", "ready":
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": true, "errorMessage": "action must be drain, maintenance or ready"})
		return
	}
	if err := s.deps.SetNodeState(name, action); err != nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": true, "errorMessage": err.Error()})
		return
	}
	s.deps.Logger.Info("node state set by operator", zap.String("node", name), zap.String("state", action))
	writeJSON(w, http.StatusOK, map[string]any{"node": name, "state": action})
}

// authorized checks the bearer token when one is configured.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
