package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var otlpTraceID = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}

const otlpMLflowID = "tr-0123456789abcdef0123456789abcdef"

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// otlpRequest is an export of a root span with two children, the way
// MLflow's Python client sends a trace (its attributes JSON-encoded).
func otlpRequest(traceID []byte) *coltracepb.ExportTraceServiceRequest {
	sid := func(b byte) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, b} }
	const t0 = 1_700_000_000_000_000_000
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: traceID, SpanId: sid(2), ParentSpanId: sid(1), Name: "llm", StartTimeUnixNano: t0 + 1e6, EndTimeUnixNano: t0 + 2e6,
				Attributes: []*commonpb.KeyValue{strAttr("mlflow.spanType", `"LLM"`),
					strAttr("mlflow.chat.tokenUsage", `{"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}`)},
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}},
			{TraceId: traceID, SpanId: sid(3), ParentSpanId: sid(1), Name: "tool", StartTimeUnixNano: t0 + 2e6, EndTimeUnixNano: t0 + 3e6,
				Attributes: []*commonpb.KeyValue{strAttr("gen_ai.operation.name", "execute_tool"), intAttr("gen_ai.usage.input_tokens", 1),
					intAttr("gen_ai.usage.output_tokens", 1)},
				Events: []*tracepb.Span_Event{{Name: "exception", TimeUnixNano: t0 + 2500000,
					Attributes: []*commonpb.KeyValue{strAttr("exception.message", "boom")}}}},
			{TraceId: traceID, SpanId: sid(1), Name: "root", StartTimeUnixNano: t0, EndTimeUnixNano: t0 + 1500e6,
				Attributes: []*commonpb.KeyValue{strAttr("mlflow.spanInputs", `{"messages": [{"role": "user", "content": "hi?"}]}`),
					strAttr("mlflow.spanOutputs", `"hello"`), strAttr("mlflow.traceRequestId", `"tr-somebody-else"`),
					strAttr("session.id", "s-1")},
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "failed"}},
		}}},
	}}}
}

func otlpPost(t testing.TB, ts *httptest.Server, exp, ctype, encoding string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if exp != "" {
		req.Header.Set("x-mlflow-experiment-id", exp)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header, b}
}

