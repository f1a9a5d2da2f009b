package mosparoemu

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"testing"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// verifyBody builds the JSON body the PHP client sends: submitToken, validationSignature,
// formSignature, formData (ksorted, values sha256-hex).
func verifyBody(submitToken, validationSig, formSig string, fields map[string]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(`{"submitToken":"` + submitToken + `","validationSignature":"` + validationSig +
		`","formSignature":"` + formSig + `","formData":{`)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + k + `":"` + sha256Hex(fields[k]) + `"`)
	}
	b.WriteString("}}")
	return b.String()
}

// clientFormSignature computes what the official clients compute for formData.
func clientFormSignature(privateKey string, fields map[string]string) string {
	arr := phpArr()
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		arr.set(k, phpStr(sha256Hex(fields[k])))
	}
	return HMACHex(privateKey, string(phpToJSON(nil, &arr)))
}

type verifyResponse struct {
	Valid                 bool              `json:"valid"`
	VerificationSignature *string           `json:"verificationSignature"`
	VerifiedFields        map[string]string `json:"verifiedFields"`
	Error                 bool              `json:"error"`
	ErrorMessage          string            `json:"errorMessage"`
}

func TestVerifyFACTS81Vector(t *testing.T) {
	n := startNode(t, Options{Name: "n1"})
	fields := map[string]string{"email": "a/b@example.com", "name": "John"}
	n.Database().Add(Submission{
		PublicKey: DemoPublicKey, SubmitToken: "SUBMITTOKEN_example",
		ValidationToken: "VALIDATIONTOKEN_example", Fields: fields,
	})
	body := verifyBody("SUBMITTOKEN_example", vecValidationSig, vecFormSig, fields)
	r := do(t, testClient(), http.MethodPost, n.URL()+endpointVerify, body,
		"Content-Type: application/json", "Accept: application/json",
		"Authorization: "+AuthorizationHeader(DemoPublicKey, vecRequestSig))
	if r.status != 200 {
		t.Fatalf("verify status = %d, want 200 (%s)", r.status, r.body)
	}
	want := `{"valid":true,"verificationSignature":"` + vecVerificationSig +
		`","verifiedFields":{"email":"valid","name":"valid"},"issues":[]}`
	if r.body != want {
		t.Errorf("verify body = %s, want %s", r.body, want)
	}
	if got := n.Count("verify"); got != 1 {
		t.Errorf("Count(verify) = %d, want 1", got)
	}
	if s, _ := n.Database().Lookup("SUBMITTOKEN_example"); s.Verified != 1 {
		t.Errorf("Verified = %d, want 1", s.Verified)
	}
}

func TestVerifyAuthFailures(t *testing.T) {
	n := startNode(t, Options{})
	body := verifyBody("SUBMITTOKEN_example", vecValidationSig, vecFormSig, map[string]string{"name": "John"})
	tests := []struct {
		name, auth string
		status     int
		body       string
	}{
		{"missing header", "", 400, `{"error":true,"errorMessage":"No authorization header found."}`},
		{"not two parts", "Basic " + b64("nocolon"), 200, `{"error":true,"errorMessage":"Authorization header invalid.","0":401}`},
		{"three parts", b64("a:b:c"), 200, `{"error":true,"errorMessage":"Authorization header invalid.","0":401}`},
		{"unknown key", AuthorizationHeader("nope", "x"), 403, `{"error":true,"errorMessage":"No project available for the sent public key."}`},
		{"hmac mismatch", AuthorizationHeader(DemoPublicKey, strings.Repeat("0", 64)), 400, `{"error":true,"errorMessage":"Request invalid."}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdrs := []string{"Content-Type: application/json"}
			if tt.auth != "" {
				hdrs = append(hdrs, "Authorization: "+tt.auth)
			}
			r := do(t, testClient(), http.MethodPost, n.URL()+endpointVerify, body, hdrs...)
			if r.status != tt.status || r.body != tt.body {
				t.Errorf("verify = %d %s, want %d %s", r.status, r.body, tt.status, tt.body)
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestStatisticSignedQuery(t *testing.T) {
	n := startNode(t, Options{})
	tests := []struct {
		name, query, sig string
		status           int
	}{
		{"no params", "", vecStatisticEmptySig, 200},
		{"range cast to int", "?range=86400", vecStatisticRangeSig, 200},
		{"signature over other data", "?range=3600", vecStatisticRangeSig, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, n.URL()+endpointStatistic+tt.query, "Authorization: "+AuthorizationHeader(DemoPublicKey, tt.sig))
			if r.status != tt.status {
				t.Errorf("statistic%s = %d %s, want %d", tt.query, r.status, r.body, tt.status)
			}
		})
	}
	meta := `{"submitToken":"x","metadata":[]}`
	data, _ := phpJSONDecode([]byte(meta))
	sig := Sign(DemoPrivateKey, "/api/v1/verification/store-metadata", phpToJSON(nil, &data))
	r := do(t, testClient(), "POST", n.URL()+"/api/v1/verification/store-metadata", meta,
		"Content-Type: application/json", "Authorization: "+AuthorizationHeader(DemoPublicKey, sig))
	if r.status != 200 || n.Count("store-metadata") != 1 {
		t.Errorf("store-metadata = %d %s, count %d", r.status, r.body, n.Count("store-metadata"))
	}
	// Without the "Basic " prefix the server still accepts the header (FACTS 8.1).
	r = get(t, n.URL()+endpointStatistic, "Authorization: "+strings.TrimPrefix(vecStatisticEmptyHdr, "Basic "))
	if r.status != 200 {
		t.Errorf("statistic without Basic prefix = %d, want 200", r.status)
	}
}

func TestVerifyRequestHelper(t *testing.T) {
	fields := map[string]string{"email": "a/b@example.com", "name": "John"}
	body, auth, vsig := VerifyRequest(DemoPublicKey, DemoPrivateKey, "SUBMITTOKEN_example", "VALIDATIONTOKEN_example", fields)
	if want := verifyBody("SUBMITTOKEN_example", vecValidationSig, vecFormSig, fields); string(body) != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	if want := AuthorizationHeader(DemoPublicKey, vecRequestSig); auth != want {
		t.Errorf("authorization = %s, want %s", auth, want)
	}
	if vsig != vecVerificationSig {
		t.Errorf("verificationSignature = %s, want %s", vsig, vecVerificationSig)
	}
	if sig, err := SignJSON(DemoPrivateKey, endpointVerify, body); err != nil || sig != vecRequestSig {
		t.Errorf("SignJSON = %s, %v; want %s", sig, err, vecRequestSig)
	}
	if _, err := SignJSON(DemoPrivateKey, endpointVerify, []byte("nope")); err == nil {
		t.Error("SignJSON(invalid json) succeeded")
	}
}
