package otlpspans

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

func sv(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func iv(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func dv(k string, v float64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v}}}
}

func av(k string, vs ...string) *commonpb.KeyValue {
	vals := make([]*commonpb.AnyValue, len(vs))
	for i, v := range vs {
		vals[i] = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}
	}
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}}}
}

func ev(name string, attrs ...*commonpb.KeyValue) *tracepb.Span_Event {
	return &tracepb.Span_Event{Name: name, TimeUnixNano: 5, Attributes: attrs}
}

// convertRoot sends one root span through an OTLP protobuf export (marshalled
// and unmarshalled, as the endpoint reads it) and returns its stored
// attributes (each value's stored text), its batch and the span.
func convertRoot(t *testing.T, attrs []*commonpb.KeyValue, events ...*tracepb.Span_Event) (map[string]string, tracking.SpanBatch) {
	t.Helper()
	body, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
		{TraceId: bytes.Repeat([]byte{7}, 16), SpanId: bytes.Repeat([]byte{1}, 8), Name: "s", StartTimeUnixNano: 1e6, EndTimeUnixNano: 2e6,
			Attributes: attrs, Events: events}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := Unmarshal(body, ContentTypeProtobuf, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	batches, err := Convert(req)
	if err != nil || len(batches) != 1 || len(batches[0].Spans) != 1 {
		t.Fatalf("convert: %v %v", batches, err)
	}
	var content struct {
		Attributes map[string]string `json:"attributes"`
	}
	if err := json.Unmarshal(batches[0].Spans[0].Content, &content); err != nil {
		t.Fatalf("content %s: %v", batches[0].Spans[0].Content, err)
	}
	return content.Attributes, batches[0]
}

// wantAttrs checks stored attribute texts; "" wants the attribute absent.
func wantAttrs(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case w == "" && ok:
			t.Errorf("%s = %s, want it absent", k, g)
		case w != "" && g != w:
			t.Errorf("%s = %q, want %q", k, g, w)
		}
	}
}

