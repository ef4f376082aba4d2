package browser

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// trSpan is one span of a traces.json document as the MLflow client
// writes it (Span.to_dict): ids in base64, attribute values JSON-encoded.
type trSpan struct {
	ID, Parent string // hex span ids
	Name, Type string
	StartMs    float64 // from the trace's start
	DurMs      float64
	Inputs     any
	Outputs    any
	Attrs      map[string]any
	Error      string // exception message; marks the span ERROR
	Events     []any  // further events, as Span.to_dict writes them
}

// trTraceID is a v3 trace id ("tr-" and 32 hex digits) made from n.
func trTraceID(n int) string { return fmt.Sprintf("tr-%032x", 0xabc0000+n) }

// trSpanID is a 16-hex-digit span id made from n.
func trSpanID(n int) string { return fmt.Sprintf("%016x", 0x5000+n) }

func b64hex(t *testing.T, h string) string {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(h, "tr-"))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// traceData builds a traces.json document.
func traceData(t *testing.T, traceID string, startMs int64, spans []trSpan) []byte {
	t.Helper()
	out := make([]map[string]any, 0, len(spans))
	for _, s := range spans {
		attrs := map[string]string{
			"mlflow.traceRequestId": jsonString(t, traceID),
			"mlflow.spanType":       jsonString(t, s.Type),
		}
		if s.Inputs != nil {
			attrs["mlflow.spanInputs"] = jsonString(t, s.Inputs)
		}
		if s.Outputs != nil {
			attrs["mlflow.spanOutputs"] = jsonString(t, s.Outputs)
		}
		for k, v := range s.Attrs {
			attrs[k] = jsonString(t, v)
		}
		st := startMs*1_000_000 + int64(s.StartMs*1e6)
		en := st + int64(s.DurMs*1e6)
		sp := map[string]any{
			"trace_id": b64hex(t, traceID), "span_id": b64hex(t, s.ID), "parent_span_id": nil,
			"name": s.Name, "start_time_unix_nano": st, "end_time_unix_nano": en,
			"status": map[string]any{"code": "STATUS_CODE_OK", "message": ""}, "attributes": attrs, "events": []any{},
		}
		if s.Parent != "" {
			sp["parent_span_id"] = b64hex(t, s.Parent)
		}
		if s.Events != nil {
			sp["events"] = s.Events
		}
		if s.Error != "" {
			sp["status"] = map[string]any{"code": "STATUS_CODE_ERROR", "message": "ValueError: " + s.Error}
			sp["events"] = []any{map[string]any{"name": "exception", "time_unix_nano": en, "attributes": map[string]any{
				"exception.type": "ValueError", "exception.message": s.Error,
				"exception.stacktrace": "Traceback (most recent call last):\n  File \"tool.py\", line 3\nValueError: " + s.Error,
			}}}
		}
		out = append(out, sp)
	}
	return []byte(jsonString(t, map[string]any{"spans": out, "request": nil, "response": nil}))
}

// trTrace describes a trace to seed.
type trTrace struct {
	ID        string
	StartMs   int64
	DurMs     int64
	State     string
	Name      string
	Request   string
	Response  string
	Run       string
	Tokens    [3]int // input, output, total
	Tags      map[string]string
	Spans     []trSpan
	ExtraMeta map[string]string
}

