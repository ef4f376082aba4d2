package browser

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api/replay"
)

const mlflow3SpanExport = "../../testdata/conformance-mlflow3/mlflow3_span_export.jsonl"

// tracesOf returns the trace ids a transcript's steps read back with
// get_trace (GET /api/3.0/mlflow/traces/{id}), by step.
func tracesOf(t *testing.T, file string) map[string]string {
	t.Helper()
	exs, err := replay.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ex := range exs {
		if id, ok := strings.CutPrefix(ex.Path, "/api/3.0/mlflow/traces/"); ok && ex.Method == "GET" && strings.HasPrefix(id, "tr-") {
			out[ex.Step] = id
		}
	}
	return out
}

// TestMLflow3ClientTraces replays what MLflow 3's Python client sent for
// an @mlflow.trace-instrumented app (spans over OTLP, one per request,
// children first, then StartTraceV3) into a real Caddy, then checks that
// the Traces tab lists both traces and that the trace page shows the span
// tree the client built: the root and its three children, their types,
// the root's inputs and outputs, the token usage, and the failing trace's
// exception.
func TestMLflow3ClientTraces(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	res, err := replay.Replay(context.Background(), srv.URL, mlflow3SpanExport, replay.Options{Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 {
		t.Fatalf("replaying the MLflow 3 client's exchanges: %v", res.Failures)
	}
	ids := tracesOf(t, mlflow3SpanExport)
	okID, errID := ids["get_trace_ok"], ids["get_trace_error"]
	if okID == "" || errID == "" {
		t.Fatalf("trace ids in the transcript: %v", ids)
	}
	api := newREST(t, srv)
	exp := api.call("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name="+url.QueryEscape("mlflow3-tracing"), nil)
	expID := exp["experiment"].(map[string]any)["experiment_id"].(string)

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments/"+expID+"/traces", "traces")
	if got := traceRowIDs(p); strings.Join(got, ",") != errID+","+okID {
		t.Fatalf("Traces tab rows %v, want %s (newest) then %s", got, errID, okID)
	}
	p.wantText(fmt.Sprintf(`#traces-table tr[data-trace-id=%q]`, okID), "agent", "What is the weather in Paris?", "It is sunny in Paris 21.5", "OK", "19")
	p.wantText(fmt.Sprintf(`#traces-table tr[data-trace-id=%q]`, errID), "failing", "Error")

	p.click(fmt.Sprintf(`#traces-table tr[data-trace-id=%q] a.trace-link`, okID))
	p.run("trace page", waitPage("trace"))
	p.wantText("h1", "agent")
	p.wantText("#trace-summary", okID, "19 (in 12, out 7)")
	rows := value(p, "span rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#span-tree .span-row')].sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map((r) => r.getAttribute('aria-level') + ':' + r.querySelector('.span-name').textContent)`))
	if got := strings.Join(rows, ","); got != "1:agent,2:lookup,2:format,2:llm_call" {
		t.Errorf("span tree rows %s", got)
	}
	p.wantText("#span-tree", "AGENT", "TOOL", "PARSER", "CHAT_MODEL")
	p.wantText("#span-details", "agent", "AGENT")
	p.wantText("#span-inputs", "What is the weather in Paris?")
	p.wantText("#span-outputs", "It is sunny in Paris 21.5")
	p.shot("mlflow3-client-trace")

	p.open("/experiments/"+expID+"/traces/"+errID, "trace")
	p.wantText("h1", "failing")
	p.wantText("#span-details .span-exception", "ValueError", "boom 3")
}
