package mosparoemu

import (
	"encoding/json"
	"github.com/mosparo-lb/mosparo-lb/internal/clocktest"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFrontendToVerifyAcrossNodes runs the browser flow on three nodes sharing one database,
// as a cluster behind a non-sticky balancer would (FACTS 2.1: state is in the DB).
func TestFrontendToVerifyAcrossNodes(t *testing.T) {
	db := NewDatabase()
	a := startNode(t, Options{Name: "a", Database: db})
	b := startNode(t, Options{Name: "b", Database: db})
	c := startNode(t, Options{Name: "c", Database: db})

	r := postForm(t, a.URL()+"/api/v1/frontend/request-submit-token",
		"publicKey="+DemoPublicKey+"&pageTitle=Contact&pageUrl=https%3A%2F%2Fexample.com%2Fcontact",
		"Origin: https://example.com")
	if r.status != 200 {
		t.Fatalf("request-submit-token = %d %s", r.status, r.body)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://example.com" {
		t.Errorf("ACAO = %q, want the origin echoed", got)
	}
	if got := r.header.Get("Access-Control-Allow-Methods"); got != "POST" {
		t.Errorf("ACAM = %q, want POST", got)
	}
	if got := r.header.Get("X-Mosparo-Node"); got != "a" {
		t.Errorf("X-Mosparo-Node = %q, want a", got)
	}
	var tok struct {
		SubmitToken string `json:"submitToken"`
	}
	if err := json.Unmarshal([]byte(r.body), &tok); err != nil || len(tok.SubmitToken) != 64 {
		t.Fatalf("submit token response %s: %v", r.body, err)
	}

	formData := `{"fields":[{"name":"email","value":"a/b@example.com","fieldPath":"input[email].email"},{"name":"name","value":"John","fieldPath":"input[text].name"}],"ignoredFields":[]}`
	form := url.Values{"publicKey": {DemoPublicKey}, "submitToken": {tok.SubmitToken}, "formData": {formData}}
	if r := postForm(t, b.URL()+"/api/v1/frontend/store-form-data", form.Encode()); r.status != 200 || r.body != `{"result":true}` {
		t.Errorf("store-form-data = %d %s", r.status, r.body)
	}
	r = postForm(t, b.URL()+"/api/v1/frontend/check-form-data", form.Encode())
	var chk struct {
		Valid           bool   `json:"valid"`
		ValidationToken string `json:"validationToken"`
	}
	if err := json.Unmarshal([]byte(r.body), &chk); err != nil || !chk.Valid || chk.ValidationToken == "" {
		t.Fatalf("check-form-data = %d %s", r.status, r.body)
	}

	fields := map[string]string{"email": "a/b@example.com", "name": "John"}
	vsig := HMACHex(DemoPrivateKey, chk.ValidationToken)
	fsig := clientFormSignature(DemoPrivateKey, fields)
	body := verifyBody(tok.SubmitToken, vsig, fsig, fields)
	data, _ := phpJSONDecode([]byte(body))
	reqSig := Sign(DemoPrivateKey, endpointVerify, phpToJSON(nil, &data))
	r = do(t, testClient(), http.MethodPost, c.URL()+endpointVerify, body,
		"Content-Type: application/json", "Authorization: "+AuthorizationHeader(DemoPublicKey, reqSig))
	var vr verifyResponse
	if err := json.Unmarshal([]byte(r.body), &vr); err != nil {
		t.Fatalf("verify body %s: %v", r.body, err)
	}
	if !vr.Valid || vr.VerificationSignature == nil || *vr.VerificationSignature != HMACHex(DemoPrivateKey, vsig+fsig) {
		t.Errorf("verify = %s, want valid with the expected verificationSignature", r.body)
	}

	// A tampered field is reported invalid.
	fields["name"] = "Mallory"
	body = verifyBody(tok.SubmitToken, vsig, fsig, fields)
	data, _ = phpJSONDecode([]byte(body))
	reqSig = Sign(DemoPrivateKey, endpointVerify, phpToJSON(nil, &data))
	r = do(t, testClient(), http.MethodPost, c.URL()+endpointVerify, body,
		"Content-Type: application/json", "Authorization: "+AuthorizationHeader(DemoPublicKey, reqSig))
	vr = verifyResponse{}
	_ = json.Unmarshal([]byte(r.body), &vr)
	if vr.Valid || vr.VerifiedFields["name"] != "invalid" || vr.VerifiedFields["email"] != "valid" {
		t.Errorf("tampered verify = %s, want valid false, name invalid, email valid", r.body)
	}

	for _, tc := range []struct {
		node  *Node
		route string
		want  int64
	}{{a, "request-submit-token", 1}, {b, "store-form-data", 1}, {b, "check-form-data", 1}, {c, "verify", 2}} {
		if got := tc.node.Count(tc.route); got != tc.want {
			t.Errorf("%s.Count(%s) = %d, want %d", tc.node.Name(), tc.route, got, tc.want)
		}
	}
	if got := b.Requests("POST", "/api/v1/frontend/check-form-data"); got != 1 {
		t.Errorf("Requests(POST check-form-data) = %d, want 1", got)
	}
}

func TestFrontendErrors(t *testing.T) {
	n := startNode(t, Options{Projects: []Project{{UUID: DemoUUID, PublicKey: DemoPublicKey, PrivateKey: DemoPrivateKey, Hosts: []string{"example.com", "*.example.org"}}}})
	u := n.URL() + "/api/v1/frontend/request-submit-token"
	tests := []struct {
		name, method, body, origin string
		status                     int
		wantBody, wantACAO         string
	}{
		{"missing key", "POST", "pageTitle=x", "", 400, `{"error":true,"errorMessage":"No public key sent."}`, ""},
		{"preflight-like OPTIONS", "OPTIONS", "", "https://example.com", 400, `{"error":true,"errorMessage":"No public key sent."}`, ""},
		{"unknown key", "POST", "publicKey=nope&pageTitle=x", "https://example.com", 403, `{"error":true,"errorMessage":"No project available for the sent public key."}`, ""},
		{"listed host", "POST", "publicKey=" + DemoPublicKey + "&pageTitle=x&pageUrl=y", "https://example.com", 200, "", "https://example.com"},
		{"wildcard host", "POST", "publicKey=" + DemoPublicKey + "&pageTitle=x&pageUrl=y", "http://www.example.org", 200, "", "http://www.example.org"},
		{"other origin still processed", "POST", "publicKey=" + DemoPublicKey + "&pageTitle=x&pageUrl=y", "https://evil.test", 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdrs := []string{"Content-Type: application/x-www-form-urlencoded"}
			if tt.origin != "" {
				hdrs = append(hdrs, "Origin: "+tt.origin)
			}
			r := do(t, testClient(), tt.method, u, tt.body, hdrs...)
			if r.status != tt.status {
				t.Errorf("status = %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.wantBody != "" && r.body != tt.wantBody {
				t.Errorf("body = %s, want %s", r.body, tt.wantBody)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("ACAO = %q, want %q", got, tt.wantACAO)
			}
			if r.header.Get("Vary") != "" {
				t.Errorf("Vary = %q, want none", r.header.Get("Vary"))
			}
		})
	}
	r := postForm(t, n.URL()+"/api/v1/frontend/check-form-data", "publicKey="+DemoPublicKey+"&submitToken=unknown&formData=%7B%7D")
	if r.status != 200 || !strings.Contains(r.body, `"error":true`) {
		t.Errorf("check-form-data with unknown token = %d %s, want 200 error", r.status, r.body)
	}
}

// TestLockoutPerClientIP: lockouts count per resolved client IP (FACTS 4), so a balancer
// that forwards X-Forwarded-For keeps clients apart and one that hides them locks everyone out.
func TestLockoutPerClientIP(t *testing.T) {
	clock := clocktest.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	n := startNode(t, Options{LockoutAfter: 2, Clock: clock})
	u := n.URL() + "/api/v1/frontend/request-submit-token"
	form := "publicKey=" + DemoPublicKey + "&pageTitle=a&pageUrl=b"
	send := func(xff string) (bool, string) {
		r := postForm(t, u, form, "X-Forwarded-For: "+xff)
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		var resp struct {
			Security    bool   `json:"security"`
			Type        string `json:"type"`
			SubmitToken string `json:"submitToken"`
		}
		if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
		return resp.Security && resp.Type == "lockout", resp.SubmitToken
	}
	_, tok := send("192.0.2.1")
	if s, _ := n.Database().Lookup(tok); s.ClientIP != "192.0.2.1" {
		t.Errorf("stored ClientIP = %q, want 192.0.2.1", s.ClientIP)
	}
	if locked, _ := send("192.0.2.1"); locked {
		t.Error("second request locked, want allowed")
	}
	if locked, _ := send("192.0.2.1"); !locked {
		t.Error("third request from one IP not locked out")
	}
	if locked, _ := send("192.0.2.2"); locked {
		t.Error("another client IP locked out")
	}
	clock.Advance(5 * time.Minute)
	if locked, _ := send("192.0.2.1"); locked {
		t.Error("still locked after the lockout duration")
	}
}
