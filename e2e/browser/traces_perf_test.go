package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

// Scale of the traces performance test: the 100,000 traces in an
// experiment and a trace of 5,000 spans.
const (
	perfTraces     = 100_000
	perfBigSteps   = 50
	perfBigPerStep = 99 // 1 root + 50 steps + 50×99 children - 1 = 5,000 spans
)

// seedTraceInfos writes perfTraces trace records straight into a bbolt
// file through the store (the code the REST handlers call), before Caddy
// opens it, and returns the experiment id.
func seedTraceInfos(t *testing.T, path string) string {
	t.Helper()
	ctx := context.Background()
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.EnsureDefaultExperiment(ctx, "mlflow-artifacts:/"); err != nil {
		t.Fatal(err)
	}
	expID, err := st.CreateExperiment(ctx, tracking.CreateExperiment{Name: "traces-100k", DefaultArtifactRoot: "mlflow-artifacts:/"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	base := time.Now().Add(-72 * time.Hour).UnixMilli()
	const workers = 32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < perfTraces; i += workers {
				status := "OK"
				if i%50 == 0 {
					status = "ERROR"
				}
				_, err := st.StartTraceV3(ctx, &tracking.TraceInfo{
					RequestID: fmt.Sprintf("tr-%032x", 0x100000+i), ExperimentID: expID,
					TimestampMs: base + int64(i)*2000, ExecutionTimeMs: int64(50 + (i*7919)%5000), Status: status,
					RequestPreview:  fmt.Sprintf(`{"messages": [{"role": "user", "content": "question number %d"}]}`, i),
					ResponsePreview: fmt.Sprintf(`"answer number %d"`, i),
					Tags:            []tracking.Tag{{Key: "mlflow.traceName", Value: []string{"chat", "retrieve", "agent"}[i%3]}, {Key: "env", Value: []string{"prod", "staging"}[i%2]}},
					RequestMetadata: []tracking.Tag{{Key: "mlflow.trace.tokenUsage", Value: fmt.Sprintf(`{"input_tokens": %d, "output_tokens": %d, "total_tokens": %d}`, 100+i%50, 20+i%30, 120+i%50+i%30)}},
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d traces in %v", perfTraces, time.Since(start).Round(time.Millisecond))
	return expID
}

// bigTraceSpans is an agent trace of 5,000 spans: a root, 50 steps, and
// 99 LLM or tool calls under each step (one fewer under the last).
func bigTraceSpans() []trSpan {
	spans := []trSpan{{ID: trSpanID(0), Name: "agent_run", Type: "AGENT", DurMs: 60_000,
		Inputs: map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Plan the trip."}}}, Outputs: "done"}}
	n := 1
	for s := 0; s < perfBigSteps; s++ {
		stepID := trSpanID(n)
		n++
		stepStart := float64(s) * 1190
		spans = append(spans, trSpan{ID: stepID, Parent: trSpanID(0), Name: fmt.Sprintf("step_%02d", s), Type: "CHAIN",
			StartMs: stepStart, DurMs: 1180, Inputs: map[string]any{"step": s}, Outputs: map[string]any{"ok": true}})
		kids := perfBigPerStep
		if s == perfBigSteps-1 {
			kids--
		}
		for c := 0; c < kids; c++ {
			typ, name := "CHAT_MODEL", fmt.Sprintf("llm_call_%02d_%02d", s, c)
			if c%3 == 2 {
				typ, name = "TOOL", fmt.Sprintf("tool_call_%02d_%02d", s, c)
			}
			spans = append(spans, trSpan{ID: trSpanID(n), Parent: stepID, Name: name, Type: typ,
				StartMs: stepStart + float64(c)*11.5, DurMs: 11,
				Inputs:  map[string]any{"messages": []any{map[string]any{"role": "user", "content": fmt.Sprintf("sub-question %d of step %d", c, s)}}},
				Outputs: map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": fmt.Sprintf("sub-answer %d", c)}}}}})
			n++
		}
	}
	return spans
}

// TestTracesScale seeds 100,000 traces and one trace of 5,000 spans and
// reports how long the Traces tab and the trace page take from
// navigation to ready (the router's data-ready flag). It asserts what the
// pages show and that the span tree keeps only the rows in view in the
// document, never how fast they are: the times are reported (t.Log and
// testoutput/traces-perf.json). Under -race the numbers are several times
// slower; run `go test ./e2e/browser -run TestTracesScale -v` for real ones.
func TestTracesScale(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 traces; skipped with -short")
	}
	if chromiumPath == "" {
		t.Skip("no chromium binary")
	}
	bolt := filepath.Join(t.TempDir(), "traces.bolt")
	expID := seedTraceInfos(t, bolt)
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{"backend_store_uri " + bolt}})
	api := newREST(t, srv)
	bigID := trTraceID(5000)
	spans := bigTraceSpans()
	if len(spans) != 5000 {
		t.Fatalf("built %d spans", len(spans))
	}
	seedTrace(t, api, expID, trTrace{ID: bigID, StartMs: time.Now().UnixMilli(), DurMs: 60_000, Name: "agent_run",
		Request: `{"messages": [{"role": "user", "content": "Plan the trip."}]}`, Response: `"done"`, Spans: spans})

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	type timing struct {
		Page    string    `json:"page"`
		Path    string    `json:"path"`
		Samples []float64 `json:"samples_ms"`
		Median  float64   `json:"median_ms"`
	}
	var results []timing
	measure := func(label, path, page string) {
		t.Helper()
		var samples []float64
		for i := 0; i < 3; i++ {
			p.open("/experiments", "experiments")
			p.open(path, page)
			samples = append(samples, value(p, "ready time", chromedp.Evaluate[float64](`Number(document.body.dataset.readyMs)`)))
		}
		sorted := append([]float64(nil), samples...)
		sort.Float64s(sorted)
		results = append(results, timing{Page: label, Path: path, Samples: samples, Median: sorted[len(sorted)/2]})
		t.Logf("%-48s median %7.1f ms  samples %v", label, sorted[len(sorted)/2], samples)
	}
	tracesPath := "/experiments/" + expID + "/traces"
	tracePath := tracesPath + "/" + bigID
	measure("traces tab, 100k traces, first page", tracesPath, "traces")
	measure("traces tab, filter status = 'ERROR'", tracesPath+"?filter="+urlQuery("status = 'ERROR'"), "traces")
	measure("traces tab, sorted by latency", tracesPath+"?order_by="+urlQuery("execution_time_ms DESC"), "traces")
	measure("trace page, 5,000 spans", tracePath, "trace")

	// The Traces tab's request over HTTP through Caddy, as the page sends
	// it: the first page and the next ones (following page tokens).
	for _, view := range []struct{ label, filter, order string }{
		{"newest first", "", "timestamp_ms DESC"},
		{"status = 'ERROR'", "status = 'ERROR'", "timestamp_ms DESC"},
		{"by latency", "", "execution_time_ms DESC"},
	} {
		var first, next []float64
		for i := 0; i < 5; i++ {
			token := ""
			for page := 0; page < 3; page++ {
				body := map[string]any{"locations": []any{map[string]any{"type": "MLFLOW_EXPERIMENT",
					"mlflow_experiment": map[string]any{"experiment_id": expID}}}, "max_results": 50, "order_by": []string{view.order}}
				if view.filter != "" {
					body["filter"] = view.filter
				}
				if token != "" {
					body["page_token"] = token
				}
				start := time.Now()
				res := api.call("POST", "/ajax-api/3.0/mlflow/traces/search", body)
				ms := float64(time.Since(start).Microseconds()) / 1000
				if n := len(res["traces"].([]any)); n != 50 {
					t.Fatalf("%s page %d: %d traces", view.label, page, n)
				}
				token, _ = res["next_page_token"].(string)
				if page == 0 {
					first = append(first, ms)
				} else {
					next = append(next, ms)
				}
			}
		}
		for _, m := range []struct {
			what    string
			samples []float64
		}{{"first page", first}, {"next pages", next}} {
			sorted := append([]float64(nil), m.samples...)
			sort.Float64s(sorted)
			label := "traces/search over HTTP, " + view.label + ", " + m.what
			results = append(results, timing{Page: label, Path: tracesPath, Samples: m.samples, Median: sorted[len(sorted)/2]})
			t.Logf("%-48s median %7.1f ms  samples %v", label, sorted[len(sorted)/2], m.samples)
		}
	}
	// Next page in the browser: click to the new rows drawn.
	var nextSamples []float64
	for i := 0; i < 3; i++ {
		p.open("/experiments", "experiments")
		p.open(tracesPath, "traces")
		nextSamples = append(nextSamples, value(p, "next page time", chromedp.Evaluate[float64](`(async () => {
			const t0 = performance.now();
			document.getElementById('traces-next').click();
			while (!document.querySelector('.page-info').textContent.includes('51–100')) await new Promise((r) => requestAnimationFrame(r));
			return performance.now() - t0;
		})()`, chromedp.EvalAwaitPromise)))
	}
	sortedNext := append([]float64(nil), nextSamples...)
	sort.Float64s(sortedNext)
	results = append(results, timing{Page: "traces tab, next page (click to rows drawn)", Path: tracesPath, Samples: nextSamples, Median: sortedNext[1]})
	t.Logf("%-48s median %7.1f ms  samples %v", "traces tab, next page (click to rows drawn)", sortedNext[1], nextSamples)
	// Where the time goes: the API calls as the browser timed them
	// (request start to last byte), against the whole page.
	for _, call := range []string{"traces/search", "traces/get"} {
		p.open("/experiments", "experiments")
		path, page := tracesPath, "traces"
		if call == "traces/get" {
			path, page = tracePath, "trace"
		}
		p.open(path, page)
		// [request start, response end] of the call, in ms since navigation.
		span := value(p, "resource timing", chromedp.Evaluate[[]float64](fmt.Sprintf(
			`(() => { const e = performance.getEntriesByType('resource').filter(e => e.name.includes(%q)).pop(); return e ? [e.requestStart, e.responseEnd] : []; })()`, call)))
		ready := value(p, "ready", chromedp.Evaluate[float64](`Number(document.body.dataset.readyMs)`))
		if len(span) == 2 {
			t.Logf("%s: ready at %.1f ms; the %s request ran %.1f–%.1f ms (%.1f ms), drawing after it %.1f ms",
				page, ready, call, span[0], span[1], span[1]-span[0], ready-span[1])
			results = append(results,
				timing{Page: call + " request (server and transfer)", Path: path, Samples: []float64{span[1] - span[0]}, Median: span[1] - span[0]},
				timing{Page: page + " drawing after the response", Path: path, Samples: []float64{ready - span[1]}, Median: ready - span[1]})
		}
	}

	// The trace page's own work, step by step, in the page: the GetTrace
	// call to its headers (server), reading the body, JSON.parse and
	// building the span tree (buildSpans).
	p.open(tracePath, "trace")
	steps := value(p, "trace page steps", chromedp.Evaluate[[]float64](fmt.Sprintf(`(async () => {
		const m = await import('/static/pages/trace.js');
		const t0 = performance.now();
		const res = await fetch('/ajax-api/3.0/mlflow/traces/get?trace_id=%s&allow_partial=true', {credentials: 'same-origin'});
		const t1 = performance.now();
		const text = await res.text();
		const t2 = performance.now();
		const j = JSON.parse(text);
		const t3 = performance.now();
		m.buildSpans(j.trace.spans);
		const t4 = performance.now();
		return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, text.length];
	})()`, bigID), chromedp.EvalAwaitPromise))
	t.Logf("trace page steps: GetTrace headers %.1f ms, body (%.1f MB) %.1f ms, JSON.parse %.1f ms, span tree %.1f ms",
		steps[0], steps[4]/1e6, steps[1], steps[2], steps[3])
	for i, label := range []string{"GetTrace to headers", "GetTrace body", "JSON.parse", "span tree (buildSpans)"} {
		results = append(results, timing{Page: "trace page step: " + label, Path: tracePath, Samples: []float64{steps[i]}, Median: steps[i]})
	}

	// What the user sees at this scale.
	p.open(tracesPath, "traces")
	if n := p.count("#traces-table tbody tr"); n != 50 {
		t.Errorf("traces tab shows %d rows; want one page of 50", n)
	}
	if ids := traceRowIDs(p); ids[0] != bigID {
		t.Errorf("newest trace %s, want the big one", ids[0])
	}
	p.click("#traces-next")
	rmWait(p, "page 2", `document.querySelector('.page-info').textContent.includes('51–100')`)
	p.shot("traces-100k")

	p.open(tracePath, "trace")
	p.wantText("#trace-summary", "5000")
	// Large traces start with the root open: it and its 50 steps are shown.
	p.wantText("#span-count", "5000 spans, 51 shown")
	if n := p.count("#span-tree .span-row"); n == 0 || n > 51 {
		t.Errorf("%d span rows in the document", n)
	}
	p.click("#spans-expand-all")
	p.wantText("#span-count", "5000 spans, 5000 shown")
	// Virtualised: only the rows near the view are in the document.
	if n := p.count("#span-tree .span-row"); n == 0 || n > 80 {
		t.Errorf("expanded tree puts %d rows in the document; want only those in view", n)
	}
	evalJS(p, "scroll to the end", `(() => { const s = document.getElementById('span-tree'); s.scrollTop = s.scrollHeight; s.dispatchEvent(new Event('scroll')); })()`)
	rmWait(p, "last span drawn", `[...document.querySelectorAll('#span-tree .span-name')].some((e) => e.textContent === 'llm_call_49_97')`)
	p.click(`#span-tree .span-row[data-span-id="` + b64hex(t, trSpanID(4999)) + `"]`)
	p.wantText("#span-details", "llm_call_49_97", "sub-answer 97")
	p.shot("trace-5000-spans")

	out, _ := json.MarshalIndent(struct {
		Traces  int      `json:"traces"`
		Spans   int      `json:"spans_in_big_trace"`
		Race    bool     `json:"race"`
		Timings []timing `json:"timings"`
	}{perfTraces, len(spans), raceEnabled, results}, "", "  ")
	file := filepath.Join(filepath.Dir(screenshotDir(t)), "traces-perf.json")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("timings written to %s", file)
}