// seedTrace starts a v3 trace through the REST API and uploads its
// traces.json the way the MLflow client does.
func seedTrace(t *testing.T, r *rest, expID string, tr trTrace) {
	t.Helper()
	meta := map[string]any{}
	if tr.Run != "" {
		meta["mlflow.sourceRun"] = tr.Run
	}
	if tr.Tokens[2] > 0 {
		meta["mlflow.trace.tokenUsage"] = jsonString(t, map[string]int{"input_tokens": tr.Tokens[0], "output_tokens": tr.Tokens[1], "total_tokens": tr.Tokens[2]})
	}
	for k, v := range tr.ExtraMeta {
		meta[k] = v
	}
	tags := map[string]any{}
	if tr.Name != "" {
		tags["mlflow.traceName"] = tr.Name
	}
	for k, v := range tr.Tags {
		tags[k] = v
	}
	state := tr.State
	if state == "" {
		state = "OK"
	}
	info := map[string]any{
		"trace_id":           tr.ID,
		"trace_location":     map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": expID}},
		"request_time":       time.UnixMilli(tr.StartMs).UTC().Format("2006-01-02T15:04:05.000Z"),
		"execution_duration": fmt.Sprintf("%d.%03ds", tr.DurMs/1000, tr.DurMs%1000),
		"state":              state,
		"trace_metadata":     meta,
		"tags":               tags,
		"request_preview":    tr.Request,
		"response_preview":   tr.Response,
	}
	r.call(http.MethodPost, "/api/3.0/mlflow/traces", map[string]any{"trace": map[string]any{"trace_info": info}})
	if tr.Spans != nil {
		r.put(fmt.Sprintf("/api/2.0/mlflow-artifacts/artifacts/%s/traces/%s/artifacts/traces.json", expID, tr.ID), traceData(t, tr.ID, tr.StartMs, tr.Spans))
	}
}

// put PUTs a raw body, failing the test unless the answer is 200.
func (r *rest) put(path string, body []byte) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPut, r.base+path, bytes.NewReader(body))
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

// addAssessment creates a feedback assessment through the v3 route.
func addAssessment(r *rest, traceID, name string, value any, rationale string) string {
	r.t.Helper()
	out := r.call(http.MethodPost, "/api/3.0/mlflow/traces/"+traceID+"/assessments", map[string]any{"assessment": map[string]any{
		"assessment_name": name, "trace_id": traceID,
		"source":   map[string]any{"source_type": "LLM_JUDGE", "source_id": "gpt-judge"},
		"feedback": map[string]any{"value": value}, "rationale": rationale,
	}})
	return out["assessment"].(map[string]any)["assessment_id"].(string)
}

// traceInfo reads a trace's TraceInfoV3 through the REST API.
func (r *rest) traceInfo(traceID string) map[string]any {
	r.t.Helper()
	return r.call(http.MethodGet, "/api/3.0/mlflow/traces/"+traceID, nil)["trace"].(map[string]any)["trace_info"].(map[string]any)
}

// chatSpans is a small RAG chat: a chain with a retriever, an LLM call
// (OpenAI-style messages and completion, token usage) and a failing tool.
func chatSpans() []trSpan {
	root, ret, llm, tool := trSpanID(1), trSpanID(2), trSpanID(3), trSpanID(4)
	msgs := []map[string]any{
		{"role": "system", "content": "You answer questions about MLflow."},
		{"role": "user", "content": "What is a logged model?"},
	}
	return []trSpan{
		{ID: root, Name: "chat_pipeline", Type: "CHAIN", StartMs: 0, DurMs: 1800,
			Inputs: map[string]any{"messages": msgs}, Outputs: "A logged model is an MLflow 3 model entity."},
		{ID: ret, Parent: root, Name: "retrieve_docs", Type: "RETRIEVER", StartMs: 20, DurMs: 300,
			Inputs: map[string]any{"query": "logged model"},
			Events: []any{map[string]any{"name": "cache_miss", "time_unix_nano": int64(0), "attributes": map[string]any{"index": "docs-v2"}}},
			Outputs: []any{
				map[string]any{"page_content": "LoggedModel is the first-class model entity", "metadata": map[string]any{"doc_uri": "docs/logged-model.md", "score": 0.91}},
				map[string]any{"page_content": "Models are linked to runs", "metadata": map[string]any{"doc_uri": "docs/runs.md", "score": 0.72}},
			}},
		{ID: llm, Parent: root, Name: "openai.chat.completions", Type: "CHAT_MODEL", StartMs: 350, DurMs: 1200,
			Inputs:  map[string]any{"model": "gpt-4o-mini", "temperature": 0.1, "messages": msgs},
			Outputs: map[string]any{"id": "chatcmpl-1", "choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": "A logged model is an MLflow 3 model entity."}, "finish_reason": "stop"}}},
			Attrs:   map[string]any{"mlflow.chat.tokenUsage": map[string]int{"input_tokens": 42, "output_tokens": 17, "total_tokens": 59}, "llm.provider": "openai"}},
		{ID: tool, Parent: root, Name: "lookup_glossary", Type: "TOOL", StartMs: 1560, DurMs: 200,
			Inputs: map[string]any{"term": "logged model"}, Error: "glossary service unavailable"},
	}
}

