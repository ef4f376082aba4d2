package otlpspans

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// MLflow's span attribute keys (mlflow/tracing/constant.py SpanAttributeKey)
// and the OpenTelemetry semantic-convention keys MLflow reads.
const (
	AttrRequestID  = "mlflow.traceRequestId"
	AttrInputs     = "mlflow.spanInputs"
	AttrOutputs    = "mlflow.spanOutputs"
	AttrSpanType   = "mlflow.spanType"
	AttrTokenUsage = "mlflow.chat.tokenUsage"

	attrSessionID       = "session.id"
	attrUserID          = "user.id"
	attrGenAIOperation  = "gen_ai.operation.name"
	attrGenAIInput      = "gen_ai.usage.input_tokens"
	attrGenAIOutput     = "gen_ai.usage.output_tokens"
	attrGenAICacheRead  = "gen_ai.usage.cache_read.input_tokens"
	attrGenAICacheWrite = "gen_ai.usage.cache_creation.input_tokens"
)

// PreviewMaxLength is the length (in characters) MLflow truncates request
// and response previews to (TRACE_REQUEST_RESPONSE_PREVIEW_MAX_LENGTH_OSS).
const PreviewMaxLength = 1000

// TraceID returns MLflow's id of an OTLP trace id: "tr-" and its 32
// lowercase hex digits (generate_mlflow_trace_id_from_otel_trace_id).
func TraceID(otelTraceID []byte) string { return "tr-" + hex.EncodeToString(otelTraceID) }

// Convert turns a decoded export into one SpanBatch per trace, in the order
// the traces first appear. A span without a 16-byte trace id or an 8-byte
// span id is a 400 Error with MLflow's message for a span it cannot
// convert (MLflow refuses the whole request too).
func Convert(req *coltracepb.ExportTraceServiceRequest) ([]tracking.SpanBatch, error) {
	var batches []tracking.SpanBatch
	index := map[string]int{}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s, info, err := convertSpan(sp)
				if err != nil {
					return nil, err
				}
				i, ok := index[s.TraceID]
				if !ok {
					i = len(batches)
					index[s.TraceID] = i
					batches = append(batches, tracking.SpanBatch{TraceID: s.TraceID, StartMs: math.MaxInt64})
				}
				addSpan(&batches[i], s, info)
			}
		}
	}
	return batches, nil
}

// spanInfo is what a span contributes to its trace's info.
type spanInfo struct {
	inputs, outputs   string // JSON-encoded attribute values, "" when absent
	tokenUsage        map[string]int64
	sessionID, userID string
}

func addSpan(b *tracking.SpanBatch, s tracking.Span, info spanInfo) {
	b.Spans = append(b.Spans, s)
	b.StartMs = min(b.StartMs, s.StartTimeNs/1e6)
	if s.EndTimeNs != 0 {
		b.EndMs = max(b.EndMs, s.EndTimeNs/1e6)
	}
	if s.ParentSpanID == "" {
		b.RootStatus = tracking.TraceStatusOK
		if s.Status == "ERROR" {
			b.RootStatus = tracking.TraceStatusError
		}
		if info.inputs != "" {
			b.RequestPreview = Preview(info.inputs, "user")
		}
		if info.outputs != "" {
			b.ResponsePreview = Preview(info.outputs, "assistant")
		}
	}
	if len(info.tokenUsage) > 0 {
		if b.TokenUsage == nil {
			b.TokenUsage = map[string]int64{}
		}
		for k, v := range info.tokenUsage {
			b.TokenUsage[k] += v
		}
	}
	if b.SessionID == "" {
		b.SessionID = info.sessionID
	}
	if b.UserID == "" {
		b.UserID = info.userID
	}
}