func mustProto(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// wantOTLPStatus checks an OTLP error answer: the status and a
// google.rpc.Status in the request's encoding.
func wantOTLPStatus(t testing.TB, r response, status int, ctype, msgPart string) {
	t.Helper()
	wantStatus(t, r, status)
	if r.ctype != ctype {
		t.Fatalf("content type %q, want %q", r.ctype, ctype)
	}
	var st spb.Status
	var err error
	if ctype == "application/json" {
		err = protojson.Unmarshal(r.body, &st)
	} else {
		err = proto.Unmarshal(r.body, &st)
	}
	if err != nil || st.Code == 0 || !strings.Contains(st.Message, msgPart) {
		t.Fatalf("status body %q (%v), want a message with %q", r.body, err, msgPart)
	}
}

func TestOTLPProtobufExport(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "otlp")
	r := otlpPost(t, ts, exp, "application/x-protobuf", "", mustProto(t, otlpRequest(otlpTraceID)))
	wantStatus(t, r, 200)
	var resp coltracepb.ExportTraceServiceResponse
	if r.ctype != "application/x-protobuf" || proto.Unmarshal(r.body, &resp) != nil || resp.PartialSuccess != nil {
		t.Fatalf("answer %q %x", r.ctype, r.body)
	}

	r = v3(t, ts, "GET", "traces/get?trace_id="+otlpMLflowID, nil)
	wantStatus(t, r, 200)
	var got struct {
		Trace struct {
			Info  traceInfoV3      `json:"trace_info"`
			Spans []map[string]any `json:"spans"`
		} `json:"trace"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	info := got.Trace.Info
	if info.TraceID != otlpMLflowID || info.State != "ERROR" || info.RequestTime != "2023-11-14T22:13:20Z" ||
		info.ExecutionDuration != "1.500s" || info.RequestPreview != "hi?" || info.ResponsePreview != `"hello"` ||
		info.TraceLocation.MlflowExperiment.ExperimentID != exp {
		t.Fatalf("trace info %+v", info)
	}
	if u := info.TraceMetadata["mlflow.trace.tokenUsage"]; u != `{"input_tokens":6,"output_tokens":3,"total_tokens":9}` {
		t.Fatalf("token usage %q", u)
	}
	if info.TraceMetadata["mlflow.trace.session"] != "s-1" || info.Tags["mlflow.trace.spansLocation"] != "TRACKING_STORE" {
		t.Fatalf("metadata %v tags %v", info.TraceMetadata, info.Tags)
	}
	names := []string{}
	for _, sp := range got.Trace.Spans {
		names = append(names, sp["name"].(string))
	}
	if strings.Join(names, ",") != "root,llm,tool" {
		t.Fatalf("spans %v", names)
	}
	root, _ := json.Marshal(got.Trace.Spans[0])
	for _, want := range []string{`"trace_id":"ASNFZ4mrze8BI0VniavN7w=="`, `"code":"STATUS_CODE_ERROR"`, `"message":"failed"`,
		`{"key":"mlflow.traceRequestId","value":{"string_value":"` + otlpMLflowID + `"}}`,
		`{"key":"mlflow.spanOutputs","value":{"string_value":"hello"}}`} {
		if !strings.Contains(string(root), want) {
			t.Fatalf("root span lacks %s: %s", want, root)
		}
	}
	tool, _ := json.Marshal(got.Trace.Spans[2])
	for _, want := range []string{`"parent_span_id":"AAAAAAAAAAE="`, `{"key":"mlflow.spanType","value":{"string_value":"TOOL"}}`,
		`"events":[{"attributes":[{"key":"exception.message","value":{"string_value":"boom"}}],"name":"exception","time_unix_nano":"1700000000002500000"}]`} {
		if !strings.Contains(string(tool), want) {
			t.Fatalf("tool span lacks %s: %s", want, tool)
		}
	}

	// The UI's trace data: traces.json built from the stored spans.
	r = call(t, ts, "GET", "/ajax-api/3.0/mlflow/get-trace-artifact?request_id="+otlpMLflowID, "", nil)
	wantStatus(t, r, 200)
	var data struct {
		Spans []struct {
			Name       string            `json:"name"`
			Attributes map[string]string `json:"attributes"`
		} `json:"spans"`
	}
	if err := json.Unmarshal(r.body, &data); err != nil || len(data.Spans) != 3 || data.Spans[0].Attributes["mlflow.spanInputs"] != `{"messages": [{"role": "user", "content": "hi?"}]}` {
		t.Fatalf("trace data %v: %s", err, r.body)
	}
	r = v3(t, ts, "GET", "traces/batchGet?trace_ids="+otlpMLflowID, nil)
	if r.status != 200 || strings.Count(string(r.body), `"span_id"`) != 3 {
		t.Fatalf("batchGet %d %s", r.status, r.body)
	}

	// The client's StartTraceV3 after its spans keeps the spans' location
	// (so it does not upload traces.json); a span count it records that
	// the store has not reached makes the trace incomplete.
	r = v3(t, ts, "POST", "traces", map[string]any{"trace": map[string]any{"trace_info": map[string]any{
		"trace_id": otlpMLflowID, "trace_location": map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}},
		"request_time": "2023-11-14T22:13:20Z", "execution_duration": "1.500s", "state": "ERROR",
		"trace_metadata": map[string]any{"mlflow.trace.sizeStats": `{"total_size_bytes": 100, "num_spans": 4}`}}}})
	if r.status != 200 || !strings.Contains(string(r.body), `"mlflow.trace.spansLocation":"TRACKING_STORE"`) {
		t.Fatalf("StartTraceV3 %d %s", r.status, r.body)
	}
	wantError(t, v3(t, ts, "GET", "traces/get?trace_id="+otlpMLflowID, nil), 404, "RESOURCE_DOES_NOT_EXIST", "not fully exported yet")
	r = v3(t, ts, "GET", "traces/get?trace_id="+otlpMLflowID+"&allow_partial=true", nil)
	if r.status != 200 || strings.Count(string(r.body), `"span_id"`) != 3 {
		t.Fatalf("partial %d %s", r.status, r.body)
	}

	// Deleting the trace deletes its spans.
	wantStatus(t, v3(t, ts, "POST", "traces/delete-traces", map[string]any{"experiment_id": exp, "request_ids": []string{otlpMLflowID}}), 200)
	wantError(t, v3(t, ts, "GET", "traces/get?trace_id="+otlpMLflowID, nil), 404, "RESOURCE_DOES_NOT_EXIST", "")
	wantStatus(t, otlpPost(t, ts, exp, "application/x-protobuf", "", mustProto(t, &coltracepb.ExportTraceServiceRequest{
		ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: otlpTraceID, SpanId: []byte{9, 9, 9, 9, 9, 9, 9, 9}, ParentSpanId: []byte{1, 1, 1, 1, 1, 1, 1, 1}, Name: "late", StartTimeUnixNano: 5e6}}}}}}})), 200)
	r = v3(t, ts, "GET", "traces/get?trace_id="+otlpMLflowID, nil)
	if r.status != 200 || strings.Count(string(r.body), `"span_id"`) != 1 || !strings.Contains(string(r.body), `"state":"IN_PROGRESS"`) {
		t.Fatalf("after re-export %d %s", r.status, r.body)
	}
}

func TestOTLPJSONGzipExport(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "otlp-json")
	// OTLP's JSON encoding: camelCase names, hex ids, enums as numbers,
	// 64-bit integers as strings.
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
		"scopeSpans":[{"scope":{"name":"test"},"spans":[
		{"traceId":"%x","spanId":"00000000000000aa","name":"root","kind":2,"startTimeUnixNano":"1700000000000000000",
		 "endTimeUnixNano":"1700000000250000000","status":{"code":1},
		 "attributes":[{"key":"mlflow.spanInputs","value":{"stringValue":"question"}},{"key":"n","value":{"intValue":"3"}},
		   {"key":"l","value":{"arrayValue":{"values":[{"boolValue":true},{"doubleValue":1.5}]}}}]},
		{"traceId":"%x","spanId":"00000000000000bb","parentSpanId":"00000000000000aa","name":"child",
		 "startTimeUnixNano":"1700000000100000000","endTimeUnixNano":"1700000000200000000"}]}]}]}`, otlpTraceID, otlpTraceID)
	r := otlpPost(t, ts, exp, "application/json; charset=utf-8", "gzip", gzipped(t, []byte(body)))
	wantStatus(t, r, 200)
	if r.ctype != "application/json" || string(r.body) != "{}" {
		t.Fatalf("answer %q %s", r.ctype, r.body)
	}
	r = v3(t, ts, "GET", "traces/get?trace_id="+otlpMLflowID, nil)
	wantStatus(t, r, 200)
	for _, want := range []string{`"state":"OK"`, `"execution_duration":"0.250s"`, `"request_preview":"\"question\""`,
		`"name":"root"`, `"name":"child"`, `"span_id":"AAAAAAAAAKo="`, `{"key":"n","value":{"int_value":"3"}}`,
		`{"key":"l","value":{"array_value":{"values":[{"bool_value":true},{"double_value":1.5}]}}}`} {
		if !strings.Contains(string(r.body), want) {
			t.Fatalf("trace lacks %s: %s", want, r.body)
		}
	}
}