// seedTraces fills an experiment with a chat trace with spans and
// assessments, an error trace and 27 plain ones (29 traces in all).
func seedTraces(t *testing.T, r *rest) (expID, runID, chatID, errID string) {
	t.Helper()
	expID = r.createExperiment("rag-chatbot")
	base := time.Now().Add(-2 * time.Hour).UnixMilli()
	runID = r.createRun(expID, "eval-run", base)
	chatID, errID = trTraceID(1), trTraceID(2)
	request := jsonString(t, map[string]any{"messages": []any{map[string]any{"role": "user", "content": "What is a logged model?"}}})
	seedTrace(t, r, expID, trTrace{ID: chatID, StartMs: base + 100_000, DurMs: 1800, Name: "chat_pipeline", Request: request,
		Response: `"A logged model is an MLflow 3 model entity."`, Run: runID, Tokens: [3]int{42, 17, 59},
		Tags: map[string]string{"env": "staging", "note": "<img src=x onerror=alert(1)>"}, Spans: chatSpans()})
	seedTrace(t, r, expID, trTrace{ID: errID, StartMs: base + 90_000, DurMs: 250, State: "ERROR", Name: "lookup",
		Request: `{"term": "run"}`, Response: "", Spans: []trSpan{{ID: trSpanID(9), Name: "lookup", Type: "TOOL", DurMs: 250, Error: "boom"}}})
	for i := 0; i < 27; i++ {
		seedTrace(t, r, expID, trTrace{ID: trTraceID(100 + i), StartMs: base + int64(i)*1000, DurMs: int64(100 + i*37), Name: "batch_predict",
			Request: fmt.Sprintf(`{"question": "q-%02d"}`, i), Response: fmt.Sprintf(`"a-%02d"`, i)})
	}
	addAssessment(r, chatID, "correctness", true, "Matches the docs.")
	addAssessment(r, chatID, "relevance", 0.8, "")
	return expID, runID, chatID, errID
}

// traceRowIDs lists the trace ids of the table's rows, in order.
func traceRowIDs(p *page) []string {
	p.t.Helper()
	return value(p, "trace rows", chromedp.Evaluate[[]string](traceRowsJS))
}

// traceRowsJS lists the trace ids of the table's rows, in order.
const traceRowsJS = `[...document.querySelectorAll('#traces-table tbody tr')].map((r) => r.dataset.traceId)`

// wantTraceRows fails (not fatally) unless the table comes to list
// exactly the traces want, in order, within wantTextPatience.
func wantTraceRows(p *page, what string, want ...string) bool {
	p.t.Helper()
	return wantJS(p, what, traceRowsJS+`.join(',')`, strings.Join(want, ","))
}

