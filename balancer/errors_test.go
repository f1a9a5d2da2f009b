package balancer

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestNoNodeAnswers503JSON(t *testing.T) {
	cfg := testConfig(t, baseYAML)
	_, addr := startLB(t, cfg, nil)
	code, body, err := fasthttp.Post(nil, "http://"+addr+"/api/v1/frontend/request-submit-token", nil)
	if err != nil || code != 503 {
		t.Fatalf("POST = %d, %v; want 503", code, err)
	}
	if want := `{"error":true,"errorMessage":"No mosparo node is available to answer this request."}`; string(body) != want {
		t.Errorf("body = %s, want %s", body, want)
	}
}
