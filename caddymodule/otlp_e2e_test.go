package caddymodule_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// otlpSpans records a trace of a root span with two nested children (as
// an instrumented Go program would) and returns the ended spans and the
// MLflow trace id ("tr-" + the OTLP trace id in hex).
func otlpSpans(t *testing.T) ([]sdktrace.ReadOnlySpan, string) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("caddy-mlflow-test")
	ctx, root := tr.Start(context.Background(), "agent")
	root.SetAttributes(attribute.String("mlflow.spanInputs", `{"messages": [{"role": "user", "content": "What is 2+2?"}]}`),
		attribute.String("mlflow.spanOutputs", `"4"`), attribute.String("mlflow.spanType", `"AGENT"`))
	ctx2, llm := tr.Start(ctx, "llm")
	llm.SetAttributes(attribute.String("gen_ai.operation.name", "chat"), attribute.Int("gen_ai.usage.input_tokens", 12),
		attribute.Int("gen_ai.usage.output_tokens", 3))
	_, tool := tr.Start(ctx2, "calculator")
	tool.AddEvent("called", trace.WithAttributes(attribute.String("expr", "2+2")))
	time.Sleep(2 * time.Millisecond)
	tool.End()
	llm.End()
	root.SetStatus(codes.Ok, "")
	root.End()
	return rec.Ended(), "tr-" + root.SpanContext().TraceID().String()
}

// exporter is the OpenTelemetry SDK's OTLP/HTTP exporter aimed at the
// test server as user (protobuf, gzip on request).
func (e *secureEnv) exporter(t *testing.T, auth, exp string, gz bool) *otlptrace.Exporter {
	t.Helper()
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(e.srv.URL + "/v1/traces"),
		otlptracehttp.WithTLSClientConfig(e.pki.ClientTLSConfig(nil)),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": auth, "x-mlflow-experiment-id": exp}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}
	if gz {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	x, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Shutdown(context.Background()) })
	return x
}

// otlpRaw posts an OTLP body as user.
func (e *secureEnv) otlpRaw(t *testing.T, auth, exp, ctype, encoding string, body []byte) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", auth)
	req.Header.Set("x-mlflow-experiment-id", exp)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// readTrace reads a trace with its spans through the v3 API.
func (e *secureEnv) readTrace(t *testing.T, auth, id string) (info obj, spans []obj) {
	t.Helper()
	out := e.must(t, "GET", "/api/3.0/mlflow/traces/get?trace_id="+id, auth, nil)
	tr := out["trace"].(obj)
	for _, s := range tr["spans"].([]any) {
		spans = append(spans, s.(obj))
	}
	return tr["trace_info"].(obj), spans
}

// TestOTLPExportThroughCaddy: the OpenTelemetry Go SDK's OTLP/HTTP
// exporter sends nested spans through the gateway (TLS, Basic auth, EDIT
// on the experiment of x-mlflow-experiment-id), protobuf with and without
// gzip, and a hand-built OTLP JSON body; each trace reads back with its
// spans through the v3 API; refusals and bad bodies get OTLP's answers and
// the audit log records the route and experiment.
func TestOTLPExportThroughCaddy(t *testing.T) { testOTLPExportThroughCaddy(t) }

// TestOTLPExportThroughCaddyPostgres is the same on the PostgreSQL store.
func TestOTLPExportThroughCaddyPostgres(t *testing.T) {
	t.Setenv(caddytest.EnvBackend, caddytest.BackendPostgres)
	testOTLPExportThroughCaddy(t)
}