// convertSpan builds the stored span (MLflow's Span.to_dict after
// translate_span_when_storing) of an OTLP span.
func convertSpan(sp *tracepb.Span) (tracking.Span, spanInfo, error) {
	var info spanInfo
	if len(sp.GetTraceId()) != 16 {
		return tracking.Span{}, info, unconvertible("a span's trace_id must be 16 bytes, got %d", len(sp.GetTraceId()))
	}
	if len(sp.GetSpanId()) != 8 {
		return tracking.Span{}, info, unconvertible("a span's span_id must be 8 bytes, got %d", len(sp.GetSpanId()))
	}
	if p := sp.GetParentSpanId(); len(p) != 0 && len(p) != 8 {
		return tracking.Span{}, info, unconvertible("a span's parent_span_id must be 8 bytes, got %d", len(p))
	}
	traceID := TraceID(sp.GetTraceId())
	s := tracking.Span{
		TraceID:     traceID,
		SpanID:      hex.EncodeToString(sp.GetSpanId()),
		Name:        sp.GetName(),
		StartTimeNs: clampNs(sp.GetStartTimeUnixNano()),
		EndTimeNs:   clampNs(sp.GetEndTimeUnixNano()),
		Status:      "UNSET",
	}
	if p := sp.GetParentSpanId(); len(p) == 8 && !bytes.Equal(p, make([]byte, 8)) {
		s.ParentSpanID = hex.EncodeToString(p)
	}
	statusName := "STATUS_CODE_UNSET"
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		s.Status, statusName = "OK", "STATUS_CODE_OK"
	case tracepb.Status_STATUS_CODE_ERROR:
		s.Status, statusName = "ERROR", "STATUS_CODE_ERROR"
	}

	// Attributes: MLflow's request id first (ours, whatever the client
	// sent: the id decides the trace's experiment), then the span's in
	// order, a repeated key keeping its last value.
	attrs := newOrdered()
	attrs.set(AttrRequestID, mustJSON(traceID))
	for _, kv := range sp.GetAttributes() {
		if kv.GetKey() == AttrRequestID {
			continue
		}
		attrs.set(kv.GetKey(), storedAttr(anyValue(kv.GetValue())))
	}
	events := make([]spanEvent, 0, len(sp.GetEvents()))
	for _, e := range sp.GetEvents() {
		ea := newOrdered()
		for _, kv := range e.GetAttributes() {
			ea.set(kv.GetKey(), mustJSON(anyValue(kv.GetValue())))
		}
		events = append(events, spanEvent{name: e.GetName(), attrs: ea})
	}
	translate(attrs, events, &info)
	if v, ok := attrs.get(AttrSpanType); ok {
		var t string
		if json.Unmarshal([]byte(v), &t) == nil {
			s.Type = t
		}
	}
	// The stored form, written directly: the attribute values are
	// already JSON, and encoding/json would validate and compact each
	// of them again.
	var c bytes.Buffer
	c.Grow(256)
	c.WriteString(`{"trace_id":"`)
	c.WriteString(base64.StdEncoding.EncodeToString(sp.GetTraceId()))
	c.WriteString(`","span_id":"`)
	c.WriteString(base64.StdEncoding.EncodeToString(sp.GetSpanId()))
	c.WriteString(`","parent_span_id":`)
	if s.ParentSpanID != "" {
		c.WriteString(`"` + base64.StdEncoding.EncodeToString(sp.GetParentSpanId()) + `"`)
	} else {
		c.WriteString("null")
	}
	c.WriteString(`,"name":`)
	c.Write(mustJSON(s.Name))
	c.WriteString(`,"start_time_unix_nano":`)
	c.WriteString(strconv.FormatInt(s.StartTimeNs, 10))
	c.WriteString(`,"end_time_unix_nano":`)
	if s.EndTimeNs != 0 {
		c.WriteString(strconv.FormatInt(s.EndTimeNs, 10))
	} else {
		c.WriteString("null")
	}
	c.WriteString(`,"events":[`)
	for i, e := range sp.GetEvents() {
		if i > 0 {
			c.WriteByte(',')
		}
		c.WriteString(`{"name":`)
		c.Write(mustJSON(e.GetName()))
		c.WriteString(`,"time_unix_nano":`)
		c.WriteString(strconv.FormatInt(clampNs(e.GetTimeUnixNano()), 10))
		c.WriteString(`,"attributes":`)
		events[i].attrs.writeTo(&c, false)
		c.WriteByte('}')
	}
	c.WriteString(`],"status":{"code":"` + statusName + `","message":`)
	if m := sp.GetStatus().GetMessage(); m != "" {
		c.Write(mustJSON(m))
	} else {
		c.WriteString("null")
	}
	c.WriteString(`},"attributes":`)
	attrs.writeTo(&c, true)
	c.WriteByte('}')
	s.Content = c.Bytes()
	return s, info, nil
}

