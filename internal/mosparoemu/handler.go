package mosparoemu

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// Response header names and values used on several routes.
var (
	hdrNode        = []byte("X-Mosparo-Node")
	hdrAllow       = []byte("Allow")
	hdrCacheCtl    = []byte("Cache-Control")
	hdrACAO        = []byte("Access-Control-Allow-Origin")
	hdrACAM        = []byte("Access-Control-Allow-Methods")
	ctJSON         = []byte("application/json")
	ctHTML         = []byte("text/html; charset=UTF-8")
	ctText         = []byte("text/plain; charset=UTF-8")
	pathSetup      = []byte("/setup/")
	pathFinalize   = []byte("/administration/update/finalize")
	valueGET       = []byte("GET")
	valuePOST      = []byte("POST")
	valueStar      = []byte("*")
	valueNoCachePb = []byte("no-cache, public")
)

// handle is the fasthttp handler of one incarnation. Order: node header and counters, delay,
// test routes and static files (served by nginx, not PHP), then PHP routes gated by the health
// state as SetupSubscriber does (FACTS 1.4).
func (n *Node) handle(ctx *fasthttp.RequestCtx, inc *incarnation) {
	ctx.Response.Header.SetCanonical(hdrNode, n.nameHdr)
	path := ctx.Path()
	r := classify(path)
	n.paths.add(ctx.Method(), path)
	if r != routeStatic && r != routeEcho && r != routeTest {
		// The web server hands the rest to PHP, whose router sees Symfony's path info.
		if p := n.phpPath(ctx); p != nil {
			path, r = p, classify(p)
			if r == routeStatic || r == routeEcho || r == routeTest {
				r = routeNotFound // no Symfony route: served as files or not at all
			}
		}
	}
	n.counts[r].Add(1)
	if d := time.Duration(n.delay.Load()); d > 0 {
		if !sleep(d, inc.stop) {
			ctx.SetConnectionClose()
			return
		}
	}
	switch r {
	case routeEcho:
		n.serveEcho(ctx)
		return
	case routeTest:
		n.serveTest(ctx, inc, path)
		return
	case routeStatic:
		n.serveStatic(ctx, path)
		return
	}
	h := n.effectiveHealth()
	if h == Broken {
		serveHTML(ctx, fasthttp.StatusInternalServerError, pageError500)
		return
	}
	if r == routeHealth {
		n.serveHealth(ctx, h)
		return
	}
	if h == NotConfigured && r != routeSetup && r != routeNotFound {
		// SetupSubscriber: every route but setup (and health) goes to the wizard (FACTS 1.4);
		// a path no route matches fails in the router first, with 404.
		redirect(ctx, fasthttp.StatusFound, pathSetup)
		return
	}
	if h == UpdateNotFinished && ctx.IsGet() && drainRedirects(r, path) {
		redirect(ctx, fasthttp.StatusFound, pathFinalize)
		return
	}
	if h == DBFailed && needsDB(r, path) {
		// Doctrine throws on the first query; Symfony renders its 500 page.
		serveHTML(ctx, fasthttp.StatusInternalServerError, pageError500)
		return
	}
	switch r {
	case routeRequestSubmitToken, routeStoreFormData, routeCheckFormData:
		n.serveFrontend(ctx, r)
	case routeVerify:
		n.serveVerify(ctx)
	case routeStoreMetadata:
		n.serveStoreMetadata(ctx)
	case routeStatistic:
		n.serveStatistic(ctx)
	case routeResourcesCSS, routeResourcesHashCSS, routeResourcesOther:
		n.serveResources(ctx, r, path)
	case routeCron:
		n.serveCron(ctx, inc)
	case routeSetup:
		n.serveSetup(ctx, h, path)
	case routeAdmin:
		if bytes.Equal(path, pathFinalize) {
			n.serveFinalize(ctx)
			return
		}
		n.serveAdmin(ctx, path)
	default:
		n.serveNotFound(ctx)
	}
}

// sleep waits d or until stop is closed; it reports whether the full delay passed.
func sleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

func serveHTML(ctx *fasthttp.RequestCtx, status int, body []byte) {
	setStatus(ctx, status)
	ctx.Response.Header.SetContentTypeBytes(ctHTML)
	ctx.Response.SetBodyRaw(body)
}

func serveJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	setStatus(ctx, status)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.Response.SetBodyRaw(body)
}

// serveText answers with one of mosparo's plain-text bodies; Symfony's Response defaults to
// text/html (FACTS 6.1).
func serveText(ctx *fasthttp.RequestCtx, status int, body []byte) {
	serveHTML(ctx, status, body)
}

// redirect answers a Symfony RedirectResponse to a path on the same host.
func redirect(ctx *fasthttp.RequestCtx, status int, location []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetCanonical([]byte("Location"), location)
	ctx.Response.Header.SetContentTypeBytes(ctHTML)
	ctx.Response.SetBodyRaw(pageRedirect)
}

// wantsJSON reports whether the request's Accept header is exactly application/json, the only
// case mosparo's ExceptionSubscriber renders errors as JSON (FACTS 1.1).
func wantsJSON(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.Request.Header.Peek(fasthttp.HeaderAccept)) == "application/json"
}

func (n *Node) serveNotFound(ctx *fasthttp.RequestCtx) {
	if wantsJSON(ctx) {
		serveJSON(ctx, fasthttp.StatusNotFound, jsonNotFound)
		return
	}
	serveHTML(ctx, fasthttp.StatusNotFound, pageNotFound)
}

var reasonTooEarly = []byte("Too Early")

// setStatus sets the status code; fasthttp has no reason phrase for 425 (RFC 8470), which the
// web cron uses (FACTS 6.1).
func setStatus(ctx *fasthttp.RequestCtx, status int) {
	ctx.SetStatusCode(status)
	if status == 425 {
		ctx.Response.Header.SetStatusMessage(reasonTooEarly)
	}
}

// needsDB reports whether a route queries the database before answering: everything PHP
// serves except the hashed CSS (served from the prepared cache, FACTS 5.3), the logo and the
// setup wizard.
func needsDB(r route, path []byte) bool {
	switch r {
	case routeResourcesHashCSS, routeSetup, routeNotFound:
		return false
	case routeResourcesOther:
		return !bytes.HasSuffix(path, []byte("/logo.svg"))
	}
	return true
}

// drainRedirects reports whether SetupSubscriber answers a GET of route r with 302 to the
// finalize page while an update is pending (FACTS 11.2): every matched route but the nine it
// lists (the statistic route among them under a name no route has, so statistics GETs are
// redirected). Unmatched paths fail in the router first.
func drainRedirects(r route, path []byte) bool {
	switch r {
	case routeNotFound, routeHealth, routeRequestSubmitToken, routeCheckFormData, routeVerify, routeCron:
		return false
	case routeAdmin:
		switch string(path) {
		case "/administration/update/execute", "/administration/update/execute/update", string(pathFinalize):
			return false
		}
	}
	return true
}

var (
	strIndexPHP = []byte("index.php")
	strPublic   = []byte("/public")
)

// phpPath is the path Symfony routes when it differs from the normalized one (front-controller
// prefixes, FACTS 11.1), else nil. Requests without such a spelling take a path without
// allocations.
func (n *Node) phpPath(ctx *fasthttp.RequestCtx) []byte {
	raw := ctx.Request.Header.RequestURI()
	if bytes.IndexByte(raw, '%') < 0 && !bytes.Contains(raw, strIndexPHP) &&
		(n.script != ScriptApacheRoot || !bytes.HasPrefix(raw, strPublic)) {
		return nil
	}
	return PathInfo(raw, n.script)
}