func TestOTLPBadRequests(t *testing.T) {
	ts, _ := newTestServer(t, func(o *Options) {
		o.OTLPLimits.MaxBodyBytes, o.OTLPLimits.MaxSpans, o.OTLPLimits.MaxValues = 64<<10, 50, 1000
	})
	exp := mkExperiment(t, ts, "otlp-bad")
	const pb, js = "application/x-protobuf", "application/json"

	// Refusals MLflow shares are in TestOTLPErrorAnswers; these are our
	// bounds.
	// Too many spans: counted on the wire before decoding.
	many := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{}}}}}
	for i := range 51 {
		many.ResourceSpans[0].ScopeSpans[0].Spans = append(many.ResourceSpans[0].ScopeSpans[0].Spans,
			&tracepb.Span{TraceId: otlpTraceID, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, byte(i)}})
	}
	wantOTLPStatus(t, otlpPost(t, ts, exp, pb, "", mustProto(t, many)), 413, pb, "51 spans, more than the 50")
	mj, _ := protojson.Marshal(many)
	wantOTLPStatus(t, otlpPost(t, ts, exp, js, "", mj), 413, js, "51 spans")

	// Too many attribute values (here in one array), in either encoding.
	wide := otlpRequest(otlpTraceID)
	arr := &commonpb.ArrayValue{}
	for range 1000 {
		arr.Values = append(arr.Values, &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}})
	}
	wide.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes = append(wide.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes,
		&commonpb.KeyValue{Key: "wide", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: arr}}})
	wantOTLPStatus(t, otlpPost(t, ts, exp, pb, "", mustProto(t, wide)), 413, pb, "more than the 1000 attribute values")
	wj, _ := protojson.Marshal(wide)
	wantOTLPStatus(t, otlpPost(t, ts, exp, js, "", wj), 413, js, "more than the 1000 attribute values")

	// Deep attribute nesting: just over the limit, and far over it (the
	// decoder's recursion limit).
	nest := func(depth int) *commonpb.AnyValue {
		v := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}
		for range depth {
			v = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{v}}}}
		}
		return v
	}
	for _, depth := range []int{33, 2000} {
		deep := otlpRequest(otlpTraceID)
		sp := deep.ResourceSpans[0].ScopeSpans[0].Spans[0]
		sp.Attributes = append(sp.Attributes, &commonpb.KeyValue{Key: "deep", Value: nest(depth)})
		b, err := proto.MarshalOptions{}.Marshal(deep)
		if err != nil {
			t.Fatal(err)
		}
		checkOTLPAnswer(t, otlpPost(t, ts, exp, pb, "", b), otlpAnswer{status: 400, ctype: pb, kind: "rpc",
			detail: "Invalid OpenTelemetry format", prefix: true})
	}
	// Nothing was stored by any of these.
	wantError(t, v3(t, ts, "GET", "traces/"+otlpMLflowID, nil), 404, "RESOURCE_DOES_NOT_EXIST", "")
	// 32 levels are fine.
	ok := otlpRequest(otlpTraceID)
	ok.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes = append(ok.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes,
		&commonpb.KeyValue{Key: "deep", Value: nest(32)})
	wantStatus(t, otlpPost(t, ts, exp, pb, "", mustProto(t, ok)), 200)
}

