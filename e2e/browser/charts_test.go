package browser

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// chartPoint makes one metric of a log-batch request; value may be a
// float64 or one of MLflow's strings ("NaN").
func chartPoint(key string, value any, ts, step int64) map[string]any {
	return map[string]any{"key": key, "value": value, "timestamp": ts, "step": step}
}

// logMetrics logs metrics through log-batch, at most 1000 per call (the
// API's limit).
func logMetrics(r *rest, runID string, metrics []map[string]any) {
	r.t.Helper()
	for len(metrics) > 0 {
		n := min(len(metrics), 1000)
		r.post("runs/log-batch", map[string]any{"run_id": runID, "metrics": metrics[:n]})
		metrics = metrics[n:]
	}
}

// trainingCurves returns steps [from, to) of a made-up training run: a
// decaying loss with some wobble, a rising accuracy, a learning-rate
// schedule. speed scales how fast the run learns.
func trainingCurves(start int64, from, to int, speed float64, seed float64) []map[string]any {
	var out []map[string]any
	for s := from; s < to; s++ {
		ts := start + int64(s)*1500
		x := float64(s)
		wobble := 0.06 * math.Sin(x*0.37+seed) * math.Exp(-x/900)
		noise := 0.025 * math.Sin(x*1.7+seed*3) * math.Sin(x*0.13)
		out = append(out,
			chartPoint("loss", 2.4*math.Exp(-x*speed/220)+0.08+wobble+noise, ts, int64(s)),
			chartPoint("accuracy", 0.96-0.86*math.Exp(-x*speed/260)+noise/3, ts, int64(s)),
			chartPoint("learning_rate", 0.001*(0.5+0.5*math.Cos(math.Pi*x/1000)), ts, int64(s)),
			chartPoint("grad_norm", 4.5*math.Exp(-x/400)+0.6+math.Abs(noise)*8, ts, int64(s)),
		)
	}
	return out
}

// pixelsJS counts the saturated (coloured, not grey) pixels of a canvas:
// the lines, not the white background, grid or labels.
const pixelsJS = `(() => {
  const c = document.querySelector(%q);
  if (!c || !c.width) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const r = d[i], g = d[i + 1], b = d[i + 2];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
  }
  return n;
})()`

func coloredPixels(p *page, sel string) int {
	p.t.Helper()
	return value(p, "pixels of "+sel, chromedp.Evaluate[int](fmt.Sprintf(pixelsJS, sel)))
}

