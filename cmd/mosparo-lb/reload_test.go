package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
)

// TestVRRPReloadKeepsTheVIP: a reload that changes the master's VRRP
// instance (priority, advert interval, tracking) and its listeners hands
// the instance over without the VIP ever leaving the master or the peer
// taking it, and the new settings are in force afterwards (issue 13).
func TestVRRPReloadKeepsTheVIP(t *testing.T) {
	h := newHALab(t)
	h.startLB("lb1")
	h.startLB("lb2")
	h.master("lb1", 5*time.Second)
	cfg := strings.Replace(h.config["lb1"], "priority: 150, advert_interval: 200ms", "priority: 160, advert_interval: 300ms, track_pool: {mode: fault}", 1)
	cfg = strings.Replace(cfg, fmt.Sprintf(`listen: [{address: "%s:80"}]`, haVIP), fmt.Sprintf(`listen: [{address: "%s:80"}, {address: "%s:8080"}]`, haVIP, haVIP), 1)
	if cfg == h.config["lb1"] {
		t.Fatal("the test's config edit matched nothing")
	}
	if err := os.WriteFile(filepath.Join(h.dir, "lb1.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	transitionsBefore := h.status("lb1")["vrrp"].([]any)[0].(map[string]any)["transitions"].(float64)
	h.lbs["lb1"].Signal(syscall.SIGHUP)
	netnstest.Never(t, 3*time.Second, "the VIP left lb1 or lb2 took it during the reload", func() bool {
		return !h.holdsVIP("lb1") || h.holdsVIP("lb2")
	})
	st := h.status("lb1")
	if rl, _ := st["reloads"].(map[string]any); rl["last_result"] != "applied" {
		t.Fatalf("lb1 reloads = %v, want applied", st["reloads"])
	}
	vrrp, _ := st["vrrp"].([]any)
	if len(vrrp) != 1 || vrrp[0].(map[string]any)["priority"] != float64(160) || vrrp[0].(map[string]any)["state"] != "MASTER" {
		t.Errorf("lb1 vrrp after the reload = %v, want MASTER at priority 160", st["vrrp"])
	} else if got := vrrp[0].(map[string]any)["transitions"].(float64); got < transitionsBefore {
		t.Errorf("lb1 transitions went from %v to %v over the handover; a counter must not go back", transitionsBefore, got)
	}
	out, err := h.lab.Hosts["client"].Run("curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}", "http://"+haVIP+":8080/robots.txt")
	if err != nil || out != "200" {
		t.Errorf("the listener added by the reload = %q, %v; want 200", out, err)
	}
}
