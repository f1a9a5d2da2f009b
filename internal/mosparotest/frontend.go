package mosparotest

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/valyala/fasthttp"
)

var (
	jsonNoPublicKey      = []byte(`{"error":true,"errorMessage":"No public key sent."}`)
	jsonUnknownPublicKey = []byte(`{"error":true,"errorMessage":"No project available for the sent public key."}`)
	jsonMissingParams    = []byte(`{"error":true,"errorMessage":"Required parameter missing."}`)
	jsonBadSubmitToken   = []byte(`{"error":true,"errorMessage":"Submit token not valid."}`)
	jsonStored           = []byte(`{"result":true}`)
)

// frontendMessages is a shortened version of the translated messages mosparo returns with a
// submit token.
const frontendMessages = `"messages":{"label":"I accept that the form entries are checked for spam and stored encrypted for 14 days.","accessibilityCheckingData":"We're checking your data. Please wait.","accessibilityDataValid":"Your data are valid. You can submit the form.","errorGotNoToken":"mosparo returned no submit token.","errorInternalError":"An error occurred. Please try again.","errorNoSubmitTokenAvailable":"No submit token available. Validation of your data impossible.","errorSpamDetected":"Your data got catched by our spam protection.","errorLockedOut":"You are locked out. Please try again after %datetime%","errorDelay":"Your request was delayed. Please wait for %seconds% seconds.","hpLeaveEmpty":"Leave this field blank"}`

// serveFrontend answers the three frontend API routes (FACTS 2.1). The project comes from the
// POST body's publicKey (ProjectSubscriber, any method matches): missing 400, unknown 403;
// other failures are 200 with {"error":true,...}. Submit tokens and submissions go to the
// Database so another node can continue the flow.
func (n *Node) serveFrontend(ctx *fasthttp.RequestCtx, r route) {
	params := frontendParams(ctx)
	pk := params.get("publicKey")
	if pk == "" {
		serveJSON(ctx, fasthttp.StatusBadRequest, jsonNoPublicKey)
		return
	}
	p := n.byPublicKey[pk]
	if p == nil {
		serveJSON(ctx, fasthttp.StatusForbidden, jsonUnknownPublicKey)
		return
	}
	p.setCORS(ctx)
	switch r {
	case routeRequestSubmitToken:
		if params.get("pageTitle") == "" && params.get("pageUrl") == "" {
			serveJSON(ctx, fasthttp.StatusOK, jsonMissingParams)
			return
		}
		token := randomToken()
		n.db.put(&submission{publicKey: pk, submitToken: token})
		body := make([]byte, 0, 128+len(frontendMessages))
		body = append(body, `{"submitToken":"`...)
		body = append(body, token...)
		body = append(body, `",`...)
		body = append(body, frontendMessages...)
		body = append(body, '}')
		serveJSON(ctx, fasthttp.StatusOK, body)
	case routeStoreFormData:
		token := params.get("submitToken")
		ok := token != "" && n.db.update(token, func(s *submission) {
			if s.publicKey == pk {
				s.stored = true
			}
		})
		if !ok {
			serveJSON(ctx, fasthttp.StatusOK, jsonBadSubmitToken)
			return
		}
		serveJSON(ctx, fasthttp.StatusOK, jsonStored)
	case routeCheckFormData:
		token := params.get("submitToken")
		fields := parseFormFields(params.get("formData"))
		validation := randomToken()
		ok := token != "" && n.db.update(token, func(s *submission) {
			if s.publicKey != pk {
				return
			}
			s.fields = fields
			s.validationToken = validation
		})
		if sub, found := n.db.Lookup(token); !ok || !found || sub.ValidationToken != validation {
			serveJSON(ctx, fasthttp.StatusOK, jsonBadSubmitToken)
			return
		}
		body := make([]byte, 0, 128)
		body = append(body, `{"valid":true,"validationToken":"`...)
		body = append(body, validation...)
		body = append(body, `"}`...)
		serveJSON(ctx, fasthttp.StatusOK, body)
	}
}

// formParams is a minimal view of $request->request for the frontend routes.
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

func (p formParams) get(name string) string {
	if p.json != nil {
		if v, ok := p.json.get(name); ok {
			return v.str()
		}
		return ""
	}
	return string(p.ctx.PostArgs().Peek(name))
}

// parseFormFields reads the formData the browser sends to check-form-data: a JSON string
// {"fields":[{"name":..,"value":..},...]} (mosparo-frontend.js); a plain JSON array of such
// objects or a name->value object is accepted too. Field names lose a trailing "[]" as the
// verification preparation does (FACTS 8.1).
func parseFormFields(s string) map[string]string {
	fields := make(map[string]string)
	if s == "" {
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
	case json.Unmarshal([]byte(s), &wrapped) == nil && wrapped.Fields != nil:
		list = wrapped.Fields
	case json.Unmarshal([]byte(s), &list) == nil:
	case json.Unmarshal([]byte(s), &flat) == nil:
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
		if h == "" {
			continue
		}
		if h[0] == '*' {
			if !strings.HasSuffix(string(host), h[1:]) {
				continue
			}
		} else if string(host) != h {
			continue
		}
		ctx.Response.Header.SetCanonical(hdrACAO, origin)
		ctx.Response.Header.SetCanonical(hdrACAM, valuePOST)
		return
	}
}