// TestOTLPOtherExperimentsTrace: spans of a trace that lives in another
// experiment are refused (partial success); the rest of the export is
// stored.
func TestOTLPOtherExperimentsTrace(t *testing.T) {
	ts, _ := newTestServer(t)
	a, b := mkExperiment(t, ts, "a"), mkExperiment(t, ts, "b")
	wantStatus(t, otlpPost(t, ts, a, "application/x-protobuf", "", mustProto(t, otlpRequest(otlpTraceID))), 200)
	mixed := otlpRequest(otlpTraceID)
	other := otlpRequest(bytes.Repeat([]byte{0xee}, 16))
	mixed.ResourceSpans = append(mixed.ResourceSpans, other.ResourceSpans...)
	r := otlpPost(t, ts, b, "application/json", "", func() []byte { j, _ := protojson.Marshal(mixed); return j }())
	wantStatus(t, r, 200)
	var resp coltracepb.ExportTraceServiceResponse
	if err := protojson.Unmarshal(r.body, &resp); err != nil || resp.GetPartialSuccess().GetRejectedSpans() != 3 ||
		!strings.Contains(resp.GetPartialSuccess().GetErrorMessage(), otlpMLflowID) {
		t.Fatalf("answer %s (%v)", r.body, err)
	}
	r = v3(t, ts, "GET", "traces/"+otlpMLflowID, nil)
	if !strings.Contains(string(r.body), `"experiment_id":"`+a+`"`) {
		t.Fatalf("the first trace moved: %s", r.body)
	}
	r = v3(t, ts, "GET", "traces/get?trace_id=tr-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"experiment_id":"`+b+`"`) || strings.Count(string(r.body), `"span_id"`) != 3 {
		t.Fatalf("the second trace: %d %s", r.status, r.body)
	}
}
