package mosparoemu

import (
	"net/http"
	"strings"
	"testing"
)

// TestHealthBodies checks the FACTS 1.1 table byte for byte.
func TestHealthBodies(t *testing.T) {
	n := startNode(t, Options{Name: "h1"})
	tests := []struct {
		state  Health
		status int
		body   string
	}{
		{Connected, 200, `{"service":"mosparo","healthy":true,"databaseStatus":"connected","error":null,"statusCode":200}`},
		{DBFailed, 500, `{"service":"mosparo","healthy":false,"databaseStatus":"connection-failed","error":"An exception occurred in the driver: SQLSTATE[HY000] [2002] Connection refused","statusCode":500}`},
		{NotConfigured, 200, `{"service":"mosparo","healthy":true,"databaseStatus":"test-skipped__not-configured","error":null,"statusCode":200}`},
		{UpdateNotFinished, 200, `{"service":"mosparo","healthy":true,"databaseStatus":"test-skipped__update-not-finished","error":null,"statusCode":200}`},
		{Bypassed, 200, `{"service":"mosparo","healthy":null,"databaseStatus":"bypassed","error":"","statusCode":200}`},
	}
	for _, tt := range tests {
		t.Run(tt.state.String(), func(t *testing.T) {
			n.SetHealth(tt.state)
			r := get(t, n.URL()+"/api/v1/health/check")
			if r.status != tt.status || r.body != tt.body {
				t.Errorf("health = %d %s, want %d %s", r.status, r.body, tt.status, tt.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if got := r.header.Get("X-Mosparo-Node"); got != "h1" {
				t.Errorf("X-Mosparo-Node = %q, want h1", got)
			}
			head := do(t, testClient(), http.MethodHead, n.URL()+"/api/v1/health/check", "")
			if head.status != tt.status || head.body != "" {
				t.Errorf("HEAD = %d %q, want %d without body", head.status, head.body, tt.status)
			}
		})
	}
	t.Run("broken", func(t *testing.T) {
		n.SetHealth(Broken)
		r := get(t, n.URL()+"/api/v1/health/check")
		if r.status != 500 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || strings.HasPrefix(r.body, "{") {
			t.Errorf("broken health = %d %q %.40s, want 500 HTML", r.status, r.header.Get("Content-Type"), r.body)
		}
	})
	if got := n.Count("health"); got != 11 {
		t.Errorf("Count(health) = %d, want 11", got)
	}
}

func TestHealthMethodAndAllowList(t *testing.T) {
	allowed := startNode(t, Options{})
	denied := startNode(t, Options{HealthAllowList: "10.1.2.3"})
	tests := []struct {
		name   string
		node   *Node
		method string
		accept string
		status int
		json   bool
		allow  string
	}{
		{"allowed POST is 405", allowed, "POST", "", 405, false, "GET"},
		{"allowed PUT with json accept", allowed, "PUT", "application/json", 405, true, "GET"},
		{"denied GET is 404 html", denied, "GET", "", 404, false, ""},
		{"denied POST is 404, condition before method", denied, "POST", "", 404, false, ""},
		{"denied json only for exact accept", denied, "GET", "application/json", 404, true, ""},
		{"denied accept with extras stays html", denied, "GET", "application/json, text/plain", 404, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdrs []string
			if tt.accept != "" {
				hdrs = append(hdrs, "Accept: "+tt.accept)
			}
			r := do(t, testClient(), tt.method, tt.node.URL()+"/api/v1/health/check", "", hdrs...)
			if r.status != tt.status {
				t.Errorf("status = %d, want %d", r.status, tt.status)
			}
			if isJSON := strings.HasPrefix(r.body, `{"error":true,"errorMessage":`); isJSON != tt.json {
				t.Errorf("json body = %v (%.60s), want %v", isJSON, r.body, tt.json)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestHealthAllowListParsing covers FACTS 1.2: no trimming, exact strings, CIDRs, empty list.
func TestHealthAllowListParsing(t *testing.T) {
	tests := []struct {
		name, list string
		all        bool
		status     int
	}{
		{"default", "", false, 200},
		{"exact", "127.0.0.1", false, 200},
		{"space breaks entry", " 127.0.0.1", false, 404},
		{"space before second entry", "::1, 127.0.0.1", false, 404},
		{"newline separated", "::1\n127.0.0.1", false, 200},
		{"cidr", "127.0.0.0/8", false, 200},
		{"cidr other family", "::/0", false, 404},
		{"other ip", "127.0.0.2", false, 404},
		{"empty list allows all", "", true, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t, Options{HealthAllowList: tt.list, AllowAllHealth: tt.all, TrustedProxies: []string{}})
			if r := get(t, n.URL()+"/api/v1/health/check"); r.status != tt.status {
				t.Errorf("health with list %q = %d, want %d", tt.list, r.status, tt.status)
			}
		})
	}
}

// TestHealthXFFSpoofing is FACTS 4 / 9.2: with the Docker TRUSTED_PROXIES
// ("127.0.0.1,REMOTE_ADDR") any direct client passes the allow list by sending
// X-Forwarded-For: 127.0.0.1; behind a proxy that appends the peer, the real client counts.
func TestHealthXFFSpoofing(t *testing.T) {
	docker := startNode(t, Options{Name: "docker"})
	strict := startNode(t, Options{Name: "strict", TrustedProxies: []string{"127.0.0.1"}})
	from2 := testClientFrom("127.0.0.2")
	tests := []struct {
		name   string
		node   *Node
		client string
		xff    string
		status int
	}{
		{"direct client not listed", docker, "127.0.0.2", "", 404},
		{"direct client spoofs XFF", docker, "127.0.0.2", "127.0.0.1", 200},
		{"spoof with port", docker, "127.0.0.2", "127.0.0.1:1234", 200},
		{"proxy appending the real peer defeats the spoof", docker, "127.0.0.1", "127.0.0.1, 127.0.0.2", 404},
		{"real client right-most untrusted", docker, "127.0.0.1", "127.0.0.1, 10.9.9.9", 404},
		{"invalid entries dropped", docker, "127.0.0.2", "garbage, 127.0.0.1", 200},
		{"without REMOTE_ADDR the peer is not trusted", strict, "127.0.0.2", "127.0.0.1", 404},
		{"trusted proxy forwards allowed client", strict, "127.0.0.1", "127.0.0.1", 200},
		{"trusted proxy forwards other client", strict, "127.0.0.1", "192.0.2.1", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClient()
			if tt.client == "127.0.0.2" {
				c = from2
			}
			var hdrs []string
			if tt.xff != "" {
				hdrs = append(hdrs, "X-Forwarded-For: "+tt.xff)
			}
			if r := do(t, c, "GET", tt.node.URL()+"/api/v1/health/check", "", hdrs...); r.status != tt.status {
				t.Errorf("health from %s with XFF %q = %d, want %d", tt.client, tt.xff, r.status, tt.status)
			}
		})
	}
}

// TestHealthStatesRouting checks what goes with NotConfigured and UpdateNotFinished
// (FACTS 1.4, 9.12).
func TestHealthStatesRouting(t *testing.T) {
	n := startNode(t, Options{})
	pk := "publicKey=" + DemoPublicKey + "&pageTitle=a&pageUrl=b"
	n.SetHealth(NotConfigured)
	for _, path := range []string{"/", "/login", "/project/", "/cron-jobs/execute?key=x", "/resources/" + DemoUUID + ".css"} {
		if r := get(t, n.URL()+path); r.status != 302 || r.header.Get("Location") != "/setup/" {
			t.Errorf("not configured: GET %s = %d %q, want 302 /setup/", path, r.status, r.header.Get("Location"))
		}
	}
	if r := postForm(t, n.URL()+"/api/v1/frontend/request-submit-token", pk); r.status != 302 || r.header.Get("Location") != "/setup/" {
		t.Errorf("not configured: frontend POST = %d, want 302 /setup/", r.status)
	}
	if r := get(t, n.URL()+"/no/such/route"); r.status != 404 {
		t.Errorf("not configured: unknown route = %d, want 404", r.status)
	}
	if r := get(t, n.URL()+"/build/mosparo-frontend.js"); r.status != 200 {
		t.Errorf("not configured: static file = %d, want 200 (nginx serves it)", r.status)
	}

	n.SetHealth(UpdateNotFinished)
	const finalize = "/administration/update/finalize"
	// Every GET but the nine routes SetupSubscriber lists goes to the finalize page
	// (FACTS 11.2), CSS, logo, login and setup included.
	for _, path := range []string{"/", "/project/", "/administration/settings", endpointStatistic, "/login",
		"/setup/", "/resources/" + DemoUUID + ".css", "/resources/logo.svg", "/administration/update/"} {
		if r := get(t, n.URL()+path); r.status != 302 || r.header.Get("Location") != finalize {
			t.Errorf("update pending: GET %s = %d %q, want 302 finalize", path, r.status, r.header.Get("Location"))
		}
	}
	if r := postForm(t, n.URL()+"/api/v1/frontend/request-submit-token", pk); r.status != 200 {
		t.Errorf("update pending: frontend POST = %d, want 200", r.status)
	}
	if r := get(t, n.URL()+"/cron-jobs/execute?key="+DemoCronKey); r.status != 200 {
		t.Errorf("update pending: web cron = %d, want 200", r.status)
	}
	if r := get(t, n.URL()+"/build/mosparo-frontend.js"); r.status != 200 {
		t.Errorf("update pending: static file = %d, want 200 (nginx serves it)", r.status)
	}

	n.SetHealth(DBFailed)
	for _, path := range []string{"/login", "/resources/" + DemoUUID + ".css", "/cron-jobs/execute?key=" + DemoCronKey} {
		if r := get(t, n.URL()+path); r.status != 500 {
			t.Errorf("db failed: GET %s = %d, want 500", path, r.status)
		}
	}
	if r := postForm(t, n.URL()+"/api/v1/frontend/request-submit-token", pk); r.status != 500 {
		t.Errorf("db failed: frontend POST = %d, want 500", r.status)
	}
	hashed := "/resources/" + DemoUUID + "/" + CSSHash(DefaultCSS(DemoUUID)) + ".css"
	if r := get(t, n.URL()+hashed); r.status != 200 {
		t.Errorf("db failed: hashed css = %d, want 200 from the cache", r.status)
	}

	n.SetHealth(Broken)
	if r := postForm(t, n.URL()+"/api/v1/frontend/request-submit-token", pk); r.status != 500 {
		t.Errorf("broken: frontend POST = %d, want 500", r.status)
	}
}
