package api

import (
	"encoding/json"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TestOTLPSemanticConventions exports, in one OTLP request, a trace whose
// root is an OpenInference LLM span and a trace whose root is a Traceloop
// workflow span (with an OpenLLMetry model call under it), and reads both
// back: span types, inputs, outputs and token usage come from the
// conventions' attributes, and so do the traces' previews, token usage and
// span-type search, as on MLflow's own server.
func TestOTLPSemanticConventions(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "semconv")
	tlTraceID := []byte{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	const tlMLflowID = "tr-fedcba9876543210fedcba9876543210"
	sid := func(b byte) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, b} }
	const t0 = 1_700_000_000_000_000_000
	oiIn := `{"messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of France?"}]}`
	oiOut := `{"choices": [{"message": {"role": "assistant", "content": "Paris."}}]}`
	tlIn := `{"inputs": {"question": "capital of France"}, "tags": [], "metadata": {}, "kwargs": {}}`
	tlOut := `{"outputs": "Paris"}`
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{
		{Scope: &commonpb.InstrumentationScope{Name: "openinference.instrumentation.openai"}, Spans: []*tracepb.Span{
			{TraceId: otlpTraceID, SpanId: sid(1), Name: "ChatCompletion", StartTimeUnixNano: t0, EndTimeUnixNano: t0 + 2e9,
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
				Attributes: []*commonpb.KeyValue{strAttr("openinference.span.kind", "LLM"), strAttr("input.value", oiIn),
					strAttr("input.mime_type", "application/json"), strAttr("output.value", oiOut),
					strAttr("output.mime_type", "application/json"), strAttr("llm.model_name", "gpt-4o-mini"),
					strAttr("llm.provider", "openai"), intAttr("llm.token_count.prompt", 21),
					intAttr("llm.token_count.completion", 3), intAttr("llm.token_count.total", 24)}},
		}},
		{Scope: &commonpb.InstrumentationScope{Name: "traceloop.tracer"}, Spans: []*tracepb.Span{
			{TraceId: tlTraceID, SpanId: sid(2), ParentSpanId: sid(1), Name: "openai.chat", StartTimeUnixNano: t0 + 1e6, EndTimeUnixNano: t0 + 5e8,
				Attributes: []*commonpb.KeyValue{strAttr("llm.request.type", "chat"), strAttr("gen_ai.system", "openai"),
					strAttr("gen_ai.request.model", "gpt-4o"), strAttr("gen_ai.prompt.0.role", "user"),
					strAttr("gen_ai.prompt.0.content", "capital of France"), strAttr("gen_ai.completion.0.content", "Paris"),
					intAttr("gen_ai.usage.prompt_tokens", 8), intAttr("gen_ai.usage.completion_tokens", 1), intAttr("llm.usage.total_tokens", 9)}},
			{TraceId: tlTraceID, SpanId: sid(1), Name: "qa.workflow", StartTimeUnixNano: t0, EndTimeUnixNano: t0 + 1e9,
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
				Attributes: []*commonpb.KeyValue{strAttr("traceloop.span.kind", "workflow"), strAttr("traceloop.workflow.name", "qa"),
					strAttr("traceloop.entity.name", "qa"), strAttr("traceloop.entity.input", tlIn), strAttr("traceloop.entity.output", tlOut)}},
		}},
	}}}}
	wantStatus(t, otlpPost(t, ts, exp, "application/x-protobuf", "", mustProto(t, req)), 200)

	type spanData struct {
		Name       string            `json:"name"`
		Attributes map[string]string `json:"attributes"`
	}
	read := func(id string) (traceInfoV3, map[string]spanData) {
		t.Helper()
		r := v3(t, ts, "GET", "traces/get?trace_id="+id, nil)
		wantStatus(t, r, 200)
		var got struct {
			Trace struct {
				Info traceInfoV3 `json:"trace_info"`
			} `json:"trace"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		r = call(t, ts, "GET", "/ajax-api/3.0/mlflow/get-trace-artifact?request_id="+id, "", nil)
		wantStatus(t, r, 200)
		var data struct {
			Spans []spanData `json:"spans"`
		}
		if err := json.Unmarshal(r.body, &data); err != nil {
			t.Fatalf("trace data %v: %s", err, r.body)
		}
		spans := map[string]spanData{}
		for _, s := range data.Spans {
			spans[s.Name] = s
		}
		return got.Trace.Info, spans
	}
	wantSpan := func(s spanData, want map[string]string) {
		t.Helper()
		for k, w := range want {
			if s.Attributes[k] != w {
				t.Errorf("span %s: %s = %q, want %q", s.Name, k, s.Attributes[k], w)
			}
		}
	}

	info, spans := read(otlpMLflowID)
	if info.State != "OK" || info.RequestPreview != "What is the capital of France?" || info.ResponsePreview != "Paris." {
		t.Errorf("OpenInference trace info %+v", info)
	}
	if u := info.TraceMetadata["mlflow.trace.tokenUsage"]; u != `{"input_tokens":21,"output_tokens":3,"total_tokens":24}` {
		t.Errorf("OpenInference token usage %q", u)
	}
	wantSpan(spans["ChatCompletion"], map[string]string{"mlflow.spanType": `"LLM"`, "mlflow.spanInputs": oiIn, "mlflow.spanOutputs": oiOut,
		"mlflow.chat.tokenUsage": `{"input_tokens": 21, "output_tokens": 3, "total_tokens": 24}`,
		"mlflow.llm.model":       `"gpt-4o-mini"`, "mlflow.llm.provider": `"openai"`, "openinference.span.kind": `"LLM"`})

	info, spans = read(tlMLflowID)
	if info.State != "OK" || info.RequestPreview != tlIn || info.ResponsePreview != tlOut {
		t.Errorf("Traceloop trace info %+v", info)
	}
	if u := info.TraceMetadata["mlflow.trace.tokenUsage"]; u != `{"input_tokens":8,"output_tokens":1,"total_tokens":9}` {
		t.Errorf("Traceloop token usage %q", u)
	}
	wantSpan(spans["qa.workflow"], map[string]string{"mlflow.spanType": `"WORKFLOW"`, "mlflow.spanInputs": tlIn, "mlflow.spanOutputs": tlOut,
		"traceloop.entity.input": tlIn})
	wantSpan(spans["openai.chat"], map[string]string{"mlflow.spanType": `"LLM"`, "mlflow.spanInputs": `"capital of France"`,
		"mlflow.spanOutputs": `"Paris"`, "mlflow.chat.tokenUsage": `{"input_tokens": 8, "output_tokens": 1, "total_tokens": 9}`,
		"mlflow.llm.model": `"gpt-4o"`, "mlflow.llm.provider": `"openai"`})
	if _, ok := spans["qa.workflow"].Attributes["mlflow.chat.tokenUsage"]; ok {
		t.Error("the workflow span got token usage")
	}

	// The span types are searchable.
	locations := []any{map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}}}
	for filter, want := range map[string]string{"span.type = 'WORKFLOW'": tlMLflowID, "span.type = 'LLM' AND span.name = 'ChatCompletion'": otlpMLflowID} {
		r := v3(t, ts, "POST", "traces/search", map[string]any{"filter": filter, "locations": locations})
		wantStatus(t, r, 200)
		l, _ := r.json(t)["traces"].([]any)
		if len(l) != 1 || l[0].(map[string]any)["trace_id"] != want {
			t.Errorf("filter %q: %v, want %s", filter, l, want)
		}
	}
}
