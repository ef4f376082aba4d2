package otlpspans

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func TestPreview(t *testing.T) {
	long := strings.Repeat("é", 1200)
	for _, c := range []struct{ stored, role, want string }{
		{`{"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}`, "user", "hi"},
		{`{"messages": [{"role": "system", "content": "be nice"}]}`, "user", "be nice"},
		{`{"choices": [{"message": {"role": "assistant", "content": [{"type": "text", "text": "answer"}]}}]}`, "assistant", "answer"},
		{`{"request": {"input": [{"role": "user", "content": "nested"}]}}`, "user", "nested"},
		{`{"messages": [{"role": "user", "content": ""}]}`, "user", `{"messages": [{"role": "user", "content": ""}]}`},
		{`{"x": 1}`, "user", `{"x": 1}`},
		{`"plain"`, "user", `"plain"`},
		{`not json`, "user", `not json`},
		{`"` + long + `"`, "user", `"` + strings.Repeat("é", 996) + "..."},
	} {
		if got := Preview(c.stored, c.role); got != c.want {
			t.Errorf("Preview(%.40q) = %.60q, want %.60q", c.stored, got, c.want)
		}
	}
}

func TestStoredAttr(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{"hello", `"hello"`},
		{`"already json"`, `"already json"`},
		{`{"a": 1}`, `{"a": 1}`},
		{`[1, 2]`, `[1, 2]`},
		{"123", `"123"`},
		{"true", `"true"`},
		{`{broken`, `"{broken"`},
		{int64(5), `5`},
		{true, `true`},
		{1.5, `1.5`},
		{"<b>&", `"<b>&"`},
	} {
		if got := string(storedAttr(c.in)); got != c.want {
			t.Errorf("storedAttr(%#v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestCountWireSpans(t *testing.T) {
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: make([]*tracepb.Span, 3)}, {Spans: make([]*tracepb.Span, 2)}}},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: make([]*tracepb.Span, 4)}}, SchemaUrl: "x"},
	}}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for i := range ss.Spans {
				ss.Spans[i] = &tracepb.Span{Name: "s"}
			}
		}
	}
	b, _ := proto.Marshal(req)
	if n, err := countWireSpans(b); n != 9 || err != nil {
		t.Fatalf("count = %d, %v", n, err)
	}
	if _, err := countWireSpans(b[:len(b)-1]); err == nil {
		t.Fatal("truncated body counted without error")
	}
}

func TestConvertDerivesTraceInfo(t *testing.T) {
	tid := bytes.Repeat([]byte{0xab}, 16)
	kv := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
		{TraceId: tid, SpanId: []byte{0, 0, 0, 0, 0, 0, 0, 2}, ParentSpanId: []byte{0, 0, 0, 0, 0, 0, 0, 1}, StartTimeUnixNano: 3e6, EndTimeUnixNano: 9e6,
			Attributes: []*commonpb.KeyValue{kv("mlflow.chat.tokenUsage", `{"input_tokens": 2, "total_tokens": 2}`), kv("user.id", "u1")}},
		{TraceId: tid, SpanId: []byte{0, 0, 0, 0, 0, 0, 0, 1}, StartTimeUnixNano: 2e6, EndTimeUnixNano: 5e6,
			Attributes: []*commonpb.KeyValue{kv("mlflow.spanInputs", `{"q": 1}`), kv("mlflow.traceRequestId", `"tr-forged"`), kv("k", "v"), kv("k", "w")},
			Status:     &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}},
	}}}}}}
	batches, err := Convert(req)
	if err != nil || len(batches) != 1 {
		t.Fatalf("%v %v", batches, err)
	}
	b := batches[0]
	if b.TraceID != "tr-abababababababababababababababab" || b.StartMs != 2 || b.EndMs != 9 || b.RootStatus != "ERROR" ||
		b.RequestPreview != `{"q": 1}` || b.TokenUsage["input_tokens"] != 2 || b.UserID != "u1" || len(b.Spans) != 2 {
		t.Fatalf("batch %+v", b)
	}
	var root map[string]any
	if err := json.Unmarshal(b.Spans[1].Content, &root); err != nil {
		t.Fatal(err)
	}
	attrs := root["attributes"].(map[string]any)
	if attrs["mlflow.traceRequestId"] != `"tr-abababababababababababababababab"` || attrs["k"] != `"w"` || attrs["mlflow.spanInputs"] != `{"q": 1}` {
		t.Fatalf("attributes %v", attrs)
	}
	if root["parent_span_id"] != nil || root["span_id"] != "AAAAAAAAAAE=" {
		t.Fatalf("root %v", root)
	}
	// Bad ids are a 400 with MLflow's message for a span it cannot convert.
	req.ResourceSpans[0].ScopeSpans[0].Spans[0].SpanId = []byte{1}
	_, err = Convert(req)
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || !strings.HasPrefix(e.Message, "Cannot convert OpenTelemetry span to MLflow span: ") {
		t.Fatalf("bad span id: %v", err)
	}
}

