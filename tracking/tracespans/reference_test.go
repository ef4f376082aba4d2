package tracespans

// The map-based conversion the streaming converter replaced, kept as the
// oracle the tests compare against.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// refFromTraceData returns the spans of a traces.json document in proto JSON.
// ok is false when the document is not one we can read (data a client
// wrote, served as partial); err reports a span that could not be encoded.
func refFromTraceData(data []byte) (spans []json.RawMessage, ok bool, err error) {
	var doc struct {
		Spans []map[string]json.RawMessage `json:"spans"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, false, nil
	}
	spans = make([]json.RawMessage, 0, len(doc.Spans))
	for _, sp := range doc.Spans {
		b, err := json.Marshal(refOtelSpan(sp))
		if err != nil {
			return nil, false, fmt.Errorf("encode span: %w", err)
		}
		spans = append(spans, b)
	}
	return spans, true, nil
}

// refFromStoredSpan returns one span in MLflow's stored form (Span.to_dict, as
// the span store keeps it) in proto JSON.
func refFromStoredSpan(content []byte) (json.RawMessage, error) {
	var sp map[string]json.RawMessage
	if err := json.Unmarshal(content, &sp); err != nil {
		return nil, fmt.Errorf("decode stored span: %w", err)
	}
	b, err := json.Marshal(refOtelSpan(sp))
	if err != nil {
		return nil, fmt.Errorf("encode span: %w", err)
	}
	return b, nil
}

// refOtelSpan turns one span of MLflow's trace data (Span.to_dict: ids in
// base64, attributes as a map of JSON-encoded values, status code names)
// into OpenTelemetry's Span in proto JSON (attributes as KeyValue lists
// of AnyValue, nanosecond times as strings), as MLflow's get_trace answers.
func refOtelSpan(in map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(in[k], &s)
		return s
	}
	for _, k := range []string{"trace_id", "span_id", "parent_span_id"} {
		if v := otelID(str(k), k == "trace_id"); v != "" {
			out[k] = v
		}
	}
	for _, k := range []string{"name", "trace_state", "kind"} {
		if v := str(k); v != "" {
			out[k] = v
		}
	}
	for _, k := range []string{"start_time_unix_nano", "end_time_unix_nano"} {
		if v := refNanoString(in[k]); v != "" {
			out[k] = v
		}
	}
	if attrs := refOtelAttributes(in["attributes"], true); len(attrs) > 0 {
		out["attributes"] = attrs
	}
	var status map[string]any
	if json.Unmarshal(in["status"], &status) == nil && status != nil {
		st := map[string]any{}
		if c, ok := status["code"].(string); ok && c != "" && c != "STATUS_CODE_UNSET" {
			st["code"] = c
		}
		if m, ok := status["message"].(string); ok && m != "" {
			st["message"] = m
		}
		out["status"] = st
	}
	var events []map[string]json.RawMessage
	if json.Unmarshal(in["events"], &events) == nil && len(events) > 0 {
		evs := make([]map[string]any, 0, len(events))
		for _, e := range events {
			ev := map[string]any{}
			var name string
			_ = json.Unmarshal(e["name"], &name)
			ev["name"] = name
			if v := refNanoString(e["time_unix_nano"]); v != "" {
				ev["time_unix_nano"] = v
			}
			if attrs := refOtelAttributes(e["attributes"], false); len(attrs) > 0 {
				ev["attributes"] = attrs
			}
			evs = append(evs, ev)
		}
		out["events"] = evs
	}
	return out
}

// refNanoString renders a nanosecond time (a JSON number or string) as the
// decimal string proto JSON uses for 64-bit integers; "" when absent.
func refNanoString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	if i, err := n.Int64(); err == nil {
		return strconv.FormatInt(i, 10)
	}
	if f, err := n.Float64(); err == nil {
		return strconv.FormatInt(int64(f), 10)
	}
	return ""
}

// refOtelAttributes turns an attribute map into KeyValue messages. Span
// attributes hold JSON-encoded values (encoded is set), which are decoded
// first, as MLflow does when it builds OTel spans.
func refOtelAttributes(raw json.RawMessage, encoded bool) []map[string]any {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&m) != nil || len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		if s, ok := v.(string); ok && encoded {
			d := json.NewDecoder(strings.NewReader(s))
			d.UseNumber()
			var dec any
			if d.Decode(&dec) == nil && !d.More() {
				v = dec
			}
		}
		out = append(out, map[string]any{"key": k, "value": refAnyValue(v)})
	}
	return out
}

// refAnyValue is OpenTelemetry's AnyValue in proto JSON.
func refAnyValue(v any) map[string]any {
	switch x := v.(type) {
	case nil:
		return map[string]any{}
	case string:
		return map[string]any{"string_value": x}
	case bool:
		return map[string]any{"bool_value": x}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return map[string]any{"int_value": strconv.FormatInt(i, 10)}
		}
		f, _ := x.Float64()
		return map[string]any{"double_value": f}
	case []any:
		vals := make([]map[string]any, 0, len(x))
		for _, e := range x {
			vals = append(vals, refAnyValue(e))
		}
		return map[string]any{"array_value": map[string]any{"values": vals}}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]map[string]any, 0, len(x))
		for _, k := range keys {
			vals = append(vals, map[string]any{"key": k, "value": refAnyValue(x[k])})
		}
		return map[string]any{"kvlist_value": map[string]any{"values": vals}}
	}
	return map[string]any{"string_value": fmt.Sprint(v)}
}
