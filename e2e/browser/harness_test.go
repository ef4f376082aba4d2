// Package browser drives the tracking UI in a real headless Chromium
// (Debian's chromium, through chromedp) against a real in-process Caddy
// serving the mlflow handler. Tests seed data through the REST API, click
// through the pages, assert what the user sees and save a screenshot of
// every page under testoutput/screenshots (or $UI_SCREENSHOT_DIR).
//
// Without a Chromium binary the tests are skipped, unless
// MLFLOW_REQUIRE_BROWSER=1 (as .ci/test.sh sets), which makes that a
// failure.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// chromiumPath is the browser binary, found once by TestMain.
var chromiumPath string

func TestMain(m *testing.M) {
	chromiumPath = findChromium()
	if chromiumPath == "" && os.Getenv("MLFLOW_REQUIRE_BROWSER") == "1" {
		fmt.Fprintln(os.Stderr, "browser tests: no chromium binary found (set CHROMIUM_PATH or install Debian's chromium) and MLFLOW_REQUIRE_BROWSER=1")
		os.Exit(1)
	}
	code := m.Run()
	stopBrowser()
	os.Exit(code)
}

// The one Chromium the whole package shares, started by the first newPage
// (so listing the tests starts none). Each page gets its own browser
// context (a fresh profile: no cookies or storage shared with other pages)
// in this browser. Launching a Chromium per page cost seconds each on a
// busy CI machine, for ~40 pages.
var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserErr    error
	cancelBrowser = func() {}
)

// sharedBrowser starts the package's Chromium once and returns a context
// bound to it; pages are children of it.
func sharedBrowser() (context.Context, error) {
	browserOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-mlflow-chromium-")
		if err != nil {
			browserErr = err
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath),
			chromedp.UserDataDir(dir),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			// Pages of several browser contexts are open at once (a
			// test with two users): none of them may be throttled as a
			// background page.
			chromedp.Flag("disable-background-timer-throttling", true),
			chromedp.Flag("disable-backgrounding-occluded-windows", true),
			chromedp.Flag("disable-renderer-backgrounding", true),
			chromedp.WindowSize(desktopWidth, desktopHeight),
		}
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelCtx := chromedp.NewContext(actx)
		cancelBrowser = func() {
			cancelCtx()
			cancelAlloc()
			os.RemoveAll(dir)
		}
		// The first action starts the browser, bound to bctx.
		if err := chromedp.Do(bctx); err != nil {
			browserErr = fmt.Errorf("starting chromium %s: %w", chromiumPath, err)
			return
		}
		browserCtx = bctx
	})
	return browserCtx, browserErr
}

// stopBrowser stops the shared Chromium, if one was started.
func stopBrowser() { cancelBrowser() }

func findChromium() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is where page screenshots go.
func screenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("UI_SCREENSHOT_DIR")
	if dir == "" {
		abs, err := filepath.Abs(filepath.Join("..", "..", "testoutput", "screenshots"))
		if err != nil {
			t.Fatal(err)
		}
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// page is one browser tab on a server, collecting JavaScript errors.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu     sync.Mutex
	errors []string
}

// viewport sizes the tests use: a laptop and a phone.
const (
	desktopWidth, desktopHeight = 1280, 900
	phoneWidth, phoneHeight     = 390, 844
)

// newPage opens one tab of the given size in a fresh browser context (own
// cookies and storage) of the package's shared headless Chromium.
// JavaScript exceptions and console errors on the page fail the test when
// it ends.
func newPage(t *testing.T, base string, width, height int) *page {
	t.Helper()
	if chromiumPath == "" {
		t.Skip("no chromium binary; set CHROMIUM_PATH or install Debian's chromium (MLFLOW_REQUIRE_BROWSER=1 makes this a failure)")
	}
	bctx, err := sharedBrowser()
	if err != nil {
		t.Fatal(err)
	}
	p := &page{t: t, base: base}
	ctx, cancelCtx := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	p.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		cancelCtx()
		t.Fatalf("opening a page in chromium %s: %v", chromiumPath, err)
	}
	t.Cleanup(func() {
		cancelCtx()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errors {
			t.Errorf("browser: %s", e)
		}
	})
	return p
}

// listen records uncaught exceptions and console.error calls. It runs in
// chromedp's event loop and must return fast.
func (p *page) listen(ev any) {
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		p.addError("exception: " + msg)
	case *runtime.EventConsoleAPICalled:
		if e.Type == "error" {
			var parts []string
			for _, a := range e.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, strings.Trim(string(a.Value), `"`))
				}
			}
			p.addError("console.error: " + strings.Join(parts, " "))
		}
	}
}

