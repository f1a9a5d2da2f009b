package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/consultest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
)

// TestBuildKeepsWhatDidNotChange: build reuses the running generation's
// parts whose sections did not change (a Consul lock keeps its leadership
// over a reload that only retunes the cron), and rebuilds those whose
// section, or whose cron mode, did: a VRRP section that makes the VRRP
// master lead the cron drops the Consul lock. build has no side effects, so
// it is called here on a running daemon and its binding aborted.
func TestBuildKeepsWhatDidNotChange(t *testing.T) {
	agent, err := consultest.New(consultest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	nodes := startNodes(t, 1)
	discovery := fmt.Sprintf("discovery: {consul: {address: %q, service: mosparo, wait: 2s}}\n", agent.Addr())
	cronSection := func(extra string) string {
		if !strings.Contains(extra, "interval") {
			extra += ", interval: 1h"
		}
		return fmt.Sprintf("cron: {enabled: true, key: %q%s}\n", mosparoemu.DemoCronKey, extra)
	}
	base := calm(testBase) + nodesYAML(nodes) + discovery
	c := startClusterBase(t, calm(testBase), nodes, discovery+cronSection(""))
	vrrp := "vrrp:\n  instances:\n    - {name: VI_1, interface: lo, virtual_router_id: 51, priority: 100, virtual_ips: [\"10.99.9.9/32\"]}\n"
	for _, tt := range []struct {
		name                       string
		yaml                       string
		keepDisc, keepLock, keepCr bool
		wantLock                   bool
	}{
		{"unchanged", base + cronSection(""), true, true, true, true},
		{"cron retuned", base + cronSection(", interval: 2h"), true, true, false, true},
		{"lock key changed", base + cronSection(", consul_lock: other/key"), true, false, false, true},
		{"discovery changed", strings.Replace(base, "wait: 2s", "wait: 3s", 1) + cronSection(""), false, false, false, true},
		{"VRRP leads the cron", base + cronSection("") + vrrp, true, false, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := configs.Parse("lb.yaml", []byte(tt.yaml), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			c.d.mu.Lock()
			defer c.d.mu.Unlock()
			prev := c.d.cur.Load()
			g, err := c.d.build(context.Background(), cfg, prev)
			if err != nil {
				t.Fatal(err)
			}
			g.binding.Abort()
			if (g.disc == prev.disc) != tt.keepDisc || (g.lock == prev.lock) != tt.keepLock || (g.cron == prev.cron) != tt.keepCr {
				t.Errorf("kept discovery %v, lock %v, cron %v; want %v, %v, %v",
					g.disc == prev.disc, g.lock == prev.lock, g.cron == prev.cron, tt.keepDisc, tt.keepLock, tt.keepCr)
			}
			if (g.lock != nil) != tt.wantLock || g.cron == nil {
				t.Errorf("lock %v, cron %v; want a lock %v and a cron", g.lock, g.cron, tt.wantLock)
			}
		})
	}
	if c.d.cur.Load().lock == nil {
		t.Error("the running generation has no Consul lock")
	}
	// A renamed instance keeps the cron's section and mode but not its
	// leader: the runner asking for the old name would never run.
	t.Run("VRRP instance renamed", func(t *testing.T) {
		build := func(yaml string, prev *generation) *generation {
			t.Helper()
			cfg, err := configs.Parse("lb.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			g, err := c.d.build(context.Background(), cfg, prev)
			if err != nil {
				t.Fatal(err)
			}
			g.binding.Abort()
			return g
		}
		c.d.mu.Lock()
		defer c.d.mu.Unlock()
		g1 := build(base+cronSection("")+vrrp, c.d.cur.Load())
		g2 := build(base+cronSection("")+strings.Replace(vrrp, "VI_1", "VI_2", 1), g1)
		if g2.cron == g1.cron {
			t.Error("the cron runner led by VI_1 was kept for VI_2")
		}
		if g3 := build(base+cronSection("")+strings.Replace(vrrp, "priority: 100", "priority: 90", 1), g1); g3.cron != g1.cron {
			t.Error("a priority change rebuilt the cron runner")
		}
	})
}
