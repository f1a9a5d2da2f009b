package balancer

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/mosparo-lb/mosparo-lb/internal/mosparoemu"
	"go.uber.org/zap"
)

// Headless Chromium loads the widget's resources through the LB over h2,
// from emulated mosparo nodes as the demo runs them: the DevTools protocol
// reports protocol "h2" for each (Network.responseReceived).
func TestHTTP2Chromium(t *testing.T) {
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		msg := "Chromium not found at " + bin + " (make deps installs it; or set CHROMIUM): the h2 browser test did NOT run"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
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

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		cancelAlloc()
		wg.Wait()
	}()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	proto := map[string]string{} // path -> protocol of its 200 answer
	events := chromedp.Events(ctx, network.ResponseReceived)
	wg.Go(func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			if r := ev.Response; r != nil && r.Status == 200 {
				mu.Lock()
				proto[strings.TrimPrefix(r.URL, "https://"+addr)] = r.Protocol
				mu.Unlock()
			}
		}
	})
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
