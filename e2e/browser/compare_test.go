package browser

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// compareRun is one seeded run of TestCompareRuns.
type compareRun struct {
	name    string
	params  map[string]string
	valLoss float64
	acc     float64
	tags    map[string]string
	id      string
}

// TestCompareRuns compares three runs with overlapping and differing
// params, metrics and tags: the header lists them, the diff table
// highlights exactly the rows that differ and can hide the others, the
// overlaid charts draw, and the parallel-coordinates plot draws the chosen
// params against a metric and highlights a run on hover. Screenshots at
// desktop and phone width.
func TestCompareRuns(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	exp := api.createExperiment("image-classifier-" + time.Now().Format("150405.000"))
	start := time.Now().Add(-5 * time.Hour).UnixMilli()
	runs := []*compareRun{
		{name: "resnet50-lr1e-2", valLoss: 0.412, acc: 0.871,
			params: map[string]string{"lr": "0.01", "batch_size": "32", "optimizer": "adam", "epochs": "10", "model": "resnet50", "dropout": "0.1", "weight_decay": "0.0001"},
			tags:   map[string]string{"team": "vision", "note": "baseline"}},
		{name: "resnet50-lr3e-3", valLoss: 0.356, acc: 0.894,
			params: map[string]string{"lr": "0.003", "batch_size": "64", "optimizer": "adam", "epochs": "10", "model": "resnet50", "dropout": "0.1", "weight_decay": "0.0005"},
			tags:   map[string]string{"team": "vision", "note": "bigger batch"}},
		{name: "vit-b16-lr1e-3", valLoss: 0.298, acc: 0.913,
			params: map[string]string{"lr": "0.001", "batch_size": "32", "optimizer": "adam", "epochs": "10", "model": "vit-b16", "weight_decay": "0.0001"},
			tags:   map[string]string{"team": "vision", "note": "transformer"}},
	}
	var ids []string
	for i, r := range runs {
		r.id = api.createRun(exp, r.name, start+int64(i)*600_000)
		var params, tags []map[string]any
		for k, v := range r.params {
			params = append(params, map[string]any{"key": k, "value": v})
		}
		for k, v := range r.tags {
			tags = append(tags, map[string]any{"key": k, "value": v})
		}
		tags = append(tags, map[string]any{"key": "mlflow.source.name", "value": "train.py"})
		var ms []map[string]any
		for s := 0; s <= 60; s++ {
			f := float64(s) / 60
			ts := start + int64(i)*600_000 + int64(s)*20_000
			ms = append(ms,
				chartPoint("val_loss", r.valLoss+(1.6-r.valLoss)*(1-f)*(1-f), ts, int64(s)),
				chartPoint("accuracy", r.acc-(r.acc-0.1)*(1-f)*(1-f)*(1-f), ts, int64(s)),
				chartPoint("epochs_done", float64(s/6), ts, int64(s)))
		}
		api.post("runs/log-batch", map[string]any{"run_id": r.id, "params": params, "tags": tags, "metrics": ms})
		api.post("runs/update", map[string]any{"run_id": r.id, "status": "FINISHED", "end_time": start + int64(i)*600_000 + 1_300_000})
		ids = append(ids, r.id)
	}

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/compare?runs="+strings.Join(ids, ","), "compare")
	p.wantText("h1", "Compare 3 runs")
	p.wantText(".breadcrumbs", "Experiments", "image-classifier-")
	p.wantText(".compare-runs", runs[0].name, runs[1].name, runs[2].name, "FINISHED")
	if n := p.count(".compare-runs .swatch"); n != 3 {
		t.Errorf("%d colour swatches in the header, want 3", n)
	}
	// header swatches use the charts' colours, in the same order
	swatches := value(p, "swatch colours", chromedp.Evaluate[[]string](`[...document.querySelectorAll('.compare-runs .swatch')].map((e) => getComputedStyle(e).backgroundColor)`))
	legend := value(p, "legend colours", chromedp.Evaluate[[]string](`[...document.querySelectorAll('.chart-legend .swatch')].map((e) => getComputedStyle(e).backgroundColor)`))
	if fmt.Sprint(swatches) != fmt.Sprint(legend) {
		t.Errorf("header swatches %v differ from the chart legend %v", swatches, legend)
	}
	if href := value(p, "run link", chromedp.Evaluate[string](`document.querySelector('.compare-runs a.run-link').getAttribute('href')`)); href != "/experiments/"+exp+"/runs/"+ids[0] {
		t.Errorf("run link = %q", href)
	}

	// overlaid charts: every metric is charted by default (3 ≤ 6), and draws
	if n := p.count(".compare-charts .chart-card"); n != 3 {
		t.Errorf("%d chart cards, want 3", n)
	}
	waitFor(p, "val_loss chart", `(document.querySelector('.chart-card[data-key="val_loss"] canvas.chart-canvas')?.getAttribute('aria-label') || '').includes('Last values')`, 10*time.Second)
	if n := coloredPixels(p, `.chart-card[data-key="val_loss"] canvas.chart-canvas`); n < 200 {
		t.Errorf("val_loss chart has %d coloured pixels", n)
	}

	// diff table: exactly the differing rows are highlighted
	rows := value(p, "diff rows", chromedp.Evaluate[[][]any](`[...document.querySelectorAll('table.diff-table tr[data-key]')].map((r) => [r.dataset.field + ':' + r.dataset.key, r.classList.contains('diff')])`))
	got := map[string]bool{}
	for _, r := range rows {
		got[r[0].(string)] = r[1].(bool)
	}
	want := map[string]bool{
		"params:lr": true, "params:batch_size": true, "params:model": true, "params:dropout": true, "params:weight_decay": true,
		"params:optimizer": false, "params:epochs": false,
		"metrics:val_loss": true, "metrics:accuracy": true, "metrics:epochs_done": false,
		"tags:note": true, "tags:team": false,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("diff rows (key: highlighted)\n got %v\nwant %v", got, want)
	}
	p.wantText(".diff-counts", "8 of 12 rows differ")
	p.wantText("table.diff-table", "vit-b16", "bigger batch", "0.298", "—")
	if strings.Contains(p.text("table.diff-table"), "mlflow.source.name") {
		t.Error("the diff table shows the system tag mlflow.source.name; only user tags belong there")
	}
	p.shot("compare-desktop")

	// only differences: equal rows are hidden, differing ones stay
	p.click("#cmp-only-diff")
	visible := value(p, "visible rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('table.diff-table tr[data-key]')].filter((r) => r.offsetParent !== null).map((r) => r.dataset.field + ':' + r.dataset.key)`))
	sort.Strings(visible)
	var wantVisible []string
	for k, d := range want {
		if d {
			wantVisible = append(wantVisible, k)
		}
	}
	sort.Strings(wantVisible)
	if fmt.Sprint(visible) != fmt.Sprint(wantVisible) {
		t.Errorf("with only differences, visible rows = %v, want %v", visible, wantVisible)
	}
	if !strings.Contains(value(p, "url", chromedp.Evaluate[string](`location.search`)), "diff=1") {
		t.Error("the 'only differences' choice is not kept in the URL")
	}
	p.click("#cmp-only-diff")
	if n := value(p, "visible rows", chromedp.Evaluate[int](`[...document.querySelectorAll('table.diff-table tr[data-key]')].filter((r) => r.offsetParent !== null).length`)); n != 12 {
		t.Errorf("after turning 'only differences' off, %d rows are visible, want 12", n)
	}

	// parallel coordinates: pick lr, batch_size, model against val_loss
	p.click("#cmp-pc-params summary")
	chosen := value(p, "chosen params", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#cmp-pc-params input[type=checkbox]:checked')].map((b) => b.dataset.key)`))
	sort.Strings(chosen)
	if fmt.Sprint(chosen) != fmt.Sprint([]string{"batch_size", "dropout", "lr", "model", "weight_decay"}) {
		t.Errorf("default parallel-coordinates params = %v, want the differing ones", chosen)
	}
	for _, k := range []string{"dropout", "weight_decay"} {
		p.click(fmt.Sprintf(`#cmp-pc-params input[data-key=%q]`, k))
	}
	p.click("#cmp-pc-params summary")
	evalJS(p, "choose metric", `(() => { const s = document.querySelector('#cmp-pc-metric'); s.value = 'val_loss'; s.dispatchEvent(new Event('change', {bubbles: true})); })()`)
	label := value(p, "pc label", chromedp.Evaluate[string](`document.querySelector('canvas.pc-canvas').getAttribute('aria-label')`))
	for _, w := range []string{"3 runs", "batch_size", "lr", "model", "val_loss", "0.298", "0.412"} {
		if !strings.Contains(label, w) {
			t.Errorf("parallel-coordinates aria-label %q lacks %q", label, w)
		}
	}
	if strings.Contains(label, "dropout") {
		t.Errorf("unchecked param still plotted: %q", label)
	}
	if n := coloredPixels(p, "canvas.pc-canvas"); n < 200 {
		t.Errorf("parallel-coordinates canvas has %d coloured pixels", n)
	}
	p.wantText(".pc-scale", "val_loss", "0.298", "0.412")

	// hover the top of the metric axis: the run with the highest val_loss
	before := canvasURL(p, "canvas.pc-canvas")
	box := boxOf(p, "canvas.pc-canvas")
	x, y := box.X+box.W-70, box.Y+50 // the top of the metric axis (plot margins 70 right, 50 top)
	p.run("hover pc", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x-10, y+20), chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y))
	waitFor(p, "pc tooltip", `!!document.querySelector('.pc-plot .chart-tooltip:not([hidden])')`, 5*time.Second)
	p.wantText(".pc-plot .chart-tooltip", runs[0].name, "val_loss", "0.412", "batch_size", "32")
	if canvasURL(p, "canvas.pc-canvas") == before {
		t.Error("hovering a run did not highlight it")
	}
	shotOf(p, "compare-parallel", "section[aria-labelledby=cmp-pc-h]")
	p.run("leave pc", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 5, 5))

	// keyboard: focus the plot, arrows step through the runs
	p.run("leave pc", chromedp.Focus(chromedp.CSS("canvas.pc-canvas")), chromedp.KeyEvent(kb.ArrowDown))
	p.wantText(".pc-plot .chart-tooltip", runs[0].name)
	p.run("next run", chromedp.KeyEvent(kb.ArrowDown))
	p.wantText(".pc-plot .chart-tooltip", runs[1].name)

	// no runs: a hint instead of an empty page
	p.open("/compare", "compare")
	p.wantText("main", "No runs selected")

	// a run id that does not exist is reported, the others still compare
	p.open("/compare?runs="+ids[0]+",0123456789abcdef0123456789abcdef", "compare")
	p.wantText("main", "Compare 1 run", "could not be loaded")
	p.allowErrors() // Chromium logs the failed runs/get

	// phone width
	ph := newPage(t, srv.URL, phoneWidth, phoneHeight)
	ph.open("/compare?runs="+strings.Join(ids, ","), "compare")
	waitFor(ph, "val_loss chart", `(document.querySelector('.chart-card[data-key="val_loss"] canvas.chart-canvas')?.getAttribute('aria-label') || '').includes('Last values')`, 10*time.Second)
	if n := coloredPixels(ph, "canvas.pc-canvas"); n < 100 {
		t.Errorf("phone: parallel-coordinates canvas has %d coloured pixels", n)
	}
	if w := value(ph, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > phoneWidth+1 {
		t.Errorf("phone: the page is %dpx wide, wider than the %dpx screen", w, phoneWidth)
	}
	ph.shot("compare-phone")
}