func TestOpenInferenceSpan(t *testing.T) {
	in := `{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is 2+2?"}]}`
	out := `{"choices": [{"message": {"role": "assistant", "content": "4"}}]}`
	attrs, b := convertRoot(t, []*commonpb.KeyValue{
		sv("openinference.span.kind", "LLM"), sv("input.value", in), sv("input.mime_type", "application/json"),
		sv("output.value", out), iv("llm.token_count.prompt", 12), iv("llm.token_count.completion", 1),
		iv("llm.token_count.total", 13), sv("llm.model_name", "gpt-4o-mini"), sv("llm.provider", "openai"),
	})
	wantAttrs(t, attrs, map[string]string{
		AttrSpanType: `"LLM"`, AttrInputs: in, AttrOutputs: out,
		AttrTokenUsage: `{"input_tokens": 12, "output_tokens": 1, "total_tokens": 13}`,
		AttrModel:      `"gpt-4o-mini"`, AttrModelProvider: `"openai"`,
		// The original attributes are kept.
		"openinference.span.kind": `"LLM"`, "input.value": in, "llm.token_count.total": `13`,
		AttrMessageFormat: "", AttrChatTools: "",
	})
	if b.Spans[0].Type != "LLM" || b.RequestPreview != "What is 2+2?" || b.ResponsePreview != "4" ||
		b.TokenUsage["input_tokens"] != 12 || b.TokenUsage["total_tokens"] != 13 {
		t.Fatalf("batch %+v", b)
	}

	// Without a total, it is the sum; a plain-text value is stored as
	// the JSON string it is.
	attrs, b = convertRoot(t, []*commonpb.KeyValue{
		sv("openinference.span.kind", "CHAIN"), sv("input.value", "hello"), iv("llm.token_count.prompt", 2),
		iv("llm.token_count.completion", 3),
	})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"CHAIN"`, AttrInputs: `"hello"`, AttrOutputs: "",
		AttrTokenUsage: `{"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}`})
	if b.RequestPreview != `"hello"` || b.ResponsePreview != "" {
		t.Fatalf("batch %+v", b)
	}

	// UNKNOWN is a kind of its own: it ends the search (the GenAI
	// operation is not looked at). An unmapped kind does not.
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("openinference.span.kind", "UNKNOWN"), sv("gen_ai.operation.name", "chat")})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"UNKNOWN"`})
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("openinference.span.kind", "PROMPT"), sv("gen_ai.operation.name", "chat")})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"CHAT_MODEL"`})
	// Embedding spans name their model differently; an empty value is
	// skipped.
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("openinference.span.kind", "EMBEDDING"), sv("llm.model_name", ""),
		sv("embedding.model_name", "text-embedding-3-small"), sv("input.value", "")})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"EMBEDDING"`, AttrModel: `"text-embedding-3-small"`, AttrInputs: ""})
}

func TestTraceloopSpans(t *testing.T) {
	in := `{"inputs": {"question": "why?"}, "tags": [], "metadata": {}, "kwargs": {"run_type": null}}`
	attrs, b := convertRoot(t, []*commonpb.KeyValue{
		sv("traceloop.span.kind", "workflow"), sv("traceloop.entity.name", "qa"), sv("traceloop.entity.input", in),
		sv("traceloop.entity.output", `"because"`),
	})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"WORKFLOW"`, AttrInputs: in, AttrOutputs: `"because"`, AttrTokenUsage: "",
		"traceloop.span.kind": `"workflow"`})
	if b.Spans[0].Type != "WORKFLOW" || b.RequestPreview != in || b.ResponsePreview != `"because"` || b.TokenUsage != nil {
		t.Fatalf("batch %+v", b)
	}

	// An OpenLLMetry model call: indexed prompt and completion
	// attributes, OpenLLMetry's token names, gen_ai.system as provider;
	// the requested model makes it an LLM span (MLflow's LiveKit rule).
	attrs, b = convertRoot(t, []*commonpb.KeyValue{
		sv("llm.request.type", "chat"), sv("gen_ai.system", "openai"), sv("gen_ai.request.model", "gpt-4o"),
		sv("gen_ai.response.model", "gpt-4o-2024-08-06"), sv("gen_ai.prompt.0.role", "user"),
		sv("gen_ai.prompt.0.content", "Tell me a joke"), sv("gen_ai.completion.0.role", "assistant"),
		sv("gen_ai.completion.0.content", "No."), iv("gen_ai.usage.prompt_tokens", 9), iv("gen_ai.usage.completion_tokens", 2),
		iv("llm.usage.total_tokens", 12),
	})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"LLM"`, AttrInputs: `"Tell me a joke"`, AttrOutputs: `"No."`,
		AttrTokenUsage: `{"input_tokens": 9, "output_tokens": 2, "total_tokens": 12}`,
		AttrModel:      `"gpt-4o-2024-08-06"`, AttrModelProvider: `"openai"`})
	if b.RequestPreview != `"Tell me a joke"` || b.TokenUsage["total_tokens"] != 12 {
		t.Fatalf("batch %+v", b)
	}

	// Tool-call arguments are the inputs when there is no prompt.
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("traceloop.span.kind", "tool"),
		sv("gen_ai.completion.0.tool_calls.0.arguments", `{"city": "Paris"}`)})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"TOOL"`, AttrInputs: `{"city": "Paris"}`})
}

