// Package chromiumtest starts a headless Chromium through chromedp for the
// tests that need a real browser (the status page, compression, h2), so
// each does not carry its own launcher. The binary is $CHROMIUM, else
// /usr/bin/chromium; a missing one fails the test on CI and skips it, loudly,
// elsewhere. It must not be imported by non-test code.
package chromiumtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// actionTimeout bounds one step in the tab; generous, as the whole suite
// may be loading both cores.
const actionTimeout = 30 * time.Second

// Browser is one headless Chromium with a fresh profile and its first tab.
// JavaScript dialogs are accepted at once (a pending confirm() would block
// the tab) and reported on Dialogs; uncaught exceptions and console errors
// (a CSP violation is one) are collected for Problems. It is stopped, and
// every goroutine it started has returned, when the test ends.
type Browser struct {
	ctx     context.Context
	dialogs chan string

	mu   sync.Mutex
	errs []string
}

// Start launches Chromium for t. opts are added to the defaults (headless,
// no sandbox, no GPU, a 1280x900 window, no QUIC, no component updates).
func Start(t *testing.T, opts ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		msg := "Chromium not found at " + bin + " (make deps installs it; or set CHROMIUM): " + t.Name() + " did NOT run"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// A Chromium that exits before it serves DevTools is started again: on a
	// loaded machine that happened twice in about ninety launches, with
	// no message of its own, and the test is not about Chromium's start.
	var (
		ctx  context.Context
		stop func()
	)
	for attempt := 1; ; attempt++ {
		var err error
		ctx, stop, err = launch(t, bin, opts)
		if err == nil {
			break
		}
		stop()
		if attempt == 3 {
			t.Fatalf("start chromium (%d attempts): %v", attempt, err)
		}
		t.Logf("start chromium, attempt %d: %v", attempt, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	b := &Browser{ctx: ctx, dialogs: make(chan string, 4)}
	console := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				b.mu.Unlock()
			}
		}
	})
	wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			select {
			case b.dialogs <- ev.Message:
			default:
			}
			// The click that opened it waits for this answer.
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	return b
}

// launch starts one Chromium with a fresh profile and opens its first tab;
// stop ends both, also when err is not nil.
func launch(t *testing.T, bin string, opts []chromedp.ExecAllocatorOption) (ctx context.Context, stop func(), err error) {
	all := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("hide-scrollbars", true), chromedp.Flag("disable-component-update", true))
	all = append(all, opts...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), all...)
	ctx, cancel := chromedp.NewContext(actx)
	stop = func() {
		cancel()
		cancelAlloc()
	}
	// The first action starts the browser and binds it to ctx, so it gets
	// no timeout of its own; a Chromium that cannot start fails it.
	return ctx, stop, chromedp.Do(ctx)
}

// Context is the tab's context, for chromedp calls the methods do not
// cover (events, CDP commands). Bound each use with a timeout.
func (b *Browser) Context() context.Context { return b.ctx }

// Dialogs receives the message of each JavaScript dialog (already
// accepted); a few are buffered, later ones dropped.
func (b *Browser) Dialogs() <-chan string { return b.dialogs }

// Do runs actions in the tab, failing t with what on error.
func (b *Browser) Do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Navigate opens url in the tab, waits until it has loaded and returns the
// document's HTTP response as the browser received it.
func (b *Browser) Navigate(t *testing.T, url string) *network.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(url))
	if err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
	return resp
}

// Viewport sets the size of the tab; mobile emulates a phone.
func (b *Browser) Viewport(t *testing.T, w, h int64, scale float64, mobile bool) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(scale)}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	b.Do(t, "set the viewport", chromedp.EmulateViewport(w, h, opts...))
}

// EvalString runs a JavaScript expression that yields a string.
func (b *Browser) EvalString(t *testing.T, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// EvalAwait runs an expression yielding a promise and returns its JSON value.
func (b *Browser) EvalAwait(t *testing.T, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return string(v)
}

// WaitJS waits until a boolean expression holds (20 s at most), failing t
// with the page's text if it never does.
func (b *Browser) WaitJS(t *testing.T, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 25*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void]("(() => { try { return !!("+expr+"); } catch (e) { return false; } })()",
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string]("document.body.innerText"))
		t.Fatalf("page never satisfied %s: %v; body:\n%s", expr, err, body)
	}
}

// Click presses and releases the left mouse button over the element, as a
// user would: the event goes through hit testing, so a hidden or covered
// button is not clicked. A confirm() it opens is accepted.
func (b *Browser) Click(t *testing.T, selector string) {
	t.Helper()
	b.Do(t, "click "+selector, chromedp.ScrollIntoView(chromedp.CSS(selector)), chromedp.Click(chromedp.CSS(selector)))
}

// InsertText types text into the focused element.
func (b *Browser) InsertText(t *testing.T, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text}); err != nil {
		t.Fatalf("insert text: %v", err)
	}
}

// Screenshot writes a PNG of the tab to the test's artifact directory
// (kept with go test -artifacts, e.g. -artifacts -outputdir out/).
func (b *Browser) Screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes, %v)", len(png), err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// Problems are the uncaught exceptions and console errors so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}