func testOTLPExportThroughCaddy(t *testing.T) {
	e := startSecure(t, "NO_PERMISSIONS")
	f := setupFixture(t, e)
	admin, bob, carol := basic("root", adminPassword), basic("bob", bobPassword), basic("carol", carolPassword)
	ctx := context.Background()

	for _, gz := range []bool{false, true} {
		spans, id := otlpSpans(t)
		if err := e.exporter(t, bob, f.expID, gz).ExportSpans(ctx, spans); err != nil {
			t.Fatalf("export (gzip %v): %v", gz, err)
		}
		info, got := e.readTrace(t, bob, id)
		if info["trace_id"] != id || info["state"] != "OK" || info["request_preview"] != "What is 2+2?" || info["response_preview"] != `"4"` ||
			str(t, info, "trace_location", "mlflow_experiment", "experiment_id") != f.expID {
			t.Fatalf("trace info %v", info)
		}
		if u := str(t, info, "trace_metadata", "mlflow.trace.tokenUsage"); u != `{"input_tokens":12,"output_tokens":3,"total_tokens":15}` {
			t.Fatalf("token usage %q", u)
		}
		byName := map[string]obj{}
		for _, s := range got {
			byName[s["name"].(string)] = s
		}
		if len(got) != 3 || got[0]["name"] != "agent" || byName["calculator"]["parent_span_id"] != byName["llm"]["span_id"] ||
			byName["llm"]["parent_span_id"] != byName["agent"]["span_id"] {
			t.Fatalf("span tree %v", got)
		}
		if b, _ := json.Marshal(byName["llm"]); !strings.Contains(string(b), `{"key":"mlflow.spanType","value":{"string_value":"CHAT_MODEL"}}`) {
			t.Fatalf("llm span %s", b)
		}
	}

	// A hand-built OTLP JSON body (hex ids), gzip-compressed.
	jsonID := "5b8efff798038103d269b633813fc60c"
	body := fmt.Sprintf(`{"resourceSpans":[{"scopeSpans":[{"spans":[
		{"traceId":%q,"spanId":"eee19b7ec3c1b174","name":"json-root","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000","status":{"code":2,"message":"bad"}},
		{"traceId":%q,"spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174","name":"json-child","startTimeUnixNano":"1700000000500000000","endTimeUnixNano":"1700000000600000000"}]}]}]}`, jsonID, jsonID)
	var gzBody bytes.Buffer
	zw := gzip.NewWriter(&gzBody)
	_, _ = zw.Write([]byte(body))
	_ = zw.Close()
	if st, ct, b := e.otlpRaw(t, bob, f.expID, "application/json", "gzip", gzBody.Bytes()); st != 200 || ct != "application/json" || string(b) != "{}" {
		t.Fatalf("JSON export: %d %s %s", st, ct, b)
	}
	info, got := e.readTrace(t, bob, "tr-"+jsonID)
	if info["state"] != "ERROR" || info["execution_duration"] != "1s" || len(got) != 2 || got[0]["name"] != "json-root" {
		t.Fatalf("JSON trace %v %v", info, got)
	}

	// Authorization: carol may not write to the experiment (no
	// permission, then READ), nor name none.
	spans, carolID := otlpSpans(t)
	if err := e.exporter(t, carol, f.expID, false).ExportSpans(ctx, spans); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("carol's export without permission: %v", err)
	}
	e.must(t, "POST", "/api/2.0/mlflow/experiments/permissions/create", admin, obj{"experiment_id": f.expID, "username": "carol", "permission": "READ"})
	if err := e.exporter(t, carol, f.expID, false).ExportSpans(ctx, spans); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("carol's export with READ: %v", err)
	}
	if st, _, _ := e.otlpRaw(t, carol, "", "application/x-protobuf", "", []byte{}); st != 400 {
		t.Fatalf("no experiment header: %d", st)
	}
	if resp, _ := e.req(t, nil, "GET", "/api/3.0/mlflow/traces/"+carolID, admin, nil); resp.StatusCode != 404 {
		t.Fatalf("a refused export stored its trace: %d", resp.StatusCode)
	}

	// A trace of another experiment cannot be written through one the
	// caller may edit: carol owns "carol-exp"; her spans for bob's trace
	// are refused (partial success) and bob's trace is unchanged.
	carolExp := str(t, e.must(t, "POST", "/api/2.0/mlflow/experiments/create", carol, obj{"name": "carol-exp"}), "experiment_id")
	bobSpans, bobID := otlpSpans(t)
	if err := e.exporter(t, bob, f.expID, false).ExportSpans(ctx, bobSpans); err != nil {
		t.Fatal(err)
	}
	traceID, err := hex.DecodeString(strings.TrimPrefix(bobID, "tr-"))
	if err != nil || len(traceID) != 16 {
		t.Fatalf("trace id %q", bobID)
	}
	intrude := mustProtoE(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
		{TraceId: traceID, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "intruder", StartTimeUnixNano: 1, EndTimeUnixNano: 2,
			Attributes: []*commonpb.KeyValue{{Key: "mlflow.traceRequestId", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: `"tr-elsewhere"`}}}}}}}}}}})
	st, ct, b := e.otlpRaw(t, carol, carolExp, "application/x-protobuf", "", intrude)
	var resp coltracepb.ExportTraceServiceResponse
	if st != 200 || ct != "application/x-protobuf" || proto.Unmarshal(b, &resp) != nil || resp.GetPartialSuccess().GetRejectedSpans() != 1 {
		t.Fatalf("intrusion answer %d %s %x", st, ct, b)
	}
	if _, got := e.readTrace(t, bob, bobID); len(got) != 3 {
		t.Fatalf("bob's trace changed: %v", got)
	}

	// Bad bodies: OTLP error answers, never 5xx.
	good := mustProtoE(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
		{TraceId: bytes.Repeat([]byte{7}, 16), SpanId: bytes.Repeat([]byte{7}, 8), Name: "x"}}}}}}})
	deepV := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}
	for range 100 {
		deepV = &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{{Key: "k", Value: deepV}}}}}
	}
	deep := &coltracepb.ExportTraceServiceRequest{}
	proto.Merge(deep, mustUnmarshal(t, good))
	deep.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes = []*commonpb.KeyValue{{Key: "deep", Value: deepV}}
	many := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{}}}}}
	for i := range 10001 {
		many.ResourceSpans[0].ScopeSpans[0].Spans = append(many.ResourceSpans[0].ScopeSpans[0].Spans,
			&tracepb.Span{TraceId: bytes.Repeat([]byte{8}, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}})
	}
	for _, c := range []struct {
		name, ctype string
		body        []byte
		status      int
	}{
		{"truncated protobuf", "application/x-protobuf", good[:len(good)-3], 400},
		{"wrong content type", "text/plain", good, 415}, // OTLP/HTTP's status, MLflow's message
		{"oversized", "application/x-protobuf", bytes.Repeat([]byte{0x0a}, 17<<20), 413},
		{"too many spans", "application/x-protobuf", mustProtoE(t, many), 413},
		{"deep nesting", "application/x-protobuf", mustProtoE(t, deep), 400},
		{"malformed JSON", "application/json", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":`), 400},
	} {
		st, ct, b := e.otlpRaw(t, bob, f.expID, c.ctype, "", c.body)
		if st != c.status || (ct != "application/x-protobuf" && ct != "application/json") || len(b) == 0 {
			t.Errorf("%s: %d %s %q", c.name, st, ct, b)
		}
	}

	// The audit log names the route and the experiment, allowed and
	// denied.
	e.waitAudit(t, auditOf("ExportTraceSpans", "allowed", 200), auditOf("ExportTraceSpans", "denied", 403))
	var allowed, denied bool
	for _, r := range e.auditRecords(t) {
		if r["route"] != "ExportTraceSpans" {
			continue
		}
		res := fmt.Sprint(r["resources"])
		switch {
		case r["user"] == "bob" && r["decision"] == "allowed" && r["status"] == 200.0 && strings.Contains(res, "experiment:"+f.expID):
			allowed = true
		case r["user"] == "carol" && r["decision"] == "denied" && r["status"] == 403.0 && strings.Contains(res, "experiment:"+f.expID):
			denied = true
		}
	}
	if !allowed || !denied {
		t.Errorf("audit records of ExportTraceSpans: allowed=%v denied=%v", allowed, denied)
	}
	assertNoSecrets(t, e)
}

func mustProtoE(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustUnmarshal(t *testing.T, b []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	m := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}
