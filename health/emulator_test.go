package health

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
)

// TestProbeEmulatedMosparo probes the project's mosparo emulator (which
// follows FACTS 1 independently of this package) in every health state and
// checks the verdict of the whole path: HTTPClient, then judge.
func TestProbeEmulatedMosparo(t *testing.T) {
	node, err := mosparoemu.Start(mosparoemu.Options{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	refusing, err := mosparoemu.Start(mosparoemu.Options{Name: "n2", HealthAllowList: "10.9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	defer refusing.Close()

	tests := []struct {
		name      string
		node      *mosparoemu.Node
		health    mosparoemu.Health
		trust     bool
		want      State
		reasonHas string
	}{
		{"connected", node, mosparoemu.Connected, false, Up, "connected"},
		{"database failed", node, mosparoemu.DBFailed, false, Down, "database connection failed"},
		{"not configured", node, mosparoemu.NotConfigured, false, Setup, "not installed"},
		{"update not finished", node, mosparoemu.UpdateNotFinished, false, Draining, "update not finished"},
		{"bypassed", node, mosparoemu.Bypassed, false, Down, "MOSPARO_BYPASS_HEALTH_CHECK"},
		{"bypassed, trusted", node, mosparoemu.Bypassed, true, Up, "trust_bypassed"},
		{"broken", node, mosparoemu.Broken, false, Down, "HTTP 500"},
		{"LB not on the allow list", refusing, mosparoemu.Connected, false, Down, "MOSPARO_HEALTH_ALLOW_LIST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.node.SetHealth(tt.health)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			status, body, err := HTTPClient{}.Get(ctx, tt.node.Addr(), "", "/api/v1/health/check")
			if err != nil {
				t.Fatal(err)
			}
			got, reason := judge(status, body, tt.trust)
			if got != tt.want || !strings.Contains(reason, tt.reasonHas) {
				t.Errorf("%d %s: verdict %v %q, want %v containing %q", status, body, got, reason, tt.want, tt.reasonHas)
			}
		})
	}
}