// TestCompareManyRuns compares 100 runs (the most one request may name)
// with sparse params: some runs lack a param or a metric. Every part of
// the page still renders, charts ask for all runs in one bulk request per
// metric, and the run list folds.
func TestCompareManyRuns(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	exp := api.createExperiment("sweep-" + time.Now().Format("150405.000"))
	start := time.Now().Add(-2 * time.Hour).UnixMilli()
	optimizers := []string{"adam", "sgd", "adamw", "rmsprop"}
	var ids []string
	for i := range 100 {
		id := api.createRun(exp, fmt.Sprintf("sweep-%03d", i), start+int64(i)*1000)
		lr := 0.0005 * float64(1+i%20)
		params := []map[string]any{{"key": "lr", "value": fmt.Sprintf("%.4g", lr)}, {"key": "layers", "value": fmt.Sprint(2 + i%6)}}
		if i%7 != 0 {
			params = append(params, map[string]any{"key": "optimizer", "value": optimizers[i%4]})
		}
		var ms []map[string]any
		if i%11 != 5 { // a few runs never logged the metric
			final := 0.2 + 0.6*math.Abs(math.Sin(float64(i)*0.7))
			for s := range 40 {
				f := float64(s) / 39
				ms = append(ms, chartPoint("loss", final+(2-final)*(1-f)*(1-f), start+int64(i)*1000+int64(s)*5000, int64(s)))
			}
		}
		api.post("runs/log-batch", map[string]any{"run_id": id, "params": params, "metrics": ms})
		api.post("runs/update", map[string]any{"run_id": id, "status": "FINISHED", "end_time": start + 300_000})
		ids = append(ids, id)
	}

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/compare?runs="+strings.Join(ids, ","), "compare")
	p.wantText("h1", "Compare 100 runs")
	if n := p.count(".compare-run:not([hidden])"); n != 12 {
		t.Errorf("%d runs listed before unfolding, want 12", n)
	}
	p.click(".compare-runs button")
	p.wantCount(".compare-run:not([hidden])", 100) // after 'Show all'
	p.click(".compare-runs button")
	if n := p.count("table.diff-table thead th"); n != 101 {
		t.Errorf("diff table has %d header cells, want 101", n)
	}
	waitFor(p, "loss chart", `(document.querySelector('.chart-card[data-key="loss"] canvas.chart-canvas')?.getAttribute('aria-label') || '').includes('Last values')`, 15*time.Second)
	label := value(p, "aria-label", chromedp.Evaluate[string](`document.querySelector('.chart-card[data-key="loss"] canvas.chart-canvas').getAttribute('aria-label')`))
	if !strings.Contains(label, "91 runs") || !strings.Contains(label, "and 81 more") {
		t.Errorf("aria-label %q should count the 91 runs with data and list 10 of them", label)
	}
	if n := coloredPixels(p, `.chart-card[data-key="loss"] canvas.chart-canvas`); n < 500 {
		t.Errorf("100-run chart has %d coloured pixels", n)
	}
	urls := value(p, "resources", chromedp.Evaluate[[]string](resourcesJS))
	bulk := 0
	for _, u := range urls {
		if strings.Contains(u, "get-history-bulk-interval") {
			bulk++
		}
	}
	if bulk != 1 {
		t.Errorf("%d bulk-interval requests for one metric of 100 runs, want 1", bulk)
	}
	// params: optimizer is missing for some runs, layers and lr are numeric
	pcLabel := value(p, "pc label", chromedp.Evaluate[string](`document.querySelector('canvas.pc-canvas').getAttribute('aria-label')`))
	for _, w := range []string{"100 runs", "layers", "lr", "optimizer", "loss"} {
		if !strings.Contains(pcLabel, w) {
			t.Errorf("parallel-coordinates aria-label %q lacks %q", pcLabel, w)
		}
	}
	if n := coloredPixels(p, "canvas.pc-canvas"); n < 500 {
		t.Errorf("parallel-coordinates canvas has %d coloured pixels", n)
	}
	// legend: hide all, then show all
	before := canvasURL(p, `.chart-card[data-key="loss"] canvas.chart-canvas`)
	p.click(".legend-actions button:nth-child(2)")
	p.wantCount(`.legend-item[aria-pressed="true"]`, 0) // after 'Hide all'
	p.wantText(`.chart-card[data-key="loss"] .chart-status`, "hidden")
	p.click(".legend-actions button:nth-child(1)")
	if got := canvasURL(p, `.chart-card[data-key="loss"] canvas.chart-canvas`); got != before {
		t.Error("'Show all' did not bring every line back")
	}
	p.shot("compare-many-runs")
}