func canvasURL(p *page, sel string) string {
	p.t.Helper()
	return value(p, "toDataURL "+sel, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).toDataURL()`, sel)))
}

// rect is an element's box in CSS pixels of the viewport.
type rect struct{ X, Y, W, H float64 }

func boxOf(p *page, sel string) rect {
	p.t.Helper()
	return value(p, "box of "+sel, chromedp.Evaluate[rect](fmt.Sprintf(`(() => {
  const el = document.querySelector(%q);
  el.scrollIntoView({block: 'center'});
  const r = el.getBoundingClientRect();
  return {X: r.left, Y: r.top, W: r.width, H: r.height};
})()`, sel)))
}

// evalJS runs a statement on the page.
func evalJS(p *page, what, js string) {
	p.t.Helper()
	p.run(what, chromedp.Evaluate[chromedp.Void](js))
}

// shotOf saves a PNG of one element as <dir>/<name>.png.
func shotOf(p *page, name, sel string) {
	p.t.Helper()
	// the sticky top bar would cover the element once it is scrolled to
	evalJS(p, "unstick top bar", `document.querySelector('.topbar').style.position = 'static'`)
	buf := value(p, "screenshot "+name, chromedp.Screenshot(chromedp.CSS(sel)))
	evalJS(p, "restick top bar", `document.querySelector('.topbar').style.position = ''`)
	file := filepath.Join(screenshotDir(p.t), name+".png")
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", file)
}

// waitFor polls a JavaScript boolean expression until it is true.
func waitFor(p *page, what, js string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if value(p, what, chromedp.Evaluate[bool](js)) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %s waiting for %s\nmain: %s", timeout, what, trim(p.mainHTML(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// resourcesJS lists the URLs the page has requested.
const resourcesJS = `performance.getEntriesByType('resource').map((e) => e.name)`

// TestMetricCharts seeds two runs with four metrics of 1000 and 700 steps
// (one run still RUNNING) and drives the chart component on the compare
// page: canvases draw lines, the legend names the runs and hides a line,
// hover shows values, log scale / x axis / smoothing redraw, a zoom
// refetches the step range, a new point of the RUNNING run shows up by
// auto-refresh, and charts only ever ask for bulk-interval samples.
func TestMetricCharts(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	exp := api.createExperiment("charts-" + time.Now().Format("150405.000"))
	start := time.Now().Add(-3 * time.Hour).UnixMilli()
	a := api.createRun(exp, "resnet50-baseline", start)
	b := api.createRun(exp, "resnet50-cosine-warmup", start+90_000)

	ma := trainingCurves(start, 0, 1000, 1, 0)
	// two NaN losses: the line breaks there instead of failing.
	ma = append(ma, chartPoint("loss", "NaN", start+500*1500+1, 500), chartPoint("loss", "NaN", start+501*1500+1, 501))
	logMetrics(api, a, ma)
	api.post("runs/update", map[string]any{"run_id": a, "status": "FINISHED", "end_time": start + 1000*1500})
	logMetrics(api, b, trainingCurves(start+90_000, 0, 700, 1.6, 1.3))

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/compare?runs="+a+","+b, "compare")
	first := `.chart-card[data-key="loss"] canvas.chart-canvas`
	waitFor(p, "loss chart described", fmt.Sprintf(`(document.querySelector(%q)?.getAttribute('aria-label') || '').includes('Last values')`, first), 10*time.Second)

	if n := p.count(".chart-card"); n != 4 {
		t.Fatalf("chart cards = %d, want 4 (one per metric)", n)
	}
	// each card reports when its data was drawn (the performance test reads it)
	waitFor(p, "cards ready", `[...document.querySelectorAll('.chart-card')].every((c) => c.dataset.state === 'ready' && Number(c.dataset.drawnMs) > 0)`, 10*time.Second)
	if role := value(p, "role", chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute('role')`, first))); role != "img" {
		t.Errorf("canvas role = %q, want img", role)
	}
	label := value(p, "aria-label", chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-label')`, first)))
	for _, want := range []string{"loss", "2 runs", "resnet50-baseline", "at step 999", "resnet50-cosine-warmup", "at step 699"} {
		if !strings.Contains(label, want) {
			t.Errorf("aria-label %q lacks %q", label, want)
		}
	}
	if n := coloredPixels(p, first); n < 300 {
		t.Fatalf("loss canvas has %d coloured pixels; the lines are not drawn", n)
	}
	p.wantText(".chart-legend", "resnet50-baseline", "resnet50-cosine-warmup")
	p.wantText(".chart-live", "Live")
	// the hidden values table names both runs and their last values
	tableText := value(p, "values table", chromedp.Evaluate[string](`document.querySelector('.chart-card[data-key="loss"] table.chart-values').textContent`))
	for _, want := range []string{"resnet50-baseline", "999", "resnet50-cosine-warmup", "699"} {
		if !strings.Contains(tableText, want) {
			t.Errorf("values table %q lacks %q", tableText, want)
		}
	}

	// the values table is visually hidden until asked for
	if v := value(p, "table hidden", chromedp.Evaluate[bool](`document.querySelector('.chart-table-wrap').classList.contains('visually-hidden')`)); !v {
		t.Error("the values table is shown before asking")
	}
	p.click(".chart-table-toggle")
	p.wantText(`.chart-card[data-key="loss"] table.chart-values`, "resnet50-baseline", "Last value")
	p.click(".chart-table-toggle")

	// hover: a crosshair and a tooltip with both runs' values
	box := boxOf(p, first)
	hx, hy := box.X+box.W*0.45, box.Y+box.H*0.5
	p.run("hover", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, hx-20, hy), chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, hx, hy))
	waitFor(p, "tooltip", `!!document.querySelector('.chart-card[data-key="loss"] .chart-tooltip:not([hidden])')`, 5*time.Second)
	tip := p.text(`.chart-card[data-key="loss"] .chart-tooltip`)
	for _, want := range []string{"resnet50-baseline", "resnet50-cosine-warmup", "step "} {
		if !strings.Contains(tip, want) {
			t.Errorf("tooltip %q lacks %q", tip, want)
		}
	}
	shotOf(p, "charts-desktop", "section[aria-labelledby=cmp-charts-h]")
	p.run("leave chart", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 5, 5))

	// legend: hiding a run redraws without its line, showing it brings it back
	before := canvasURL(p, first)
	legendB := fmt.Sprintf(`.legend-item[data-run-id=%q]`, b)
	p.click(legendB)
	if got := value(p, "pressed", chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-pressed')`, legendB))); got != "false" {
		t.Errorf("legend item aria-pressed = %q after hiding, want false", got)
	}
	if canvasURL(p, first) == before {
		t.Error("hiding a run in the legend did not change the chart")
	}
	p.click(legendB)
	if canvasURL(p, first) != before {
		t.Error("showing the run again did not restore the chart")
	}

	// log scale, x axis, smoothing each change the drawing
	step := canvasURL(p, first)
	p.click(".chart-toolbar input.chart-log")
	logged := canvasURL(p, first)
	if logged == step {
		t.Error("log scale did not change the chart")
	}
	setSmoothing := func(v string) {
		evalJS(p, "smoothing "+v, fmt.Sprintf(`(() => { const s = document.querySelector('.chart-toolbar input.chart-smoothing'); s.value = %q; s.dispatchEvent(new Event('input', {bubbles: true})); })()`, v))
	}
	setSmoothing("0.9")
	smoothed := canvasURL(p, first)
	if smoothed == logged {
		t.Error("smoothing did not change the chart")
	}
	p.wantText(".chart-toolbar", "0.90")
	shotOf(p, "charts-log-smoothed", "section[aria-labelledby=cmp-charts-h]")
	setXAxis := func(v string) {
		evalJS(p, "x axis "+v, fmt.Sprintf(`(() => { const s = document.querySelector('.chart-toolbar select'); s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, v))
	}
	setXAxis("relative")
	if canvasURL(p, first) == smoothed {
		t.Error("relative-time x axis did not change the chart")
	}
	relative := canvasURL(p, first)
	setXAxis("time")
	if canvasURL(p, first) == relative {
		t.Error("wall-clock x axis did not change the chart")
	}
	if l := value(p, "aria-label", chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-label')`, first))); !strings.Contains(l, "time (wall clock)") || !strings.Contains(l, "log scale") {
		t.Errorf("aria-label %q does not describe the x axis and log scale", l)
	}
	setXAxis("step")
	setSmoothing("0")
	p.click(".chart-toolbar input.chart-log")
	if canvasURL(p, first) != step {
		t.Error("turning every option back did not restore the first drawing")
	}

	// zoom: drag over a range of steps refetches it with start_step/end_step
	box = boxOf(p, first)
	y := box.Y + box.H*0.5
	p.run("drag to zoom",
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, box.X+box.W*0.4, y, chromedp.ButtonType(input.MouseButtonLeft), chromedp.ClickCount(1)),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, box.X+box.W*0.5, y, chromedp.ButtonType(input.MouseButtonLeft)),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, box.X+box.W*0.6, y, chromedp.ButtonType(input.MouseButtonLeft)),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, box.X+box.W*0.6, y, chromedp.ButtonType(input.MouseButtonLeft), chromedp.ClickCount(1)),
	)
	waitFor(p, "zoom request", resourcesJS+`.some((u) => u.includes('get-history-bulk-interval') && u.includes('start_step=') && u.includes('metric_key=loss'))`, 5*time.Second)
	p.wantText(`.chart-card[data-key="loss"] .chart-head`, "steps", "Reset zoom")
	// the zoomed range's points arrive after the zoom request is timed
	waitFor(p, "the zoomed chart to differ", fmt.Sprintf(`document.querySelector(%q).toDataURL() !== %q`, first, step), 5*time.Second)
	p.click(`.chart-card[data-key="loss"] .chart-reset`)
	waitFor(p, "zoom reset", fmt.Sprintf(`document.querySelector(%q).toDataURL() === %q`, first, step), 5*time.Second)

	// auto-refresh: a new point of the RUNNING run appears within a refresh
	api.post("runs/log-batch", map[string]any{"run_id": b, "metrics": []map[string]any{chartPoint("loss", 0.0123, time.Now().UnixMilli(), 700)}})
	waitFor(p, "auto-refresh shows step 700", fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-label').includes('resnet50-cosine-warmup 0.0123 at step 700')`, first), 9*time.Second)
	// and stops once the run is finished
	api.post("runs/update", map[string]any{"run_id": b, "status": "FINISHED", "end_time": time.Now().UnixMilli()})
	waitFor(p, "live indicator off", `!document.querySelector('.chart-live.on')`, 9*time.Second)
	p.wantText(".compare-runs", "FINISHED")

	// every chart request is a bulk-interval sample; full histories are never fetched
	urls := value(p, "resources", chromedp.Evaluate[[]string](resourcesJS))
	bulk := 0
	for _, u := range urls {
		if strings.Contains(u, "get-history-bulk-interval") {
			bulk++
			// unzoomed samples use MLflow's 320 points; a narrow zoom asks
			// for every step of its range (at most 1000)
			if !strings.Contains(u, "start_step=") && !strings.Contains(u, "max_results=320") {
				t.Errorf("chart request without max_results=320: %s", u)
			}
		}
		if strings.Contains(u, "/metrics/get-history?") || strings.HasSuffix(u, "/metrics/get-history") || strings.Contains(u, "get-history-bulk?") {
			t.Errorf("charts fetched a full history: %s", u)
		}
	}
	if bulk < 4 {
		t.Errorf("%d bulk-interval requests, want at least one per chart: %v", bulk, urls)
	}
}