// translate applies MLflow's translate_span_when_storing (the semantic
// conventions of semconv.go) and collects what the span gives its trace.
func translate(attrs *ordered, events []spanEvent, info *spanInfo) {
	translateConventions(attrs, events)
	if v, ok := attrs.get(AttrTokenUsage); ok {
		var m map[string]json.Number
		if json.Unmarshal([]byte(v), &m) == nil {
			info.tokenUsage = map[string]int64{}
			for _, k := range tracking.TokenUsageKeys {
				if n, ok := m[k]; ok {
					if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
						info.tokenUsage[k] = i
					} else if f, err := n.Float64(); err == nil {
						info.tokenUsage[k] = int64(f)
					}
				}
			}
		}
	}
	info.inputs, _ = attrs.get(AttrInputs)
	info.outputs, _ = attrs.get(AttrOutputs)
	info.sessionID, _ = attrs.str(attrSessionID)
	info.userID, _ = attrs.str(attrUserID)
}

// storedAttr is the JSON text MLflow stores for an attribute value:
// json.dumps of the value, except that a string which is itself the JSON
// of a string, object or array is kept as is (MLflow's clients send their
// attributes already JSON-encoded; sanitize_attributes undoes the second
// encoding).
func storedAttr(v any) json.RawMessage {
	if s, ok := v.(string); ok {
		t := bytes.TrimSpace([]byte(s))
		if len(t) > 0 && (t[0] == '"' || t[0] == '{' || t[0] == '[') && json.Valid(t) {
			return json.RawMessage(s)
		}
	}
	return mustJSON(v)
}

// anyValue decodes an OTLP AnyValue as MLflow's _decode_otel_proto_anyvalue
// does: nil when unset, lists and maps for arrays and key-value lists.
func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		f := x.DoubleValue
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return f
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		m := newOrdered()
		for _, kv := range x.KvlistValue.GetValues() {
			m.set(kv.GetKey(), mustJSON(anyValue(kv.GetValue())))
		}
		return m
	}
	return nil
}

