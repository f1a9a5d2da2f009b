package mosparoemu

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	jsonNoPublicKey      = []byte(`{"error":true,"errorMessage":"No public key sent."}`)
	jsonUnknownPublicKey = []byte(`{"error":true,"errorMessage":"No project available for the sent public key."}`)
	jsonMissingParams    = []byte(`{"error":true,"errorMessage":"Required parameter missing."}`)
	jsonBadSubmitToken   = []byte(`{"error":true,"errorMessage":"Submit token not valid."}`)
	jsonStored           = []byte(`{"result":true}`)
)

// frontendMessages stands in for the translated UI texts mosparo sends with a submit token
// (wording of the emulator, not mosparo's).
const frontendMessages = `"messages":{"label":"Check my entries for spam (emulated node).","accessibilityCheckingData":"Checking the entries.","accessibilityDataValid":"The entries are valid.","errorGotNoToken":"No submit token received.","errorInternalError":"Internal error, try again.","errorSpamDetected":"The entries look like spam.","errorLockedOut":"Locked out until %datetime%.","errorDelay":"Delayed for %seconds% seconds."}`

// serveFrontend answers the three frontend API routes (FACTS 2.1). The project comes from the
// POST body's publicKey (ProjectSubscriber, any method matches): missing 400, unknown 403;
// other failures are 200 with {"error":true,...}. Submit tokens and submissions go to the
// Database so another node can continue the flow.
func (n *Node) serveFrontend(ctx *fasthttp.RequestCtx, r route) {
	params := frontendParams(ctx)
	pk := params.get("publicKey")
	if len(pk) == 0 {
		serveJSON(ctx, fasthttp.StatusBadRequest, jsonNoPublicKey)
		return
	}
	p := n.byPublicKey[string(pk)]
	if p == nil {
		serveJSON(ctx, fasthttp.StatusForbidden, jsonUnknownPublicKey)
		return
	}
	p.setCORS(ctx)
	var ipBuf [64]byte
	clientIP := n.trusted.resolveClientIP(ctx, ipBuf[:]).clientText
	if n.lockoutAfter > 0 && r != routeStoreFormData {
		now := n.now()
		if until := n.db.countRequest(p.publicKey, string(clientIP), now, n.lockoutAfter, n.lockoutWindow, n.lockoutDuration); !until.IsZero() {
			serveJSON(ctx, fasthttp.StatusOK, lockoutBody(until, now))
			return
		}
	}
	if r == routeRequestSubmitToken {
		if len(params.get("pageTitle")) == 0 && len(params.get("pageUrl")) == 0 {
			serveJSON(ctx, fasthttp.StatusOK, jsonMissingParams)
			return
		}
		token := randomToken()
		n.db.put(&submission{publicKey: p.publicKey, submitToken: token, clientIP: string(clientIP)})
		body := make([]byte, 0, 128+len(frontendMessages))
		body = append(body, `{"submitToken":"`...)
		body = append(body, token...)
		body = append(body, `",`...)
		body = append(body, frontendMessages...)
		body = append(body, '}')
		serveJSON(ctx, fasthttp.StatusOK, body)
		return
	}
	// store-form-data and check-form-data first look the submit token up, as mosparo does
	// before it reads the form.
	token := params.get("submitToken")
	if len(token) == 0 || !n.db.has(token, p.publicKey) {
		serveJSON(ctx, fasthttp.StatusOK, jsonBadSubmitToken)
		return
	}
	if r == routeStoreFormData {
		n.db.update(string(token), func(s *submission) { s.stored = true })
		serveJSON(ctx, fasthttp.StatusOK, jsonStored)
		return
	}
	fields := parseFormFields(params.get("formData"))
	validation := randomToken()
	if !n.db.update(string(token), func(s *submission) {
		s.fields = fields
		s.validationToken = validation
		s.clientIP = string(clientIP)
	}) {
		serveJSON(ctx, fasthttp.StatusOK, jsonBadSubmitToken) // evicted meanwhile
		return
	}
	body := make([]byte, 0, 128)
	body = append(body, `{"valid":true,"validationToken":"`...)
	body = append(body, validation...)
	body = append(body, `"}`...)
	serveJSON(ctx, fasthttp.StatusOK, body)
}

// formParams is a minimal view of $request->request for the frontend routes: form fields,
// or JSON body fields when the body is JSON.
type formParams struct {
	ctx  *fasthttp.RequestCtx
	json *phpValue
}

func frontendParams(ctx *fasthttp.RequestCtx) formParams {
	p := formParams{ctx: ctx}
	if bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("application/json")) {
		if v, err := phpJSONDecode(ctx.PostBody()); err == nil {
			p.json = &v
		}
	}
	return p
}

// get returns a parameter's value; for form bodies it aliases the request and must not outlive
// the handler.
func (p formParams) get(name string) []byte {
	if p.json != nil {
		if v, ok := p.json.get(name); ok {
			return []byte(v.str())
		}
		return nil
	}
	return p.ctx.PostArgs().Peek(name)
}

// parseFormFields reads the formData the browser sends to check-form-data: a JSON string
// {"fields":[{"name":..,"value":..},...]} (mosparo-frontend.js); a plain JSON array of such
// objects or a name->value object is accepted too. Field names lose a trailing "[]" as the
// verification preparation does (FACTS 8.1).
func parseFormFields(s []byte) map[string]string {
	fields := make(map[string]string)
	if len(s) == 0 {
		return fields
	}
	type field struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	}
	var wrapped struct {
		Fields []field `json:"fields"`
	}
	var list []field
	var flat map[string]json.RawMessage
	add := func(name string, raw json.RawMessage) {
		name = strings.TrimSuffix(name, "[]")
		if name == "" || name == "_mosparo_submitToken" || name == "_mosparo_validationToken" {
			return
		}
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			str = string(raw)
			if str == "null" {
				str = ""
			}
		}
		fields[name] = strings.ReplaceAll(str, "\r\n", "\n")
	}
	switch {
	case json.Unmarshal(s, &wrapped) == nil && wrapped.Fields != nil:
		list = wrapped.Fields
	case json.Unmarshal(s, &list) == nil:
	case json.Unmarshal(s, &flat) == nil:
		for k, v := range flat {
			add(k, v)
		}
		return fields
	}
	for _, f := range list {
		add(f.Name, f.Value)
	}
	return fields
}

// setCORS adds the frontend API CORS headers when the Origin (scheme stripped) is one of the
// project's hosts (FACTS 2.1: origin echoed, Allow-Methods POST, no Vary).
func (p *project) setCORS(ctx *fasthttp.RequestCtx) {
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return
	}
	host := origin
	if i := bytes.Index(host, []byte("://")); i >= 0 {
		host = host[i+3:]
	}
	for _, h := range p.hosts {
		if len(h) == 0 {
			continue
		}
		if h[0] == '*' {
			if !bytes.HasSuffix(host, h[1:]) {
				continue
			}
		} else if !bytes.Equal(host, h) {
			continue
		}
		ctx.Response.Header.SetCanonical(hdrACAO, origin)
		ctx.Response.Header.SetCanonical(hdrACAM, valuePOST)
		return
	}
}

// lockoutBody is the 200 answer of a locked-out client (FACTS 2.1: security responses are
// 200 {"security":true,"type":"lockout",...}).
func lockoutBody(until, now time.Time) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"security":true,"type":"lockout","validUntil":"`...)
	b = until.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","remainingSeconds":`...)
	b = strconv.AppendInt(b, int64(until.Sub(now).Round(time.Second)/time.Second), 10)
	return append(b, '}')
}
