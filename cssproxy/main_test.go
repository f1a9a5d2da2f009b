package cssproxy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
)

func TestMain(m *testing.M) {
	// fasthttp keeps one process-wide goroutine refreshing its Date header.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

// testCSS returns n bytes of deterministic single-line CSS shaped like
// mosparo's prepared file (FACTS 5.2): one .mosparo__<uuid> rule after
// another with varying values, so compression has real work to do.
func testCSS(id string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, ".mosparo__%s .mosparo__row-%d{color:#%06x;padding:%dpx %dpx;border-radius:%dpx}",
			id, i, (i*2654435761)&0xffffff, i%17, i%13, i%7)
	}
	return b.Bytes()[:n]
}

// testHash returns a 64-hex design hash that differs per seed.
func testHash(seed int) string {
	return fmt.Sprintf("%064x", uint64(seed)*0x9e3779b97f4a7c15)
}

// writeDesign runs testdata/write_design.php: mosparo's CacheFactory +
// DesignHelper write path through Debian's php-symfony-cache.
func writeDesign(t *testing.T, adapter, dsn, marshaller, id, hash string, css []byte, phpFlags ...string) {
	t.Helper()
	runWriter(t, phpFlags, adapter, dsn, marshaller, id, hash, css)
}

// clearAndWriteDesign is writeDesign after $cache->clear().
func clearAndWriteDesign(t *testing.T, adapter, dsn, marshaller, id, hash string, css []byte) {
	t.Helper()
	runWriter(t, nil, adapter, dsn, marshaller, id, hash, css, "clear")
}