func TestOTelGenAISpan(t *testing.T) {
	msgs := `[{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]`
	outMsgs := `[{"role": "assistant", "parts": [{"type": "text", "content": "Sunny"}], "finish_reason": "stop"}]`
	tools := `[{"type": "function", "name": "get_weather"}]`
	attrs, b := convertRoot(t, []*commonpb.KeyValue{
		sv("gen_ai.operation.name", "chat"), sv("gen_ai.provider.name", "openai"), sv("gen_ai.system", "other"),
		sv("gen_ai.request.model", "gpt-4o"), sv("gen_ai.response.model", "gpt-4o-2024-08-06"),
		sv("gen_ai.input.messages", msgs), sv("gen_ai.output.messages", outMsgs), sv("gen_ai.tool.definitions", tools),
		iv("gen_ai.usage.input_tokens", 100), iv("gen_ai.usage.output_tokens", 50), iv("gen_ai.usage.cache_read.input_tokens", 80),
	})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"CHAT_MODEL"`, AttrInputs: msgs, AttrOutputs: outMsgs, AttrChatTools: tools,
		AttrTokenUsage: `{"input_tokens": 100, "output_tokens": 50, "total_tokens": 150, "cache_read_input_tokens": 80}`,
		AttrModel:      `"gpt-4o-2024-08-06"`, AttrModelProvider: `"openai"`})
	if b.TokenUsage["cache_read_input_tokens"] != 80 || b.TokenUsage["total_tokens"] != 150 {
		t.Fatalf("batch %+v", b)
	}

	// A tool execution: arguments and result; one count alone makes no
	// total, and a count given as a string is read.
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("gen_ai.operation.name", "execute_tool"),
		sv("gen_ai.tool.call.arguments", `{"city": "Paris"}`), sv("gen_ai.tool.call.result", "sunny"), sv("gen_ai.usage.input_tokens", "7")})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"TOOL"`, AttrInputs: `{"city": "Paris"}`, AttrOutputs: `"sunny"`,
		AttrTokenUsage: `{"input_tokens": 7}`})
	// Counts that are no integers give no usage; unknown operations no type.
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("gen_ai.operation.name", "fly"), dv("gen_ai.usage.input_tokens", 1.5),
		sv("gen_ai.usage.output_tokens", "many")})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: "", AttrTokenUsage: ""})

	// Message events give the inputs and outputs when no attribute does.
	attrs, b = convertRoot(t, []*commonpb.KeyValue{sv("gen_ai.operation.name", "chat")},
		ev("gen_ai.system.message", sv("content", "be nice")), ev("gen_ai.user.message", sv("content", `{"text": "héllo"}`)),
		ev("gen_ai.user.message", sv("content", "")), ev("gen_ai.choice", sv("content", "hi"), iv("index", 0)))
	wantAttrs(t, attrs, map[string]string{
		AttrInputs:  `[{"role": "system", "content": "be nice"}, {"role": "user", "content": {"text": "h\u00e9llo"}}]`,
		AttrOutputs: `[{"role": "assistant", "content": "hi"}]`})
	if b.ResponsePreview != `[{"role": "assistant", "content": "hi"}]` {
		t.Fatalf("batch %+v", b)
	}
}

// TestMLflowAttributesWin: a span's own MLflow attributes are kept; only a
// missing or UNKNOWN type is replaced.
func TestMLflowAttributesWin(t *testing.T) {
	attrs, b := convertRoot(t, []*commonpb.KeyValue{
		sv("mlflow.spanType", `"CHAIN"`), sv("mlflow.spanInputs", `{"q": 1}`), sv("mlflow.chat.tokenUsage", `{"input_tokens": 1}`),
		sv("mlflow.llm.model", `"mine"`),
		sv("openinference.span.kind", "LLM"), sv("input.value", "other"), sv("output.value", "out"), iv("llm.token_count.prompt", 50),
		sv("llm.model_name", "theirs"),
	})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"CHAIN"`, AttrInputs: `{"q": 1}`, AttrOutputs: `"out"`,
		AttrTokenUsage: `{"input_tokens": 1}`, AttrModel: `"mine"`})
	if b.Spans[0].Type != "CHAIN" || b.TokenUsage["input_tokens"] != 1 {
		t.Fatalf("batch %+v", b)
	}
	null := &commonpb.KeyValue{Key: "mlflow.spanType", Value: &commonpb.AnyValue{}}
	for _, cur := range []*commonpb.KeyValue{sv("mlflow.spanType", `"UNKNOWN"`), sv("mlflow.spanType", "UNKNOWN"), null} {
		attrs, b = convertRoot(t, []*commonpb.KeyValue{cur, sv("traceloop.span.kind", "task")})
		if attrs[AttrSpanType] != `"TASK"` || b.Spans[0].Type != "TASK" {
			t.Errorf("type %v: %v", cur, attrs)
		}
	}
	// An empty type is a type (MLflow compares the decoded value).
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("mlflow.spanType", ""), sv("traceloop.span.kind", "task")})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `""`})
}

// TestConventionPrecedence: the conventions are tried in MLflow's order,
// each aspect on its own.
func TestConventionPrecedence(t *testing.T) {
	attrs, _ := convertRoot(t, []*commonpb.KeyValue{
		sv("traceloop.span.kind", "tool"), sv("traceloop.entity.input", "tl-in"), iv("gen_ai.usage.prompt_tokens", 3),
		sv("openinference.span.kind", "AGENT"), sv("input.value", "oi-in"),
		sv("gen_ai.operation.name", "chat"), sv("gen_ai.input.messages", "genai-in"), iv("gen_ai.usage.input_tokens", 4),
		sv("traceloop.entity.output", "tl-out"), sv("gen_ai.system", "sys"), sv("gen_ai.provider.name", "prov"),
	})
	// OpenInference first, then the GenAI conventions, then Traceloop.
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"AGENT"`, AttrInputs: `"oi-in"`, AttrOutputs: `"tl-out"`,
		AttrTokenUsage: `{"input_tokens": 4}`, AttrModelProvider: `"prov"`})
}

