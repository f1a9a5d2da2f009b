package balancer

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/mosparo-lb/mosparo-lb/internal/chromiumtest"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"go.uber.org/zap"
)

// Headless Chromium loads the widget's resources through the LB over h2,
// from emulated mosparo nodes as the demo runs them: the DevTools protocol
// reports protocol "h2" for each (Network.responseReceived).
func TestHTTP2Chromium(t *testing.T) {
	b := chromiumtest.Start(t, chromedp.Flag("ignore-certificate-errors", true))
	db := mosparoemu.NewDatabase()
	var nodes []NodeSpec
	for _, name := range []string{"demo1", "demo2"} {
		n, err := mosparoemu.Start(mosparoemu.Options{Name: name, Database: db, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, NodeSpec{Name: name, Address: n.Addr(), Weight: 100})
	}
	_, addr := startLB(t, testConfig(t, h2YAML(t, "", "compression: {enabled: true}")), nodes)

	ctx := b.Context()
	var mu sync.Mutex
	proto := map[string]string{} // path -> protocol of its 200 answer
	// Listen's callback runs on the tab's reader and ends with the browser.
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok && e.Response != nil && e.Response.Status == 200 {
			mu.Lock()
			proto[strings.TrimPrefix(e.Response.URL, "https://"+addr)] = e.Response.Protocol
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	uuid := mosparoemu.DemoProject().UUID
	if err := chromedp.Do(tctx, chromedp.Navigate("https://"+addr+"/login")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	// What the widget loads: its script and the project's CSS (a 307 to
	// the hashed URL, followed).
	load := `Promise.all(["/build/mosparo-frontend.js", "/resources/` + uuid + `.css"].map(u => fetch(u).then(r => r.text()))).then(a => a.length)`
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[int](load, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("fetch the widget resources: %v", err)
	}
	want := []string{"/login", "/build/mosparo-frontend.js", "/resources/" + uuid + "/"}
	for range 200 {
		mu.Lock()
		n := 0
		for _, w := range want {
			for p := range proto {
				if strings.HasPrefix(p, w) {
					n++
					break
				}
			}
		}
		mu.Unlock()
		if n == len(want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("protocols seen: %v", proto)
	for _, w := range want {
		found := false
		for p, pr := range proto {
			if strings.HasPrefix(p, w) {
				found = true
				if pr != "h2" {
					t.Errorf("%s came over %q, want h2", p, pr)
				}
			}
		}
		if !found {
			t.Errorf("no 200 answer for %s seen; got %v", w, proto)
		}
	}
}