func runWriter(t *testing.T, phpFlags []string, adapter, dsn, marshaller, id, hash string, css []byte, tail ...string) {
	t.Helper()
	cachetest.Need(t, "php")
	f := filepath.Join(t.TempDir(), "design.css")
	if err := os.WriteFile(f, css, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(append([]string{}, phpFlags...), "testdata/write_design.php", adapter, dsn, marshaller, id, hash, f)
	args = append(args, tail...)
	out, err := exec.CommandContext(ctx, "php", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("php write_design.php %s %s: %v\n%s", adapter, marshaller, err, out)
	}
}

// testConfig is a css_cache section with the loader's defaults applied.
// Unless extra sets one, the lookup timeout is raised from 25ms to 500ms:
// tests that are not about timeouts must not flake on a loaded CI machine.
// The coherence check is off unless extra sets its interval.
func testConfig(t testing.TB, backend, url string, extra string) configs.CSSCache {
	t.Helper()
	if !strings.Contains(extra, "timeout:") {
		extra += "  timeout: 500ms\n"
	}
	// The coherence check leaves one unhashed request per project to a
	// node; tests that are not about it answer every one at the edge.
	if !strings.Contains(extra, "coherence_interval:") {
		extra += "  coherence_interval: 0s\n"
	}
	y := fmt.Sprintf("css_cache:\n  backend: %s\n  url: %s\n%s", backend, url, extra)
	c, err := configs.Parse("test.yaml", []byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return c.CSSCache
}

// startProxy builds a proxy and runs it until the test ends.
func startProxy(t *testing.T, cfg configs.CSSCache, opts Options) *Proxy {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return p
}

// waitConnected polls until a Redis proxy has its client (Run dials in the
// background).
func waitConnected(t *testing.T, p *Proxy) {
	t.Helper()
	rb, ok := p.backend.(*redisBackend)
	if !ok {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for rb.client.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("redis client not connected after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// request is one call of Serve on a fresh RequestCtx.
type request struct {
	method, path string
	header       map[string]string
	scheme, host string
	prefix       string
	stale        bool // call ServeStale instead
}

// serve calls Serve the way the balancer does and returns whether it
// answered, with the response copied out.
func serve(p *Proxy, r request) (bool, *fasthttp.Response) {
	var ctx fasthttp.RequestCtx
	if r.method == "" {
		r.method = fasthttp.MethodGet
	}
	ctx.Request.Header.SetMethod(r.method)
	ctx.Request.SetRequestURI(r.path)
	for k, v := range r.header {
		ctx.Request.Header.Set(k, v)
	}
	if r.scheme == "" {
		r.scheme = "https"
	}
	if r.host == "" {
		r.host = "mosparo.example"
	}
	serve := p.Serve
	if r.stale {
		serve = p.ServeStale
	}
	ok := serve(&ctx, []byte(r.scheme), []byte(r.host), []byte(r.prefix))
	resp := &fasthttp.Response{}
	ctx.Response.CopyTo(resp)
	return ok, resp
}

// outageSlow is half an outage: the window in which a request that
// began must not run until the cache is back.
const outageSlow = time.Second

// waitedFor reports whether a request that ran from start to end waited
// for an outage from down to up: it began in the outage's first half and
// ended only once the cache was back.
func waitedFor(start, end, down, up time.Time) bool {
	return !start.Before(down) && start.Before(down.Add(up.Sub(down)/2)) && !end.Before(up)
}

// hangGuard bounds one request where no outage ends to order it against:
// far above any configured timeout, it only tells a hang.
const hangGuard = 10 * time.Second

// outageLoad runs requests from 4 goroutines, takes the cache down for
// outage (down/up: kill and restart, or freeze and thaw), and checks that
// no request hung: each either got its answer or was declined (the
// balancer then asks a node). Hanging is told by the order of events, not
// by a duration (a starved scheduler on a shared CI machine once made one
// answer take 1.04 s): a request that began in the first half of the outage
// and was still running when the cache came back waited for the cache.
// Each goroutine pauses briefly between requests so the test measures the
// proxy, not four busy loops on two cores.
func outageLoad(t *testing.T, p *Proxy, hashes []string, idFmt string, outage time.Duration, down, up func()) {
	t.Helper()
	var (
		stop     atomic.Bool
		slow     atomic.Int64
		answered atomic.Int64
		declined atomic.Int64
		worst    atomic.Int64
		wg       sync.WaitGroup
		// When the outage began and ended, unix ns; 0: not yet.
		downAt, upAt atomic.Int64
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				n := i % len(hashes)
				path := fmt.Sprintf("/resources/"+idFmt+"/%s.css", n, hashes[n])
				start := time.Now()
				ok, _ := serve(p, request{path: path})
				end := time.Now()
				d := end.Sub(start)
				if down, up := downAt.Load(), upAt.Load(); down != 0 && up != 0 && waitedFor(start, end, time.Unix(0, down), time.Unix(0, up)) {
					slow.Add(1)
				}
				for {
					old := worst.Load()
					if int64(d) <= old || worst.CompareAndSwap(old, int64(d)) {
						break
					}
				}
				if ok {
					answered.Add(1)
				} else {
					declined.Add(1)
				}
				time.Sleep(50 * time.Microsecond)
			}
		}()
	}
	waitLong(t, "the load to be answered before the outage", func() bool { return answered.Load() >= 20 })
	down()
	downAt.Store(time.Now().UnixNano())
	time.Sleep(outage)
	during := declined.Load()
	upAt.Store(time.Now().UnixNano())
	up()
	// The load runs on briefly, so requests begun in the outage meet the
	// cache's return; this pause is part of the load, not a wait for it.
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("answered %d, declined %d (fell through to a node), worst %s, stats %+v",
		answered.Load(), declined.Load(), time.Duration(worst.Load()), p.Stats())
	if slow.Load() > 0 {
		t.Errorf("%d requests begun early in the outage ran until the cache was back", slow.Load())
	}
	if during == 0 && p.Stats().Errors == 0 {
		t.Error("the outage was not noticed at all")
	}
	if answered.Load() == 0 {
		t.Error("nothing was answered at the edge")
	}
}