func TestVercelAISpans(t *testing.T) {
	// A model call: the ai.prompt.* and ai.response.* attributes become one
	// object each (tools decoded) and the span is marked vercel_ai.
	attrs, b := convertRoot(t, []*commonpb.KeyValue{
		sv("ai.operationId", "ai.generateText.doGenerate"), sv("ai.prompt.format", "messages"),
		sv("ai.prompt.messages", `[{"role":"user","content":[{"type":"text","text":"hi ✓"}]}]`),
		av("ai.prompt.tools", `{"type":"function","name":"t"}`), sv("ai.response.text", "hello"), sv("ai.response.finishReason", "stop"),
		iv("gen_ai.usage.input_tokens", 3), iv("gen_ai.usage.output_tokens", 1), sv("gen_ai.request.model", "gpt-4o"),
	})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"LLM"`,
		AttrInputs:        `{"format": "messages", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi \u2713"}]}], "tools": [{"type": "function", "name": "t"}]}`,
		AttrOutputs:       `{"text": "hello", "finishReason": "stop"}`,
		AttrMessageFormat: "vercel_ai", AttrModel: `"gpt-4o"`,
		AttrTokenUsage: `{"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}`})
	if b.RequestPreview != "hi ✓" {
		t.Fatalf("request preview %q", b.RequestPreview)
	}
	// Other spans read their own keys.
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("ai.operationId", "ai.toolCall"), sv("ai.toolCall.args", `{"x": 1}`),
		sv("ai.toolCall.result", `{"y": 2}`)})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"TOOL"`, AttrInputs: `{"x": 1}`, AttrOutputs: `{"y": 2}`, AttrMessageFormat: ""})
	attrs, _ = convertRoot(t, []*commonpb.KeyValue{sv("ai.operationId", "ai.embedMany"), av("ai.values", "a", "b")})
	wantAttrs(t, attrs, map[string]string{AttrSpanType: `"EMBEDDING"`, AttrInputs: `["a","b"]`})
}

func TestOtherConventions(t *testing.T) {
	for _, c := range []struct {
		name  string
		attrs []*commonpb.KeyValue
		evs   []*tracepb.Span_Event
		want  map[string]string
	}{
		{"Google ADK", []*commonpb.KeyValue{sv("gen_ai.operation.name", "call_llm"), sv("gcp.vertex.agent.llm_request", `{"model": "gemini-2.0-flash", "contents": []}`),
			sv("gcp.vertex.agent.llm_response", `{"content": {"parts": [{"text": "ok"}]}}`), iv("gen_ai.usage.input_tokens", 5)},
			nil, map[string]string{AttrSpanType: "", AttrInputs: `{"model": "gemini-2.0-flash", "contents": []}`,
				AttrOutputs: `{"content": {"parts": [{"text": "ok"}]}}`, AttrModel: `"gemini-2.0-flash"`, AttrTokenUsage: `{"input_tokens": 5}`}},
		{"Gemini CLI", []*commonpb.KeyValue{sv("gen_ai.agent.name", "gemini-cli"), sv("gen_ai.operation.name", "llm_call"),
			sv("gen_ai.input.messages", `[{"role": "user", "parts": [{"text": "hi"}]}]`),
			sv("gen_ai.output.messages", `[{"role": "model", "parts": [{"text": "a"}]}, {"role": "model", "parts": [{"text": "b"}]}]`)},
			nil, map[string]string{AttrSpanType: `"LLM"`, AttrMessageFormat: `"gemini"`,
				AttrInputs:  `{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}`,
				AttrOutputs: `{"candidates": [{"content": {"role": "model", "parts": [{"text": "a"}, {"text": "b"}]}}]}`}},
		{"Gemini CLI names are Gemini CLI's only", []*commonpb.KeyValue{sv("gen_ai.operation.name", "llm_call"), sv("gen_ai.input.messages", "x")},
			nil, map[string]string{AttrSpanType: "", AttrMessageFormat: "", AttrInputs: `"x"`}},
		{"Spring AI", []*commonpb.KeyValue{sv("gen_ai.operation.name", "chat")},
			[]*tracepb.Span_Event{ev("gen_ai.content.prompt", sv("gen_ai.prompt", "Tell me a joke")),
				ev("gen_ai.content.completion", sv("gen_ai.completion", "No."))},
			// MLflow stores these event strings as they are, not JSON-encoded.
			map[string]string{AttrSpanType: `"CHAT_MODEL"`, AttrInputs: "Tell me a joke", AttrOutputs: "No."}},
		{"VoltAgent", []*commonpb.KeyValue{sv("entity.type", "agent"), sv("span.type", "memory"), sv("voltagent.operation_id", "o"),
			sv("input", "q"), iv("llm.usage.prompt_tokens", 4), iv("usage.completion_tokens", 6)},
			nil, map[string]string{AttrSpanType: `"MEMORY"`, AttrMessageFormat: `"voltagent"`, AttrInputs: `"q"`,
				AttrTokenUsage: `{"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}`}},
		{"VoltAgent root agent", []*commonpb.KeyValue{sv("entity.type", "agent"), sv("agent.messages", `[{"role": "user", "content": "hi"}]`)},
			nil, map[string]string{AttrSpanType: `"AGENT"`, AttrInputs: `[{"role": "user", "content": "hi"}]`}},
		{"LiveKit", []*commonpb.KeyValue{sv("lk.room_name", "r"), sv("lk.function_tool.name", "lookup"), sv("lk.response.text", "done")},
			nil, map[string]string{AttrSpanType: `"TOOL"`, AttrMessageFormat: `"livekit"`, AttrOutputs: `"done"`}},
		{"LiveKit operation case", []*commonpb.KeyValue{sv("gen_ai.operation.name", "Chat")}, nil, map[string]string{AttrSpanType: `"CHAT_MODEL"`}},
		{"Laminar", []*commonpb.KeyValue{sv("lmnr.span.type", "EXECUTOR"), sv("lmnr.span.input", `{"a": 1}`), sv("lmnr.span.output", "2")},
			nil, map[string]string{AttrSpanType: `"AGENT"`, AttrMessageFormat: `"openai"`, AttrInputs: `{"a": 1}`, AttrOutputs: `"2"`}},
		{"Langfuse", []*commonpb.KeyValue{sv("langfuse.observation.type", "generation"), sv("langfuse.observation.input", "in")},
			nil, map[string]string{AttrSpanType: `"LLM"`, AttrInputs: `"in"`}},
		{"model from the outputs", []*commonpb.KeyValue{sv("mlflow.spanInputs", `{"q": "x"}`), sv("mlflow.spanOutputs", `{"model": "m-1", "id": 3}`)},
			nil, map[string]string{AttrModel: `"m-1"`, AttrSpanType: ""}},
		{"a model that is no string ends the search", []*commonpb.KeyValue{sv("mlflow.spanInputs", `{"model": {"n": 1}}`),
			sv("mlflow.spanOutputs", `{"model": "m-1"}`)}, nil, map[string]string{AttrModel: ""}},
		{"plain span", []*commonpb.KeyValue{sv("http.method", "GET"), iv("n", 0)}, nil,
			map[string]string{AttrSpanType: "", AttrInputs: "", AttrOutputs: "", AttrTokenUsage: "", AttrModel: "", AttrMessageFormat: ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			attrs, _ := convertRoot(t, c.attrs, c.evs...)
			wantAttrs(t, attrs, c.want)
		})
	}
}

