package admin

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// CSRFHeader carries the page's per-process CSRF value on writes made by a
// browser. Browsers refuse to add a custom header to a cross-origin request
// without a CORS preflight, which this server never grants.
const CSRFHeader = "X-MosparoLB-CSRF"

// pageCSP lets the page load only its own script and style and talk only to
// its own origin, so node names or reasons from /status (which can come from
// Consul) cannot inject anything even if rendering had a flaw.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageFiles holds the status page: index.html.tmpl and everything under
// assets/, served from the binary so the page works without any CDN.
//
//go:embed page
var pageFiles embed.FS

// statusPage is the web UI of one Server: its template and the random CSRF
// value embedded in it, fixed for the life of the process.
type statusPage struct {
	tmpl   *template.Template
	assets http.Handler
	csrf   string
	cop    *http.CrossOriginProtection
}

func newStatusPage() *statusPage {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it panics instead)
	sub, err := fs.Sub(pageFiles, "page")
	if err != nil {
		panic("admin: embedded page missing: " + err.Error()) // impossible: go:embed checked it
	}
	return &statusPage{
		tmpl:   template.Must(template.ParseFS(sub, "index.html.tmpl")),
		assets: http.FileServerFS(sub),
		csrf:   hex.EncodeToString(b),
		cop:    http.NewCrossOriginProtection(),
	}
}

// pageData is what index.html.tmpl renders.
type pageData struct {
	CSRF          string
	TokenRequired bool
}

// page serves the status web page at GET /.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := s.ui.tmpl.Execute(&buf, pageData{CSRF: s.ui.csrf, TokenRequired: s.cfg.Token != ""}); err != nil {
		s.deps.Logger.Error("status page render", zap.Error(err))
		http.Error(w, "status page unavailable", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // carries the CSRF value
	_, _ = w.Write(buf.Bytes())
}

// asset serves the page's script, style and icon.
func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w)
	// The files change only with the binary; revalidating is cheap on loopback.
	w.Header().Set("Cache-Control", "no-cache")
	s.ui.assets.ServeHTTP(w, r)
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// errCrossSite and friends are the answers of checkWrite, written to the
// client so an operator sees why a write was refused.
var (
	errCrossSite = errors.New("cross-site request refused")
	errCSRF      = errors.New("missing or wrong " + CSRFHeader + " header: reload the status page")
	errHost      = errors.New("the Host header must be an IP address, localhost or a name in admin.hosts, or the request must carry admin.token")
)

// checkWrite refuses a write that a web page other than ours could have
// made. Browsers mark their requests with Origin or Sec-Fetch-Site; such a
// request must be same-origin and carry the CSRF value embedded in our page.
// Requests without either header come from tools (mosparo-lb node, curl),
// which no web page can make a browser impersonate, so the bearer token (if
// configured) is all they need.
func (s *Server) checkWrite(r *http.Request) error {
	if err := s.ui.cop.Check(r); err != nil {
		return errCrossSite
	}
	if r.Header.Get("Origin") == "" && r.Header.Get("Sec-Fetch-Site") == "" {
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.ui.csrf)) != 1 {
		return errCSRF
	}
	return nil
}

// hostAllowed defeats DNS rebinding on every route: a hostile site whose
// name resolves to the admin address would otherwise be same-origin with
// it, read /status and /metrics (node addresses and states) and the CSRF
// value from the page. Browsers always send the name they resolved as Host,
// so only IP literals, localhost and the names the operator listed in
// admin.hosts are answered. A token does not lift the check (issue 11,
// item 10) but is itself enough: a request carrying it came from someone
// who knows it (Prometheus or the CLI reaching the listener by name), which
// a rebinding page cannot.
func (s *Server) hostAllowed(r *http.Request) error {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil {
		return nil
	}
	for _, name := range s.cfg.Hosts {
		if strings.EqualFold(host, name) {
			return nil
		}
	}
	if s.cfg.Token != "" && s.authorized(r) {
		return nil
	}
	return errHost
}
