package mosparoemu

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

const (
	endpointVerify    = "/api/v1/verification/verify"
	endpointStatistic = "/api/v1/statistic/by-date"
)

var (
	jsonNoAuthHeader  = []byte(`{"error":true,"errorMessage":"No authorization header found."}`)
	jsonAuthInvalid   = []byte(`{"error":true,"errorMessage":"Authorization header invalid.","0":401}`)
	jsonRequestBad    = []byte(`{"error":true,"errorMessage":"Request invalid."}`)
	jsonVerifyMissing = []byte(`{"error":true,"errorMessage":"Required parameter missing."}`)
	jsonNoSubmission  = []byte(`{"error":true,"errorMessage":"Submission not found."}`)
)

// Sign returns the request signature of FACTS 8.1: hex HMAC-SHA256 with the private key over
// apiEndpoint + payload, payload being toJson(requestData) as PHP encodes it.
func Sign(privateKey, apiEndpoint string, payload []byte) string {
	return hex.EncodeToString(hmacSHA256([]byte(privateKey), []byte(apiEndpoint), payload))
}

// HMACHex returns hex HMAC-SHA256(key, msg), the primitive of every mosparo signature.
func HMACHex(key, msg string) string {
	return hex.EncodeToString(hmacSHA256([]byte(key), []byte(msg)))
}

// AuthorizationHeader returns the value clients send: "Basic base64(publicKey:signature)".
func AuthorizationHeader(publicKey, signature string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(publicKey+":"+signature))
}

// SignJSON returns the signature an official client computes for a JSON request body: the body
// decoded and re-encoded with PHP's toJson rules (FACTS 8.1), so it is also what the node
// expects for that body.
func SignJSON(privateKey, apiEndpoint string, body []byte) (string, error) {
	v, err := phpJSONDecode(body)
	if err != nil {
		return "", err
	}
	return Sign(privateKey, apiEndpoint, phpToJSON(nil, &v)), nil
}

// VerifyRequest builds what the PHP client sends to /api/v1/verification/verify for a
// submission whose browser form had fields (name -> raw value) and got validationToken from
// check-form-data: the JSON body, the Authorization header value, and the
// verificationSignature a valid answer must carry (FACTS 8.1).
func VerifyRequest(publicKey, privateKey, submitToken, validationToken string, fields map[string]string) (body []byte, authorization, verificationSignature string) {
	prepared := phpArr()
	for _, k := range sortedKeys(fields) {
		sum := sha256.Sum256([]byte(strings.ReplaceAll(fields[k], "\r\n", "\n")))
		prepared.set(strings.TrimSuffix(k, "[]"), phpStr(hex.EncodeToString(sum[:])))
	}
	key := []byte(privateKey)
	validationSig := hex.EncodeToString(hmacSHA256(key, []byte(validationToken)))
	formSig := hex.EncodeToString(hmacSHA256(key, phpToJSON(nil, &prepared)))
	data := phpArr()
	data.set("submitToken", phpStr(submitToken))
	data.set("validationSignature", phpStr(validationSig))
	data.set("formSignature", phpStr(formSig))
	data.set("formData", prepared)
	body, _ = appendPHPJSON(nil, &data)
	if len(prepared.keys) == 0 {
		body = phpToJSON(nil, &data) // an empty formData must go out as {} like the clients send it
	}
	sig := Sign(privateKey, endpointVerify, phpToJSON(nil, &data))
	return body, AuthorizationHeader(publicKey, sig), HMACHex(privateKey, validationSig+formSig)
}

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// authenticate runs ProjectSubscriber's checks for the HMAC APIs (FACTS 2.2): missing header 400,
// malformed header 200 with "0":401, unknown key 403, signature mismatch 400. The
// api_access_ip_allow_list is empty (allow all). On success it returns the project and the
// request data the signature covered.
func (n *Node) authenticate(ctx *fasthttp.RequestCtx, endpoint string) (*project, *phpValue, bool) {
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(auth) == 0 {
		serveJSON(ctx, fasthttp.StatusBadRequest, jsonNoAuthHeader)
		return nil, nil, false
	}
	auth = bytes.TrimPrefix(auth, []byte("Basic "))
	decoded, err := base64.StdEncoding.DecodeString(string(auth))
	if err != nil {
		decoded, err = base64.RawStdEncoding.DecodeString(string(auth))
	}
	parts := bytes.Split(decoded, []byte(":"))
	if err != nil || len(parts) != 2 {
		serveJSON(ctx, fasthttp.StatusOK, jsonAuthInvalid)
		return nil, nil, false
	}
	p := n.byPublicKey[string(parts[0])]
	if p == nil {
		serveJSON(ctx, fasthttp.StatusForbidden, jsonUnknownPublicKey)
		return nil, nil, false
	}
	data := requestData(ctx)
	payload := phpToJSON(make([]byte, 0, 256), &data)
	want := hex.EncodeToString(hmacSHA256(p.privateKey, []byte(endpoint), payload))
	if !hmac.Equal([]byte(want), parts[1]) {
		serveJSON(ctx, fasthttp.StatusBadRequest, jsonRequestBad)
		return nil, nil, false
	}
	return p, &data, true
}