func TestTruthyAndCounts(t *testing.T) {
	for v, want := range map[string]bool{`""`: false, `" "`: true, `null`: false, `false`: false, `true`: true, `0`: false,
		`0.0`: false, `-0`: false, `3`: true, `[]`: false, `[ ]`: false, `[0]`: true, `{}`: false, `{ }`: false, `{"a":1}`: true,
		``: false, `raw text`: true} {
		if truthy(v) != want {
			t.Errorf("truthy(%q) = %v", v, !want)
		}
	}
	for v, want := range map[string]int64{`26`: 26, `"26"`: 26, `" 26 "`: 26, `-3`: -3} {
		if n, ok := parseIntAttr(v); !ok || n != want {
			t.Errorf("parseIntAttr(%q) = %d, %v", v, n, ok)
		}
	}
	for _, v := range []string{`26.0`, `"2.5"`, `true`, `[1]`, `"x"`, `null`, `1e3`} {
		if n, ok := parseIntAttr(v); ok {
			t.Errorf("parseIntAttr(%q) = %d", v, n)
		}
	}
	if !strings.Contains(loadJSON(`"\"[1]\""`, 3), "[1]") || loadJSON(`"abc"`, 3) != `"abc"` {
		t.Error("loadJSON")
	}
}

// BenchmarkConvertConventions converts exports of 100 spans: half MLflow
// client spans with 1 KiB inputs, half OpenInference model calls.
func BenchmarkConvertConventions(b *testing.B) {
	payload := `{"messages": [{"role": "user", "content": "` + strings.Repeat("x", 1000) + `"}]}`
	spans := make([]*tracepb.Span, 100)
	for i := range spans {
		sp := &tracepb.Span{TraceId: bytes.Repeat([]byte{7}, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 1, byte(i + 1)}, Name: "s",
			StartTimeUnixNano: 1e6, EndTimeUnixNano: 2e6, ParentSpanId: []byte{0, 0, 0, 0, 0, 0, 1, 1}}
		if i%2 == 0 {
			sp.Attributes = []*commonpb.KeyValue{sv("mlflow.spanType", `"CHAIN"`), sv("mlflow.spanInputs", payload), sv("mlflow.spanOutputs", `"ok"`)}
		} else {
			sp.Attributes = []*commonpb.KeyValue{sv("openinference.span.kind", "LLM"), sv("input.value", payload), sv("output.value", "ok"),
				iv("llm.token_count.prompt", 10), iv("llm.token_count.completion", 2), sv("llm.model_name", "gpt-4o")}
		}
		spans[i] = sp
	}
	spans[0].ParentSpanId = nil
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Convert(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
}

// FuzzConventions: any attribute and event values under the conventions'
// keys convert without panicking, into valid stored JSON.
func FuzzConventions(f *testing.F) {
	f.Add("ai.operationId", "ai.generateText.doGenerate", "ai.prompt.tools", `["{\"a\": 1}"]`, "gen_ai.user.message", "content", `"x"`)
	f.Add("gen_ai.agent.name", "gemini-cli", "gen_ai.output.messages", `[{"parts": [1, {"t": "é"}]}]`, "gen_ai.choice", "role", "u")
	f.Add("openinference.span.kind", "LLM", "llm.token_count.prompt", `"12"`, "gen_ai.content.prompt", "gen_ai.prompt", `[1]`)
	f.Add("mlflow.spanInputs", `{"model": 5}`, "mlflow.spanOutputs", `{"mod\u0065l": "m"}`, "x", "y", "")
	f.Add("lk.tts.x", "", "span.type", "memory", "gen_ai.system.message", "content", `{"k": [1.5e300, -0]}`)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, evName, evKey, evVal string) {
		body, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: bytes.Repeat([]byte{7}, 16), SpanId: bytes.Repeat([]byte{1}, 8),
				Attributes: []*commonpb.KeyValue{sv(k1, v1), sv(k2, v2), sv("ai.operationId", "ai.streamText.doStream"), sv("gen_ai.agent.name", "gemini-cli")},
				Events:     []*tracepb.Span_Event{ev(evName, sv(evKey, evVal))}}}}}}}})
		req, err := Unmarshal(body, ContentTypeProtobuf, Limits{})
		if err != nil {
			return
		}
		batches, err := Convert(req)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(batches[0].Spans[0].Content) {
			t.Fatalf("invalid content %s", batches[0].Spans[0].Content)
		}
	})
}