// FuzzDecode: any body, in either encoding, decodes and converts without
// panicking, or is refused with a 4xx Error.
func FuzzDecode(f *testing.F) {
	good, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
		{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Name: "x"}}}}}}})
	f.Add(good, false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708"}]}]}]}`), true)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		mt := ContentTypeProtobuf
		if isJSON {
			mt = ContentTypeJSON
		}
		lim := Limits{MaxSpans: 100, MaxDepth: 8}
		req, err := Unmarshal(body, mt, lim)
		if err == nil {
			_, err = Convert(req)
		}
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Status < 400 || e.Status > 499) {
			t.Fatalf("error %v is not a 4xx Error", err)
		}
	})
}

// TestValueLimits: attribute values are counted (nested ones too) and
// their nesting checked on the wire, before decoding.
func TestValueLimits(t *testing.T) {
	str := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "v"}}
	list := func(n int) *commonpb.AnyValue {
		vals := make([]*commonpb.AnyValue, n)
		for i := range vals {
			vals[i] = str
		}
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}}
	}
	req := func(attrs ...*commonpb.KeyValue) *coltracepb.ExportTraceServiceRequest {
		return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Attributes: attrs,
				Events: []*tracepb.Span_Event{{Name: "e", Attributes: []*commonpb.KeyValue{{Key: "ev", Value: list(3)}}}}}}}}}}}
	}
	lim := Limits{MaxValues: 10, MaxDepth: 2}
	pb := func(r *coltracepb.ExportTraceServiceRequest) []byte { b, _ := proto.Marshal(r); return b }
	js := func(r *coltracepb.ExportTraceServiceRequest) []byte { b, _ := protojson.Marshal(r); return b }
	// 1 + 5 + 4 (the event's) = 10 values: fine; one more is not.
	okReq := req(&commonpb.KeyValue{Key: "a", Value: list(5)})
	if _, err := Unmarshal(pb(okReq), ContentTypeProtobuf, lim); err != nil {
		t.Fatalf("10 values: %v", err)
	}
	over := req(&commonpb.KeyValue{Key: "a", Value: list(6)})
	var e *Error
	if _, err := Unmarshal(pb(over), ContentTypeProtobuf, lim); !errors.As(err, &e) || e.Status != 413 {
		t.Fatalf("11 values: %v", err)
	}
	if _, err := Unmarshal(js(req(&commonpb.KeyValue{Key: "a", Value: list(100)})), ContentTypeJSON, lim); !errors.As(err, &e) || e.Status != 413 {
		t.Fatalf("JSON with 100 values: %v", err)
	}
	nested := &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{{Key: "k", Value: list(1)}}}}}
	if _, err := Unmarshal(pb(req(&commonpb.KeyValue{Key: "a", Value: nested})), ContentTypeProtobuf, lim); err != nil {
		t.Fatalf("2 levels: %v", err)
	}
	deeper := &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{nested}}}}
	for _, mt := range []string{ContentTypeProtobuf, ContentTypeJSON} {
		body := pb(req(&commonpb.KeyValue{Key: "a", Value: deeper}))
		if mt == ContentTypeJSON {
			body = js(req(&commonpb.KeyValue{Key: "a", Value: deeper}))
		}
		if _, err := Unmarshal(body, mt, lim); !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "nested") {
			t.Fatalf("3 levels (%s): %v", mt, err)
		}
	}
}

func TestCountJSONObjects(t *testing.T) {
	if n := countJSONObjects([]byte(`{"a": "{\"}{", "b": [{}, {"c": {}}]}`)); n != 4 {
		t.Fatalf("count = %d", n)
	}
}

// TestLimitsValidate: zero takes the default; negative, tiny and absurd
// bounds are refused with the setting's name and range.
func TestLimitsValidate(t *testing.T) {
	for _, ok := range []Limits{{}, DefaultLimits, LimitsCeiling, {MaxBodyBytes: 1024, MaxSpans: 1, MaxDepth: 1, MaxValues: 1}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, c := range []struct {
		l    Limits
		want string
	}{
		{Limits{MaxBodyBytes: -1}, "max_body_size -1 is out of range: it must be between 1024 and 1073741824"},
		{Limits{MaxBodyBytes: 1023}, "max_body_size 1023"},
		{Limits{MaxBodyBytes: 1<<30 + 1}, "max_body_size 1073741825"},
		{Limits{MaxSpans: -5}, "max_spans -5"},
		{Limits{MaxSpans: 1_000_001}, "max_spans 1000001"},
		{Limits{MaxValues: 10_000_001}, "max_attribute_values 10000001"},
		{Limits{MaxDepth: 101}, "max_nesting 101"},
		{Limits{MaxDepth: -1}, "max_nesting -1"},
	} {
		if err := c.l.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.l, err, c.want)
		}
	}
}
