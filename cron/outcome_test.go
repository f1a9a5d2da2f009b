package cron

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		code   int
		body   string
		want   Outcome
		ok     bool
		config bool
	}{
		{200, "200 OK", Done, true, false},
		{425, "425 Too Early", NotDue, true, false},
		{429, "429 Too Many Requests", Busy, true, false},
		{400, "400 Bad Request", KeyMissing, false, true},
		{401, "401 Unauthorized", BadKey, false, true},
		{403, "403 Forbidden", Inactive, false, true},
		{403, "<!DOCTYPE html><html><title>No access</title></html>", Denied, false, true},
		{403, `{"error":true,"errorMessage":"Access Denied."}`, Denied, false, true},
		{500, "500 Internal Server Error", ServerError, false, false},
		{503, "", ServerError, false, false},
		{302, "", Unexpected, false, false},
		{404, "not found", Unexpected, false, false},
	}
	for _, tt := range tests {
		got := classify(tt.code, []byte(tt.body))
		if got != tt.want {
			t.Errorf("classify(%d, %.20q) = %s, want %s", tt.code, tt.body, got, tt.want)
		}
		if got.OK() != tt.ok || got.ConfigError() != tt.config {
			t.Errorf("%s: OK() = %v, ConfigError() = %v, want %v, %v", got, got.OK(), got.ConfigError(), tt.ok, tt.config)
		}
	}
}

func TestOutcomeNamesAndFixes(t *testing.T) {
	fixes := map[Outcome]string{KeyMissing: "cron.key", BadKey: "Administration > Cron jobs", Inactive: "webCronJobActive", Denied: "allow list"}
	for o := OutcomeNone; o <= NoNode; o++ {
		b, err := json.Marshal(o)
		if err != nil || string(b) != `"`+o.String()+`"` {
			t.Errorf("json(%d) = %s, %v", o, b, err)
		}
		if o.Explain() == o.String() {
			t.Errorf("%s has no explanation", o)
		}
		if want, ok := fixes[o]; ok && !strings.Contains(o.Explain(), want) {
			t.Errorf("%s explanation %q does not name %q", o, o.Explain(), want)
		}
	}
	if _, err := Outcome(200).MarshalText(); err == nil {
		t.Error("invalid outcome marshalled")
	}
	if s := Event(0).String(); s != "Event(0)" {
		t.Errorf("Event(0) = %s", s)
	}
}