// TestTracesTab drives an experiment's Traces tab: the table's columns
// (previews, state, latency, tokens, tags, assessments, run), the filter
// with MLflow's grammar (and its error), sorting by latency, paging with
// page tokens, selecting and deleting traces, untrusted text shown as
// text, and the tab at phone width.
func TestTracesTab(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	expID, runID, chatID, errID := seedTraces(t, api)
	tracesPath := "/experiments/" + expID + "/traces"

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	// The runs page links the section.
	p.open("/experiments/"+expID, "runs")
	p.click("#exp-tab-traces")
	p.run("traces tab", waitPage("traces"))
	p.wantLocationIs(tracesPath)
	if ids := traceRowIDs(p); len(ids) != 29 || ids[0] != chatID || ids[1] != errID {
		t.Fatalf("first page: %d rows %v; want 29, newest (chat, error) first", len(ids), ids)
	}
	row := fmt.Sprintf(`#traces-table tr[data-trace-id=%q]`, chatID)
	p.wantText(row, "chat_pipeline", "What is a logged model?", "A logged model is an MLflow 3 model entity.", "OK", "1.8 s", "59",
		"env", "staging", "correctness", "true", "relevance", "0.8", runID[:8])
	p.wantText(fmt.Sprintf(`#traces-table tr[data-trace-id=%q]`, errID), "Error", "250 ms")
	p.wantCount(row+` a[href="/experiments/`+expID+`/runs/`+runID+`"]`, 1) // the chat trace links its run once
	// Untrusted tag text is text, not markup.
	if n := p.count("#traces-table img, #traces-table b b"); n != 0 {
		t.Errorf("tag text became %d elements", n)
	}
	p.wantText(row, "<img src=x")
	p.shot("traces-tab")

	// Filter with MLflow's trace grammar.
	// Submitted as a user does, with the Search button: the form's submit
	// handler (chromedp.Submit calls form.submit(), which skips it and
	// starts a full navigation the next check could overtake).
	rmFill(p, "#traces-filter", "status = 'ERROR'")
	p.run("filter", chromedp.Click(chromedp.CSS("#traces-filter ~ button[type=submit]")), waitPage("traces"))
	wantTraceRows(p, "status = 'ERROR' rows", errID)
	p.wantLocationHas("filter=status")
	p.open(tracesPath+"?filter="+urlQuery("tags.env = 'staging' and execution_time_ms > 1000"), "traces")
	if ids := traceRowIDs(p); len(ids) != 1 || ids[0] != chatID {
		t.Errorf("tags.env filter shows %v", ids)
	}
	p.allowErrors()
	p.open(tracesPath+"?filter="+urlQuery("span.nope ~ 1"), "traces")
	p.wantText("#traces-filter-error", "This filter cannot be used.")
	p.allowErrors()

	// Sort by latency, longest first, then shortest first.
	p.open(tracesPath, "traces")
	p.click(`#traces-table th button[data-sort="execution_time_ms"]`)
	p.run("sorted", waitPage("traces"))
	if ids := traceRowIDs(p); ids[0] != chatID {
		t.Errorf("latency DESC starts with %s, want the 1.8 s chat trace", ids[0])
	}
	p.click(`#traces-table th button[data-sort="execution_time_ms"]`)
	p.run("sorted asc", waitPage("traces"))
	if ids := traceRowIDs(p); ids[0] != trTraceID(100) {
		t.Errorf("latency ASC starts with %s, want the 100 ms trace", ids[0])
	}
	p.wantLocationHas("order_by=execution_time_ms+ASC")

	// Pages of 25 with page tokens.
	p.open(tracesPath+"?size=25", "traces")
	first := traceRowIDs(p)
	if len(first) != 25 {
		t.Fatalf("page 1 has %d rows", len(first))
	}
	p.wantText(".page-info", "Traces 1–25")
	p.click("#traces-next")
	rmWait(p, "page 2", `document.querySelector('.page-info').textContent.includes('26–29')`)
	second := traceRowIDs(p)
	if len(second) != 4 || second[0] == first[0] {
		t.Errorf("page 2: %v", second)
	}
	if !value(p, "next disabled", chromedp.Evaluate[bool](`document.getElementById('traces-next').disabled`)) {
		t.Errorf("Next is enabled on the last page")
	}
	p.click("#traces-prev")
	rmWait(p, "page 1 again", `document.querySelector('.page-info').textContent.includes('1–25')`)

	// Select two traces and delete them.
	p.open(tracesPath, "traces")
	victims := []string{trTraceID(100), trTraceID(101)}
	for _, id := range victims {
		p.click(fmt.Sprintf(`#traces-table tr[data-trace-id=%q] input.row-select`, id))
	}
	p.wantText(".sel-info", "2 selected")
	p.click("#traces-delete")
	p.dialogSubmit()
	rmWait(p, "rows gone", `document.querySelectorAll('#traces-table tbody tr').length === 27`)
	for _, id := range victims {
		if status := getStatus(t, srv, "/api/3.0/mlflow/traces/"+id); status != http.StatusNotFound {
			t.Errorf("deleted trace %s answers %d", id, status)
		}
	}

	// A phone.
	phone := newPage(t, srv.URL, phoneWidth, phoneHeight)
	phone.open(tracesPath, "traces")
	phone.wantText("#traces-table", "chat_pipeline")
	phone.shot("traces-tab-phone")
}

