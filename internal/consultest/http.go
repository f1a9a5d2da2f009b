package consultest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBody bounds a registration or check update body.
const maxBody = 1 << 20

// routes is the agent's HTTP API. down is closed when this listener
// generation is stopped.
func (a *Agent) routes(down <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/agent/service/register", a.handleRegister)
	mux.HandleFunc("PUT /v1/agent/service/deregister/{id}", a.handleDeregister)
	mux.HandleFunc("PUT /v1/agent/service/maintenance/{id}", a.handleMaintenance)
	mux.HandleFunc("PUT /v1/agent/maintenance", a.handleMaintenance)
	mux.HandleFunc("PUT /v1/agent/check/{op}/{id}", a.handleCheck)
	mux.HandleFunc("GET /v1/agent/checks", a.handleAgentChecks)
	mux.HandleFunc("GET /v1/agent/services", a.handleAgentServices)
	mux.HandleFunc("GET /v1/agent/service/{id}", a.handleAgentService)
	mux.HandleFunc("GET /v1/health/service/{name}", func(w http.ResponseWriter, r *http.Request) {
		a.serveQuery(w, r, down, true)
	})
	mux.HandleFunc("GET /v1/catalog/service/{name}", func(w http.ResponseWriter, r *http.Request) {
		a.serveQuery(w, r, down, false)
	})
	a.kvRoutes(mux, down)
	mux.HandleFunc("GET /v1/status/leader", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, "127.0.0.1:8300")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.inReq.Add(1)
		defer a.inReq.Done()
		a.mu.Lock()
		a.requests = append(a.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Token: tokenOf(r)})
		a.touch()
		a.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
}

// tokenOf reads the ACL token the ways Consul accepts it.
func tokenOf(r *http.Request) string {
	if t := r.Header.Get("X-Consul-Token"); t != "" {
		return t
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t
	}
	return ""
}

// authorize applies the ACL rule of Options.Token. anonymous reports a read
// without a token, which sees filtered (empty) results.
func (a *Agent) authorize(r *http.Request, write bool) (anonymous bool, err error) {
	if a.opts.Token == "" {
		return false, nil
	}
	switch tok := tokenOf(r); {
	case tok == "" && write:
		return false, errPermission
	case tok == "":
		return true, nil
	case tok != a.opts.Token:
		return false, errACLNotFound
	}
	return false, nil
}

// writeError maps the fake's errors to Consul's status codes and texts.
func writeError(w http.ResponseWriter, err error) {
	code, msg := http.StatusInternalServerError, err.Error()
	for _, m := range []struct {
		err  error
		code int
		text string
	}{
		{errBadRequest, http.StatusBadRequest, ""},
		{errNotFound, http.StatusNotFound, ""},
		{errNoTTL, http.StatusInternalServerError, ""},
		{errPermission, http.StatusForbidden, "Permission denied"},
		{errACLNotFound, http.StatusForbidden, "ACL not found"},
		{errNoDatacenter, http.StatusInternalServerError, "No path to datacenter"},
	} {
		if errors.Is(err, m.err) {
			code = m.code
			msg = strings.TrimPrefix(msg, m.err.Error()+": ")
			if m.text != "" {
				msg = m.text
			}
			break
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// failed wraps a sentinel with Consul's own message text.
func failed(sentinel error, msg string) error { return fmt.Errorf("%w: %s", sentinel, msg) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeEmpty is the agent's answer to a successful write: 200, empty body.
func writeEmpty(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }

func (a *Agent) handleRegister(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	var reg Registration
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&reg); err != nil {
		writeError(w, failed(errBadRequest, "Request decode failed: "+err.Error()))
		return
	}
	a.mu.Lock()
	err := a.register(a.opts.NodeName, reg)
	a.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeEmpty(w)
}

func (a *Agent) handleDeregister(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	a.mu.Lock()
	err := a.deregister(a.opts.NodeName, r.PathValue("id"))
	a.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeEmpty(w)
}

// handleMaintenance serves the service form (with {id}) and the node form.
func (a *Agent) handleMaintenance(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	if !q.Has("enable") {
		writeError(w, failed(errBadRequest, "Missing value for enable"))
		return
	}
	enable, err := strconv.ParseBool(q.Get("enable"))
	if err != nil {
		writeError(w, failed(errBadRequest, "Invalid value for enable"))
		return
	}
	a.mu.Lock()
	err = a.maintenance(a.opts.NodeName, r.PathValue("id"), enable, q.Get("reason"))
	a.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeEmpty(w)
}

// handleCheck is /v1/agent/check/pass|warn|fail/<id>?note= and
// /v1/agent/check/update/<id> with {"Status","Output"}.
func (a *Agent) handleCheck(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, true); err != nil {
		writeError(w, err)
		return
	}
	status, output := "", r.URL.Query().Get("note")
	switch r.PathValue("op") {
	case "pass":
		status = Passing
	case "warn":
		status = Warning
	case "fail":
		status = Critical
	case "update":
		var body struct{ Status, Output string }
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil {
			writeError(w, failed(errBadRequest, "Request decode failed: "+err.Error()))
			return
		}
		status, output = body.Status, body.Output
	default:
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	err := a.updateTTL(a.opts.NodeName, r.PathValue("id"), status, output)
	a.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeEmpty(w)
}

func (a *Agent) handleAgentChecks(w http.ResponseWriter, r *http.Request) {
	anon, err := a.authorize(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	a.mu.Lock()
	out := map[string]jsonCheck{}
	for k, c := range a.checks {
		if k.node == a.opts.NodeName && k.id != "serfHealth" && !anon {
			out[k.id] = a.checkJSON(c)
		}
	}
	a.mu.Unlock()
	writeJSON(w, out)
}

func (a *Agent) handleAgentServices(w http.ResponseWriter, r *http.Request) {
	anon, err := a.authorize(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	a.mu.Lock()
	out := map[string]jsonService{}
	for k, s := range a.services {
		if k.node == a.opts.NodeName && !anon {
			out[k.id] = serviceJSON(s)
		}
	}
	a.mu.Unlock()
	writeJSON(w, out)
}

func (a *Agent) handleAgentService(w http.ResponseWriter, r *http.Request) {
	anon, err := a.authorize(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	a.mu.Lock()
	s, ok := a.services[svcKey{a.opts.NodeName, r.PathValue("id")}]
	var out jsonService
	if ok {
		out = serviceJSON(s)
	}
	a.mu.Unlock()
	if !ok || anon {
		writeError(w, failed(errNotFound, "unknown service ID: "+r.PathValue("id")))
		return
	}
	writeJSON(w, out)
}