// checkValues refuses attribute values nested deeper than maxDepth, or
// more than maxValues of them (nested ones included), in a decoded request.
func checkValues(req *coltracepb.ExportTraceServiceRequest, maxDepth, maxValues int) error {
	values := 0
	var depth func(v *commonpb.AnyValue) int
	depth = func(v *commonpb.AnyValue) int {
		d := 0
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_ArrayValue:
			values += len(x.ArrayValue.GetValues())
			for _, e := range x.ArrayValue.GetValues() {
				d = max2(d, depth(e))
			}
			return d + 1
		case *commonpb.AnyValue_KvlistValue:
			values += len(x.KvlistValue.GetValues())
			for _, kv := range x.KvlistValue.GetValues() {
				d = max2(d, depth(kv.GetValue()))
			}
			return d + 1
		}
		return 0
	}
	check := func(kvs []*commonpb.KeyValue) error {
		values += len(kvs)
		for _, kv := range kvs {
			if d := depth(kv.GetValue()); d > maxDepth {
				return badRequest("Invalid OpenTelemetry format: attribute %q is nested %d levels deep, more than %d", kv.GetKey(), d, maxDepth)
			}
		}
		if values > maxValues {
			return &Error{Status: 413, Message: fmt.Sprintf(
				"The request holds more than the %d attribute values one request may hold.", maxValues)}
		}
		return nil
	}
	for _, rs := range req.GetResourceSpans() {
		if err := check(rs.GetResource().GetAttributes()); err != nil {
			return err
		}
		for _, ss := range rs.GetScopeSpans() {
			if err := check(ss.GetScope().GetAttributes()); err != nil {
				return err
			}
			for _, sp := range ss.GetSpans() {
				if err := check(sp.GetAttributes()); err != nil {
					return err
				}
				for _, e := range sp.GetEvents() {
					if err := check(e.GetAttributes()); err != nil {
						return err
					}
				}
				for _, l := range sp.GetLinks() {
					if err := check(l.GetAttributes()); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// clampNs turns an unsigned nanosecond time into int64 (times past 2262
// are clamped).
func clampNs(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// mustJSON encodes v without HTML escaping; the values built here always
// encode.
func mustJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage("null")
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// ordered is a JSON object that keeps its keys' first-insertion order
// (Python dicts do), a repeated key replacing the value.
type ordered struct {
	keys []string
	vals map[string]json.RawMessage
}

func newOrdered() *ordered { return &ordered{vals: map[string]json.RawMessage{}} }

func (o *ordered) set(k string, v json.RawMessage) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *ordered) get(k string) (string, bool) {
	v, ok := o.vals[k]
	return string(v), ok
}

// MarshalJSON implements json.Marshaler.
func (o *ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	o.writeTo(&b, false)
	return b.Bytes(), nil
}

// writeTo writes the object; with encoded, each value's JSON text as a
// JSON string (span attributes as MLflow stores them).
func (o *ordered) writeTo(b *bytes.Buffer, encoded bool) {
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(mustJSON(k))
		b.WriteByte(':')
		if encoded {
			b.Write(mustJSON(string(o.vals[k])))
		} else {
			b.Write(o.vals[k])
		}
	}
	b.WriteByte('}')
}

// Preview is MLflow's _get_truncated_preview of a root span's inputs or
// outputs (their stored JSON text): the text of the last message of role
// when the value holds chat messages, otherwise the value itself, cut to
// PreviewMaxLength characters.
func Preview(stored, role string) string {
	content := ""
	var obj any
	if json.Unmarshal([]byte(stored), &obj) == nil {
		if msgs := extractMessages(obj); len(msgs) > 0 {
			content = messageText(lastMessage(msgs, role))
		}
	}
	if content == "" {
		content = stored
	}
	if utf8.RuneCountInString(content) <= PreviewMaxLength {
		return content
	}
	r := []rune(content)
	return string(r[:PreviewMaxLength-3]) + "..."
}

func extractMessages(obj any) []map[string]any {
	m, ok := obj.(map[string]any)
	if !ok {
		return nil
	}
	msgs := func(v any) []map[string]any {
		arr, _ := v.([]any)
		var out []map[string]any
		for _, e := range arr {
			if isMessage(e) {
				out = append(out, e.(map[string]any))
			}
		}
		return out
	}
	if arr, ok := m["messages"].([]any); ok && len(arr) > 0 {
		return msgs(arr)
	}
	if choices, ok := m["choices"].([]any); ok && len(choices) > 0 {
		if c, ok := choices[0].(map[string]any); ok && isMessage(c["message"]) {
			return []map[string]any{c["message"].(map[string]any)}
		}
	}
	if arr, ok := m["input"].([]any); ok && len(arr) > 0 {
		return msgs(arr)
	}
	if arr, ok := m["output"].([]any); ok && len(arr) > 0 {
		return msgs(arr)
	}
	if r, ok := m["request"]; ok {
		return extractMessages(r)
	}
	return nil
}

func isMessage(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, hasRole := m["role"]
	_, hasContent := m["content"]
	return hasRole && hasContent
}

func lastMessage(msgs []map[string]any, role string) map[string]any {
	for i := len(msgs) - 1; i >= 0; i-- {
		if r, _ := msgs[i]["role"].(string); r == role {
			return msgs[i]
		}
	}
	return msgs[len(msgs)-1]
}

func messageText(m map[string]any) string {
	switch c := m["content"].(type) {
	case string:
		return c
	case []any:
		for _, p := range c {
			if s, ok := p.(string); ok {
				return s
			}
			if pm, ok := p.(map[string]any); ok {
				if t, _ := pm["type"].(string); t == "text" || t == "output_text" {
					s, _ := pm["text"].(string)
					return s
				}
			}
		}
	}
	return ""
}