// TestTracePage drives one trace: the span tree and its waterfall,
// choosing spans, JSON inputs that expand, chat messages (and the JSON
// behind them), an exception, token figures, assessments added, edited
// and deleted, a tag, the run link, and MLflow's trace links landing here.
func TestTracePage(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	expID, runID, chatID, _ := seedTraces(t, api)
	tracePath := "/experiments/" + expID + "/traces/" + chatID

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments/"+expID+"/traces", "traces")
	p.click(fmt.Sprintf(`#traces-table tr[data-trace-id=%q] a.trace-link`, chatID))
	p.run("trace page", waitPage("trace"))
	p.wantLocationIs(tracePath)
	p.wantText("h1", "chat_pipeline")
	p.wantText("#trace-summary", chatID, "1.8 s", "59 (in 42, out 17)", runID)
	p.wantCount(`#trace-summary a[href="/experiments/`+expID+`/runs/`+runID+`"]`, 1) // the summary links the run once
	names := value(p, "span rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#span-tree .span-row')].sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map((r) => r.querySelector('.span-name').textContent)`))
	if strings.Join(names, ",") != "chat_pipeline,retrieve_docs,openai.chat.completions,lookup_glossary" {
		t.Errorf("span tree rows %v", names)
	}
	levels := value(p, "levels", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#span-tree .span-row')].map((r) => r.getAttribute('aria-level'))`))
	if strings.Join(levels, ",") != "1,2,2,2" {
		t.Errorf("span levels %v", levels)
	}
	// Waterfall: the LLM bar starts after the retriever's and is the longest child.
	bar := func(name string) rect {
		return value(p, "bar "+name, chromedp.Evaluate[rect](fmt.Sprintf(`(() => { const row = [...document.querySelectorAll('#span-tree .span-row')].find((r) => r.querySelector('.span-name').textContent === %q);
			const b = row.querySelector('.span-bar').getBoundingClientRect(); return {X: b.left, Y: b.top, W: b.width, H: b.height}; })()`, name)))
	}
	rootBar, retBar, llmBar := bar("chat_pipeline"), bar("retrieve_docs"), bar("openai.chat.completions")
	if !(llmBar.X > retBar.X && llmBar.W > retBar.W && rootBar.W > llmBar.W) {
		t.Errorf("waterfall bars root %+v retriever %+v llm %+v", rootBar, retBar, llmBar)
	}
	// The root span is selected: its chat input shows as messages.
	p.wantText("#span-details", "chat_pipeline", "CHAIN")
	p.wantCount("#span-inputs .chat-msg", 2) // the root's chat input
	p.wantText("#span-outputs", "A logged model is an MLflow 3 model entity.")

	// The retriever: a JSON tree whose nodes expand.
	p.click(`#span-tree .span-row[data-span-id="` + b64hex(t, trSpanID(2)) + `"]`)
	p.wantText("#span-details", "retrieve_docs", "RETRIEVER")
	p.wantLocationHas("span=" + trSpanID(2))
	p.wantText("#span-details .span-events", "Events (1)", "cache_miss", "index", "docs-v2")
	p.wantText("#span-outputs .json-view", "page_content", "LoggedModel is the first-class model entity")
	closed := p.count("#span-outputs details.json-node:not([open])")
	if closed == 0 {
		t.Fatalf("no collapsed JSON node in the retriever output")
	}
	p.click("#span-outputs details.json-node:not([open]) > summary")
	rmWait(p, "JSON node opened", fmt.Sprintf(`document.querySelectorAll('#span-outputs details.json-node:not([open])').length < %d`, closed))
	p.wantText("#span-outputs", "docs/logged-model.md")

	// The LLM span: chat in, chat out, tokens, attributes; JSON on demand.
	p.click(`#span-tree .span-row[data-span-id="` + b64hex(t, trSpanID(3)) + `"]`)
	p.wantText("#span-details", "openai.chat.completions", "CHAT_MODEL", "1.2 s")
	p.wantText("#span-tokens", "59 (in 42, out 17)")
	p.wantCount("#span-inputs .chat-msg", 2) // the LLM's chat input
	p.wantText("#span-inputs .chat-system", "You answer questions about MLflow.")
	p.wantText("#span-outputs .chat-assistant", "A logged model is an MLflow 3 model entity.")
	p.wantText(".span-attrs", "llm.provider", "openai")
	p.click("#span-inputs .value-toggle")
	p.wantText("#span-inputs .json-view", "temperature", "gpt-4o-mini")
	shotOf(p, "trace-span-llm", ".trace-layout")

	// The failing tool: the exception with its stack trace.
	p.click(`#span-tree .span-row[data-span-id="` + b64hex(t, trSpanID(4)) + `"]`)
	p.wantText("#span-details .span-exception", "ValueError", "glossary service unavailable")
	p.wantCount(`#span-tree .span-row.is-error`, 1)
	p.shot("trace-page")

	// Collapse the root: one row left; keyboard opens it again.
	p.click("#spans-collapse-all")
	p.wantCount("#span-tree .span-row", 1) // collapsed
	p.click("#spans-expand-all")
	p.wantCount("#span-tree .span-row", 4) // expanded

	// Assessments: the seeded two, then add, edit and delete feedback.
	p.wantText("#trace-assessments", "correctness", "true", "Matches the docs.", "llm_judge", "gpt-judge", "relevance", "0.8")
	p.click("#assessment-add")
	p.run("assessment dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-name")))
	rmFill(p, "#dlg-name", "helpfulness")
	rmFill(p, "#dlg-value", "4")
	rmFill(p, "#dlg-rationale", "Clear <answer>.")
	p.dialogSubmit()
	rmWait(p, "assessment added", `document.body.dataset.ready === 'true' && document.querySelector('#trace-assessments')?.textContent.includes('helpfulness')`)
	find := func(name string) map[string]any {
		for _, a := range api.traceInfo(chatID)["assessments"].([]any) {
			if m := a.(map[string]any); m["assessment_name"] == name {
				return m
			}
		}
		return nil
	}
	a := find("helpfulness")
	if a == nil || fmt.Sprint(a["feedback"].(map[string]any)["value"]) != "4" || a["rationale"] != "Clear <answer>." ||
		a["source"].(map[string]any)["source_type"] != "HUMAN" {
		t.Fatalf("added assessment %v", a)
	}
	p.click(`button[aria-label="Edit assessment helpfulness"]`)
	p.run("edit dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-value")))
	rmFill(p, "#dlg-value", `{"score": 5, "label": "great"}`)
	p.dialogSubmit()
	rmWait(p, "assessment edited", `document.querySelector('#trace-assessments')?.textContent.includes('"label":"great"')`)
	if a := find("helpfulness"); a == nil || a["feedback"].(map[string]any)["value"].(map[string]any)["label"] != "great" {
		t.Errorf("edited assessment %v", a)
	}
	p.click(`button[aria-label="Delete assessment relevance"]`)
	p.dialogSubmit()
	rmWait(p, "assessment deleted", `!document.querySelector('#trace-assessments')?.textContent.includes('relevance')`)
	if find("relevance") != nil {
		t.Errorf("relevance still stored")
	}

	// A tag.
	p.click("#trace-add-tag")
	p.run("tag dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-key")))
	rmFill(p, "#dlg-key", "reviewed")
	rmFill(p, "#dlg-value", "yes")
	p.dialogSubmit()
	rmWait(p, "tag added", `document.querySelector('#trace-tags tr[data-key="reviewed"]') !== null`)
	if tags := api.traceInfo(chatID)["tags"].(map[string]any); tags["reviewed"] != "yes" {
		t.Errorf("tags %v", tags)
	}
	p.clearToasts()
	p.shot("trace-page-assessments")

	// A deep link with the chosen span.
	p.open(tracePath+"?span="+trSpanID(3), "trace")
	p.wantText("#span-details", "openai.chat.completions")

	// MLflow's trace links.
	for hash, want := range map[string]string{
		"#/experiments/" + expID + "?compareRunsMode=TRACES&selectedTraceId=" + chatID: tracePath,
		"#/experiments/" + expID + "/traces?selectedEvaluationId=" + chatID:            tracePath,
		"#/experiments/" + expID + "/traces/" + chatID:                                 tracePath,
		"#/experiments/" + expID + "/traces":                                           "/experiments/" + expID + "/traces",
		"#/experiments/" + expID + "?compareRunsMode=TRACES":                           "/experiments/" + expID + "/traces",
	} {
		page := "trace"
		if !strings.Contains(want, chatID) {
			page = "traces"
		}
		p.open("/"+hash, page)
		if got := p.location(); got != want {
			t.Errorf("%s landed on %s, want %s", hash, got, want)
		}
	}

	// A trace named under another experiment's address moves to its own.
	other := api.createExperiment("elsewhere")
	p.open("/experiments/"+other+"/traces/"+chatID, "trace")
	if got := p.location(); got != tracePath {
		t.Errorf("wrong-experiment address went to %s", got)
	}
	// An unknown trace says so.
	p.open("/experiments/"+expID+"/traces/tr-00000000000000000000000000000000", "trace")
	p.wantText("main", "Trace not available")
	p.allowErrors()

	// Delete the trace from its page.
	p.open(tracePath, "trace")
	p.click("#trace-delete")
	p.dialogSubmit()
	p.run("back on the tab", waitPage("traces"))
	if n := p.count(fmt.Sprintf(`#traces-table tr[data-trace-id=%q]`, chatID)); n != 0 {
		t.Errorf("deleted trace still listed")
	}

	// Span times are read without BigInt, to the microsecond.
	if bad := value(p, "nanosMs", chromedp.Evaluate[string](`(async () => {
		const m = await import('/static/pages/trace.js');
		const out = [];
		for (const s of ['1700000000123456789', '1700000000000000001', '999', '0', '', 'x', '-5', '1e9', 1500000, undefined]) {
			let want = 0;
			try { const b = BigInt(s || 0); if (b > 0n) want = Number(b) / 1e6; } catch { want = 0; }
			if (Math.abs(m.nanosMs(s) - want) > 1e-3) out.push(String(s) + ': ' + m.nanosMs(s) + ' != ' + want);
		}
		return out.join('; ');
	})()`, chromedp.EvalAwaitPromise)); bad != "" {
		t.Errorf("nanosMs: %s", bad)
	}

	// A phone.
	phone := newPage(t, srv.URL, phoneWidth, phoneHeight)
	errPath := "/experiments/" + expID + "/traces/" + trTraceID(2)
	phone.open(errPath, "trace")
	phone.wantText("#span-details", "boom")
	phone.shot("trace-page-phone")
}

// getStatus GETs path without credentials and returns the status.
func getStatus(t *testing.T, srv *caddytest.Server, path string) int {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