// TestChartDrawSpeed checks that a 10 runs × 320 points chart draws and
// reports how long one redraw takes.
func TestChartDrawSpeed(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	exp := api.createExperiment("chart-speed-" + time.Now().Format("150405.000"))
	start := time.Now().Add(-time.Hour).UnixMilli()
	var ids []string
	for i := range 10 {
		id := api.createRun(exp, fmt.Sprintf("run-%02d", i), start)
		var ms []map[string]any
		for s := range 320 {
			ms = append(ms, chartPoint("loss", 1/(1+float64(s)*0.01*float64(i+1)), start+int64(s)*1000, int64(s)))
		}
		logMetrics(api, id, ms)
		api.post("runs/update", map[string]any{"run_id": id, "status": "FINISHED", "end_time": start + 400_000})
		ids = append(ids, id)
	}
	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/compare?runs="+strings.Join(ids, ","), "compare")
	sel := `.chart-card[data-key="loss"] canvas.chart-canvas`
	if n := coloredPixels(p, sel); n < 300 {
		t.Fatalf("10-run chart has %d coloured pixels", n)
	}
	// each toggle redraws every chart synchronously; reading a pixel back
	// makes Chromium rasterize the recorded drawing, so it is timed too.
	// The best of five batches of 10 toggles (a busy machine slows some
	// batches down).
	ms := value(p, "draw time", chromedp.Evaluate[float64](`(() => {
  const box = document.querySelector('.chart-toolbar input.chart-log');
  const canvas = document.querySelector('.chart-card[data-key="loss"] canvas.chart-canvas');
  canvas.getContext('2d').getImageData(0, 0, 1, 1);
  let best = Infinity;
  for (let b = 0; b < 5; b++) {
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) { box.click(); canvas.getContext('2d').getImageData(0, 0, 1, 1); }
    best = Math.min(best, (performance.now() - t0) / 10);
  }
  return best;
})()`))
	// Reported, not asserted: wall-clock limits do not belong in tests
	// (about 1 ms of JavaScript and 5 ms of rasterization on an idle core).
	t.Logf("one redraw of a 10 runs × 320 points chart: %.2f ms", ms)
	if ms <= 0 {
		t.Errorf("draw time %.3f ms: the timing did not run", ms)
	}
}