// requestData is array_merge(query parameters with range/page/perPage cast to int, body
// parameters) as ProjectSubscriber signs it (FACTS 8.1). JSON bodies count when the
// Content-Type is JSON (json-request-bundle), form bodies otherwise.
func requestData(ctx *fasthttp.RequestCtx) phpValue {
	query := phpArr()
	for k, v := range ctx.QueryArgs().All() {
		phpParseStrSet(&query, string(k), string(v))
	}
	for _, name := range [...]string{"range", "page", "perPage"} {
		if v, ok := query.get(name); ok && v.kind == phpString {
			*v = phpValue{kind: phpInt, s: strconv.FormatInt(phpIntCast(v.s), 10)}
		}
	}
	body := phpArr()
	if bytes.Contains(ctx.Request.Header.ContentType(), []byte("json")) {
		if v, err := phpJSONDecode(ctx.PostBody()); err == nil {
			body = v
		}
	} else {
		for k, v := range ctx.PostArgs().All() {
			phpParseStrSet(&body, string(k), string(v))
		}
	}
	return phpArrayMerge(&query, &body)
}

// serveVerify answers POST /api/v1/verification/verify (FACTS 2.2, 8.1). After authentication
// it recomputes what the official clients compute from the submission the node stored at
// check-form-data: validationSignature = HMAC(validationToken), formSignature =
// HMAC(toJson(ksorted fields with sha256-hex values)), and answers verificationSignature =
// HMAC(validationSignature + formSignature) with per-field results.
func (n *Node) serveVerify(ctx *fasthttp.RequestCtx) {
	p, data, ok := n.authenticate(ctx, endpointVerify)
	if !ok {
		return
	}
	submitToken, ok1 := data.get("submitToken")
	validationSig, ok2 := data.get("validationSignature")
	formSig, ok3 := data.get("formSignature")
	formData, ok4 := data.get("formData")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		serveJSON(ctx, fasthttp.StatusOK, jsonVerifyMissing)
		return
	}
	sub, found := n.db.Lookup(submitToken.str())
	if !found || sub.PublicKey != p.publicKey || sub.ValidationToken == "" {
		serveJSON(ctx, fasthttp.StatusOK, jsonNoSubmission)
		return
	}
	key := p.privateKey
	wantValidation := hex.EncodeToString(hmacSHA256(key, []byte(sub.ValidationToken)))
	prepared := phpArr()
	for _, k := range sortedKeys(sub.Fields) {
		sum := sha256.Sum256([]byte(sub.Fields[k]))
		prepared.set(k, phpStr(hex.EncodeToString(sum[:])))
	}
	wantForm := hex.EncodeToString(hmacSHA256(key, phpToJSON(nil, &prepared)))

	valid := validationSig.str() == wantValidation && formSig.str() == wantForm
	fieldsOut := phpArr()
	var issues []string
	for i, k := range prepared.keys {
		got, ok := formData.get(k)
		switch {
		case !ok:
			fieldsOut.set(k, phpStr("not-verified"))
		case got.str() == prepared.vals[i].s:
			fieldsOut.set(k, phpStr("valid"))
		default:
			fieldsOut.set(k, phpStr("invalid"))
			valid = false
			issues = append(issues, k)
		}
	}
	if formData.kind == phpArray {
		for _, k := range formData.keys {
			if _, ok := prepared.get(k); !ok {
				fieldsOut.set(k, phpStr("invalid"))
				valid = false
				issues = append(issues, k)
			}
		}
	}
	body := make([]byte, 0, 256)
	if valid {
		n.db.update(sub.SubmitToken, func(s *submission) { s.verified++ })
		sig := hex.EncodeToString(hmacSHA256(key, []byte(wantValidation+wantForm)))
		body = append(body, `{"valid":true,"verificationSignature":"`...)
		body = append(body, sig...)
		body = append(body, `","verifiedFields":`...)
	} else {
		body = append(body, `{"valid":false,"verificationSignature":null,"verifiedFields":`...)
	}
	if len(fieldsOut.keys) == 0 {
		body = append(body, "[]"...) // an empty PHP array encodes as a list
	} else {
		body, _ = appendPHPJSON(body, &fieldsOut)
	}
	body = append(body, `,"issues":[`...)
	if !valid && len(issues) == 0 {
		issues = append(issues, "signature")
	}
	for i, name := range issues {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"name":`...)
		body, _ = appendPHPString(body, name)
		body = append(body, `,"message":"Field not valid."}`...)
	}
	body = append(body, "]}"...)
	serveJSON(ctx, fasthttp.StatusOK, body)
}

// serveStatistic answers /api/v1/statistic/by-date after HMAC authentication over the query
// data (FACTS 8.2) with an empty statistic.
func (n *Node) serveStatistic(ctx *fasthttp.RequestCtx) {
	if _, _, ok := n.authenticate(ctx, endpointStatistic); !ok {
		return
	}
	serveJSON(ctx, fasthttp.StatusOK, jsonStatistic)
}

// serveStoreMetadata answers /api/v1/verification/store-metadata after HMAC authentication
// (FACTS 2.2); the metadata is not kept.
func (n *Node) serveStoreMetadata(ctx *fasthttp.RequestCtx) {
	if _, _, ok := n.authenticate(ctx, "/api/v1/verification/store-metadata"); !ok {
		return
	}
	serveJSON(ctx, fasthttp.StatusOK, jsonStored)
}

var jsonStatistic = []byte(`{"result":true,"data":{"numberOfValidSubmissions":0,"numberOfSpamSubmissions":0,"numbersByDate":[]}}`)
