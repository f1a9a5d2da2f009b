package balancer

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		path string
		want Class
	}{
		{"/api/v1/frontend/request-submit-token", Frontend},
		{"/api/v1/frontend/check-form-data", Frontend},
		{"/api/v1/frontend/store-form-data", Frontend},
		{"/api/v1/verification/verify", API},
		{"/api/v1/verification/store-metadata", API},
		{"/api/v1/statistic/by-date", API},
		{"/api/v1/rule-package/12/hash-index", API},
		{"/api/v1/rule-package/import", API},
		{"/api/v2/unknown", API},
		{"/api/v1/health/check", Health},
		{"/api/v1/health/check/", Health},
		{"/api/v1/health/checkx", API},
		{"/resources/0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a.css", Resources},
		{"/resources/0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a/abc.css", Resources},
		{"/resources/logo.svg", Resources},
		{"/build/mosparo-frontend.js", Static},
		{"/bundles/x.css", Static},
		{"/favicon.ico", Static},
		{"/robots.txt", Static},
		{"/update-log/1.5.4", Static},
		{"/cron-jobs/execute", Cron},
		{"/cron-jobs/execute/", Cron},
		{"/cron-jobs/executed", Admin},
		{"/setup/", Setup},
		{"/setup", Setup},
		{"/setup/database", Setup},
		{"/upgrade/x", Setup},
		{"/", Admin},
		{"/login", Admin},
		{"/project/1/settings", Admin},
		{"/administration/update/finalize", Admin},
		{"", Admin},
		{"api/v1/frontend/x", Admin},
	}
	for _, tt := range tests {
		if got := Classify([]byte(tt.path)); got != tt.want {
			t.Errorf("Classify(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestParseClass(t *testing.T) {
	for c := Class(0); c < NumClasses; c++ {
		got, ok := ParseClass(c.String())
		if !ok || got != c {
			t.Errorf("ParseClass(%q) = %v, %v; want %v, true", c.String(), got, ok, c)
		}
	}
	if _, ok := ParseClass("nope"); ok {
		t.Error(`ParseClass("nope") succeeded`)
	}
}
