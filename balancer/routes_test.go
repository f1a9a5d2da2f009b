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
		// Front-controller prefixes (FACTS 11.1), in any mix and number.
		{"/index.php/cron-jobs/execute", Cron},
		{"/index.php/api/v1/health/check", Health},
		{"/public/api/v1/health/check/", Health},
		{"/public/index.php/cron-jobs/execute", Cron},
		{"/index.php/public/index.php/public/api/v1/frontend/check-form-data", Frontend},
		{"/index.php/api/v1/verification/verify", API},
		{"/index.php/resources/0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a.css", Resources},
		{"/public/build/mosparo-frontend.js", Static},
		{"/index.php/setup/", Setup},
		{"/index.php", Admin},
		{"/public", Admin},
		{"/index.phpx/cron-jobs/execute", Admin},
		{"/publicx/cron-jobs/execute", Admin},
		{"/public.php/cron-jobs/execute", Admin},
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

func TestCanonical(t *testing.T) {
	tests := []struct {
		path, want string
		ok         bool
	}{
		{"/login", "/login", true},
		{"/index.php", "/", true},
		{"/index.php/", "/", true},
		{"/public/index.php", "/", true},
		{"/public/index.php/login", "/login", true},
		{"/index.php/index.php/public/login", "/login", true},
		{"/", "/", true},
		{"", "/", true},
		// What Symfony would cut differently per web server is refused.
		{"/x/public/index.php/cron-jobs/execute", "/x/public/index.php/cron-jobs/execute", false},
		{"/index.php1234567/cron-jobs/execute", "/index.php1234567/cron-jobs/execute", false},
		{"/INDEX.PHP/cron-jobs/execute", "/INDEX.PHP/cron-jobs/execute", false},
		{"/project/1/Index.Php", "/project/1/Index.Php", false},
		{"/index.ph", "/index.ph", true},
	}
	for _, tt := range tests {
		got, ok := Canonical([]byte(tt.path))
		if string(got) != tt.want || ok != tt.ok {
			t.Errorf("Canonical(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func TestClassifyAllocatesNothing(t *testing.T) {
	path := []byte("/public/index.php/index.php/api/v1/health/check")
	if a := testing.AllocsPerRun(100, func() { Classify(path) }); a != 0 {
		t.Errorf("Classify: %.1f allocs, want 0", a)
	}
}