func (p *page) addError(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errors = append(p.errors, s)
}

// allowErrors forgets the JavaScript errors collected so far (for steps
// that provoke an expected failed request, which Chromium logs).
func (p *page) allowErrors() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errors = nil
}

// run runs chromedp actions with a timeout, failing the test on error.
func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\nmain: %s", what, err, trim(p.mainHTML(), 3000))
	}
}

// mainHTML returns the page's <main> for failure messages.
func (p *page) mainHTML() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	return html
}

// value runs one action that returns a value, failing the test on error.
func value[T any](p *page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("%s: %v\nmain: %s", what, err, trim(p.mainHTML(), 3000))
	}
	return v
}

// open navigates to path and waits until the page named name is rendered.
func (p *page) open(path, name string) {
	p.t.Helper()
	p.run("open "+path, chromedp.Navigate(p.base+path), waitPage(name))
}

// waitPage waits until the router has finished rendering the named page.
func waitPage(name string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`body[data-ready="true"][data-page=%q]`, name)))
}

// text returns the visible text of the first element matching sel.
func (p *page) text(sel string) string {
	p.t.Helper()
	return value(p, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// wantText fails unless the element sel shows every string of want.
// Pages render some parts asynchronously (a JSON node draws its children
// on its toggle event, a panel after its fetch), so it reads the text
// again for a few seconds before it reports what is missing.
func (p *page) wantText(sel string, want ...string) {
	p.t.Helper()
	deadline := time.Now().Add(wantTextPatience)
	for {
		got := p.text(sel)
		missing := missingText(got, want)
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, w := range missing {
				p.t.Errorf("%s does not show %q; it shows:\n%s", sel, w, trim(got, 2000))
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantTextPatience is how long wantText waits for text still being drawn.
const wantTextPatience = 5 * time.Second

// missingText returns the strings of want that got does not contain.
func missingText(got string, want []string) []string {
	var missing []string
	for _, w := range want {
		if !strings.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	return missing
}

// count returns how many elements match the CSS selector sel, now. After
// an action whose result a page draws asynchronously, use wantCount.
func (p *page) count(sel string) int {
	p.t.Helper()
	return value(p, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

// settle reads a value with read until ok accepts it or patience runs
// out, and returns the last value read and whether ok accepted it.
// A read that fails (the node is not drawn yet, a navigation replaced the
// document) counts as not yet settled; its error is returned when nothing
// was read before the deadline. It is for state a page changes after an
// action returns: a fetch-driven redraw, a debounced input, a popstate or
// a toggle event.
func settle[T any](p *page, patience time.Duration, read chromedp.Action[T], ok func(T) bool) (T, bool, error) {
	p.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, max(time.Until(deadline), time.Second))
		got, err := chromedp.Run(ctx, read)
		cancel()
		if err == nil && ok(got) {
			return got, true, nil
		}
		if time.Now().After(deadline) {
			return got, false, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantCount fails (not fatally) unless n elements match sel within
// wantTextPatience, and reports whether they did.
func (p *page) wantCount(sel string, n int) bool {
	p.t.Helper()
	got, ok, err := settle(p, wantTextPatience, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)), func(k int) bool { return k == n })
	if !ok {
		p.t.Errorf("%d elements match %s, want %d (waited %s; %v)\nmain: %s", got, sel, n, wantTextPatience, err, trim(p.mainHTML(), 2000))
	}
	return ok
}

// wantJS fails (not fatally) unless the JavaScript expression js
// evaluates to want within wantTextPatience, and reports whether it did.
func wantJS[T comparable](p *page, what, js string, want T) bool {
	p.t.Helper()
	got, ok, err := settle(p, wantTextPatience, chromedp.Evaluate[T](js), func(v T) bool { return v == want })
	if !ok {
		p.t.Errorf("%s: %v, want %v (waited %s; %v)", what, got, want, wantTextPatience, err)
	}
	return ok
}

// wantLocation fails (not fatally) unless the page's path and query
// (as location returns them) come to satisfy ok within wantTextPatience,
// and returns the last one read. The UI changes its address with
// history.pushState/replaceState after a click, a fetch or a redirect.
func (p *page) wantLocation(what string, ok func(string) bool) string {
	p.t.Helper()
	got, settled, err := settle(p, wantTextPatience, chromedp.Location(), func(loc string) bool { return ok(requestURI(loc)) })
	if !settled {
		p.t.Errorf("%s: the address is %q (waited %s; %v)", what, requestURI(got), wantTextPatience, err)
	}
	return requestURI(got)
}

// requestURI is the path and query of an absolute URL (the URL itself
// when it does not parse).
func requestURI(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	return u.RequestURI()
}

// wantLocationIs is wantLocation for one exact path and query.
func (p *page) wantLocationIs(want string) {
	p.t.Helper()
	p.wantLocation("want address "+want, func(loc string) bool { return loc == want })
}

// wantLocationHas is wantLocation for an address containing every part.
func (p *page) wantLocationHas(parts ...string) {
	p.t.Helper()
	p.wantLocation(fmt.Sprintf("want an address with %q", parts), func(loc string) bool { return len(missingText(loc, parts)) == 0 })
}

// click clicks the first element matching sel, once a click at its centre
// reaches it. chromedp.Click clicks the point where the element is; a
// notification (bottom right, a few seconds) or anything else drawn over
// that point would take the click instead, and the test would wait for
// an effect that never comes.
func (p *page) click(sel string) {
	p.t.Helper()
	p.run("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	got, ok, err := settle(p, clickPatience, chromedp.Evaluate[string](fmt.Sprintf(clickableJS, sel)), func(s string) bool { return s == "" })
	if !ok {
		p.t.Fatalf("click %s: a click at its centre does not reach it after %s (%s; %v)\nmain: %s", sel, clickPatience, got, err, trim(p.mainHTML(), 3000))
	}
	p.run("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// clickPatience is how long click waits for its element to be uncovered:
// longer than a notification stays (8 s for an error).
const clickPatience = 10 * time.Second

// clickableJS returns "" when a click at the centre of the element %q
// reaches it, else what the click would reach. When the element is not
// wholly in view, or something (the sticky top bar, a notification) is
// over its centre, it first scrolls the element into the middle of the
// view; chromedp.Click then clicks it where it is, without scrolling.
const clickableJS = `(() => {
	const el = document.querySelector(%q);
	if (!el) return 'no element';
	const reach = () => {
		const r = el.getBoundingClientRect();
		const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
		// Wholly in view (in each direction it fits the view in).
		if ((r.height <= vh && (r.top < 0 || r.bottom > vh)) || (r.width <= vw && (r.left < 0 || r.right > vw))) return 'out of view';
		const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		if (hit && (hit === el || el.contains(hit))) return '';
		return hit ? 'it reaches ' + hit.outerHTML.slice(0, 200) : 'it reaches nothing';
	};
	if (reach() === '') return '';
	el.scrollIntoView({block: 'center', inline: 'center'});
	return reach();
})()`

// shot saves a full-page PNG screenshot as <dir>/<name>.png.
func (p *page) shot(name string) {
	p.t.Helper()
	buf := value(p, "screenshot "+name, chromedp.FullScreenshot(100))
	file := filepath.Join(screenshotDir(p.t), name+".png")
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", file)
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// rest is a REST client for seeding data.
type rest struct {
	t          testing.TB
	base       string
	c          *http.Client
	user, pass string // Basic credentials, when set
}

func newREST(t testing.TB, srv *caddytest.Server) *rest {
	return &rest{t: t, base: srv.URL, c: srv.Client()}
}

// call sends a JSON request and decodes the JSON answer, failing the test
// unless the status is 200.
func (r *rest) call(method, path string, body any) map[string]any {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			r.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.c.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	out := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			r.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	return out
}

// post calls POST /api/2.0/mlflow/<path>.
func (r *rest) post(path string, body any) map[string]any {
	r.t.Helper()
	return r.call(http.MethodPost, "/api/2.0/mlflow/"+path, body)
}

// createExperiment creates an experiment and returns its id.
func (r *rest) createExperiment(name string) string {
	r.t.Helper()
	return r.post("experiments/create", map[string]any{"name": name})["experiment_id"].(string)
}

// createRun creates a run and returns its id.
func (r *rest) createRun(expID, name string, startMs int64) string {
	r.t.Helper()
	out := r.post("runs/create", map[string]any{"experiment_id": expID, "run_name": name, "start_time": startMs})
	return out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
}

// uploadArtifact PUTs content as an artifact of the run at relPath.
func (r *rest) uploadArtifact(expID, runID, relPath string, content []byte) {
	r.t.Helper()
	// Runs of the mlflow-artifacts root live under <exp>/<run>/artifacts.
	path := fmt.Sprintf("/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/%s", expID, runID, relPath)
	req, err := http.NewRequest(http.MethodPut, r.base+path, bytes.NewReader(content))
	if err != nil {
		r.t.Fatal(err)
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.c.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		r.t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, b)
	}
}
