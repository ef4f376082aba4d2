// Package tracespans turns the span data an MLflow client uploads as a
// trace's traces.json artifact (Span.to_dict: ids in base64, attributes as
// a map of JSON-encoded values, status code names) into OpenTelemetry's
// Span in proto JSON (attributes as KeyValue lists of AnyValue, nanosecond
// times as strings), the form MLflow's GetTrace and BatchGetTraces answer.
//
// The conversion works on the JSON bytes (scan.go): a span is validated
// once, then copied field by field into the output, without decoding it
// into Go values, so that a trace of thousands of spans is converted at
// the speed of a copy and written out span by span.
package tracespans

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TraceDataSpans returns the spans of a traces.json document ({"spans":
// [...]}) as slices of data, each an object or null in MLflow's stored
// form, for AppendSpan. ok is false when the document is not one we can
// read (data a client wrote, served as partial), as unmarshaling it into
// {Spans []map[string]json.RawMessage} would refuse it.
func TraceDataSpans(data []byte) (spans [][]byte, ok bool) {
	doc, ok := valid(data)
	if !ok {
		return nil, false
	}
	switch doc[0] {
	case 'n':
		return nil, true
	case '{':
	default:
		return nil, false
	}
	var list []byte
	eachMember(doc, func(key, v []byte) {
		// A struct field: the key matches without regard to case.
		if strings.EqualFold(unquote(key), "spans") {
			list = v
		}
	})
	if list == nil || list[0] == 'n' {
		return nil, true
	}
	if list[0] != '[' {
		return nil, false
	}
	ok = true
	eachElement(list, func(v []byte) {
		if v[0] != '{' && v[0] != 'n' {
			ok = false
		}
		spans = append(spans, v)
	})
	if !ok {
		return nil, false
	}
	return spans, true
}

// AppendSpan appends one span in MLflow's stored form (Span.to_dict, as
// the span store and traces.json keep it; null counts as an empty span)
// in proto JSON to dst.
func AppendSpan(dst, span []byte) ([]byte, error) {
	v, ok := valid(span)
	if !ok || (v[0] != '{' && v[0] != 'n') {
		return dst, errors.New("decode stored span: not a JSON object")
	}
	if v[0] == 'n' {
		return append(dst, "{}"...), nil
	}
	return appendSpan(dst, v), nil
}

// FromTraceData returns the spans of a traces.json document in proto JSON.
// ok is false when the document is not one we can read (data a client
// wrote, served as partial).
func FromTraceData(data []byte) (spans []json.RawMessage, ok bool, err error) {
	raw, ok := TraceDataSpans(data)
	if !ok {
		return nil, false, nil
	}
	spans = make([]json.RawMessage, 0, len(raw))
	for _, sp := range raw {
		b, err := AppendSpan(nil, sp)
		if err != nil {
			return nil, false, err
		}
		spans = append(spans, b)
	}
	return spans, true, nil
}

// FromStoredSpan returns one span in MLflow's stored form (Span.to_dict, as
// the span store keeps it) in proto JSON.
func FromStoredSpan(content []byte) (json.RawMessage, error) {
	b, err := AppendSpan(nil, content)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// spanFields are the members of a stored span the conversion reads (the
// last of repeated keys wins, as in a map).
type spanFields struct {
	traceID, spanID, parentID, name, traceState, kind []byte
	start, end, attributes, status, events            []byte
}

func (f *spanFields) set(key []byte, v []byte) {
	switch string(key) {
	case "trace_id":
		f.traceID = v
	case "span_id":
		f.spanID = v
	case "parent_span_id":
		f.parentID = v
	case "name":
		f.name = v
	case "trace_state":
		f.traceState = v
	case "kind":
		f.kind = v
	case "start_time_unix_nano":
		f.start = v
	case "end_time_unix_nano":
		f.end = v
	case "attributes":
		f.attributes = v
	case "status":
		f.status = v
	case "events":
		f.events = v
	}
}

// fieldWriter appends the members of a JSON object, commas between.
type fieldWriter struct {
	dst   []byte
	first bool
}

func (w *fieldWriter) key(k string) {
	if !w.first {
		w.dst = append(w.dst, ',')
	}
	w.first = false
	w.dst = append(w.dst, '"')
	w.dst = append(w.dst, k...)
	w.dst = append(w.dst, '"', ':')
}

func (w *fieldWriter) str(k, v string) {
	if v != "" {
		w.key(k)
		w.dst = appendString(w.dst, v)
	}
}

// appendSpan converts a valid span object. Members come out in the order
// encoding/json writes a map's: sorted by key.
func appendSpan(dst, obj []byte) []byte {
	var f spanFields
	eachMember(obj, func(key, v []byte) { f.set(keyBytes(key), v) })
	w := fieldWriter{dst: append(dst, '{'), first: true}
	w.attributes(f.attributes, true)
	w.str("end_time_unix_nano", nanoString(f.end))
	w.events(f.events)
	w.str("kind", stringValue(f.kind))
	w.str("name", stringValue(f.name))
	w.str("parent_span_id", otelID(stringValue(f.parentID), false))
	w.str("span_id", otelID(stringValue(f.spanID), false))
	w.str("start_time_unix_nano", nanoString(f.start))
	if len(f.status) > 0 && f.status[0] == '{' {
		w.key("status")
		w.dst = appendStatus(w.dst, f.status)
	}
	w.str("trace_id", otelID(stringValue(f.traceID), true))
	w.str("trace_state", stringValue(f.traceState))
	return append(w.dst, '}')
}

// appendStatus writes a span status: the code unless unset, the message
// unless empty.
func appendStatus(dst, obj []byte) []byte {
	var code, msg []byte
	eachMember(obj, func(key, v []byte) {
		switch string(keyBytes(key)) {
		case "code":
			code = v
		case "message":
			msg = v
		}
	})
	w := fieldWriter{dst: append(dst, '{'), first: true}
	if c := stringValue(code); c != "STATUS_CODE_UNSET" {
		w.str("code", c)
	}
	w.str("message", stringValue(msg))
	return append(w.dst, '}')
}

// events writes the span's events, unless there are none or they are not
// a list of objects.
func (fw *fieldWriter) events(arr []byte) {
	if len(arr) == 0 || arr[0] != '[' {
		return
	}
	n, ok := 0, true
	eachElement(arr, func(v []byte) {
		n++
		ok = ok && (v[0] == '{' || v[0] == 'n')
	})
	if !ok || n == 0 {
		return
	}
	fw.key("events")
	dst := append(fw.dst, '[')
	i := 0
	eachElement(arr, func(v []byte) {
		if i > 0 {
			dst = append(dst, ',')
		}
		i++
		var name, at, attrs []byte
		if v[0] == '{' {
			eachMember(v, func(key, v []byte) {
				switch string(keyBytes(key)) {
				case "name":
					name = v
				case "time_unix_nano":
					at = v
				case "attributes":
					attrs = v
				}
			})
		}
		w := fieldWriter{dst: append(dst, '{'), first: true}
		w.attributes(attrs, false)
		w.key("name")
		w.dst = appendString(w.dst, stringValue(name))
		w.str("time_unix_nano", nanoString(at))
		dst = append(w.dst, '}')
	})
	fw.dst = append(dst, ']')
}

// member is one member of an object: its key literal and decoded key.
type member struct {
	lit, key, value []byte
}

// keyBytes is a key literal decoded; the literal's body when it has no
// escapes or other bytes to decode.
func keyBytes(lit []byte) []byte {
	body := lit[1 : len(lit)-1]
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			return []byte(unquote(lit))
		}
	}
	return body
}

// appendKey writes a member's key.
func appendKey(dst []byte, m *member) []byte { return appendLiteral(dst, m.lit) }

// sortedMembers returns an object's members sorted by key, the last of
// repeated keys kept, as decoding into a map and encoding it gives.
func sortedMembers(obj []byte) []member {
	var ms []member
	eachMember(obj, func(key, v []byte) { ms = append(ms, member{key, keyBytes(key), v}) })
	slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	out := ms[:0]
	for i, m := range ms {
		if i+1 < len(ms) && bytes.Equal(ms[i+1].key, m.key) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// attributes writes an attribute map as a KeyValue list, unless it is
// not an object or is empty. Span attributes hold JSON-encoded values
// (encoded is set), which are decoded first, as MLflow does when it builds
// OTel spans.
func (fw *fieldWriter) attributes(obj []byte, encoded bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return
	}
	ms := sortedMembers(obj)
	if len(ms) == 0 {
		return
	}
	fw.key("attributes")
	dst := append(fw.dst, '[')
	for i := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = appendKey(dst, &ms[i])
		dst = append(dst, `,"value":`...)
		v := ms[i].value
		if encoded && v[0] == '"' {
			if inner, ok := valid(unquoteBytes(v)); ok {
				v = inner
			}
		}
		dst = appendAnyValue(dst, v)
		dst = append(dst, '}')
	}
	fw.dst = append(dst, ']')
}

// appendAnyValue writes a valid JSON value as OpenTelemetry's AnyValue.
func appendAnyValue(dst, v []byte) []byte {
	switch v[0] {
	case 'n':
		return append(dst, "{}"...)
	case 't', 'f':
		dst = append(dst, `{"bool_value":`...)
		dst = append(dst, v...)
		return append(dst, '}')
	case '"':
		dst = append(dst, `{"string_value":`...)
		dst = appendLiteral(dst, v)
		return append(dst, '}')
	case '[':
		dst = append(dst, `{"array_value":{"values":[`...)
		i := 0
		eachElement(v, func(e []byte) {
			if i > 0 {
				dst = append(dst, ',')
			}
			i++
			dst = appendAnyValue(dst, e)
		})
		return append(dst, "]}}"...)
	case '{':
		dst = append(dst, `{"kvlist_value":{"values":[`...)
		ms := sortedMembers(v)
		for i := range ms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"key":`...)
			dst = appendKey(dst, &ms[i])
			m := &ms[i]
			dst = append(dst, `,"value":`...)
			dst = appendAnyValue(dst, m.value)
			dst = append(dst, '}')
		}
		return append(dst, "]}}"...)
	}
	return appendNumber(dst, v)
}

// appendNumber writes a number as an int_value when it is a 64-bit
// integer, a double_value otherwise; a double out of range is proto JSON's
// "Infinity" or "-Infinity".
func appendNumber(dst, v []byte) []byte {
	n := json.Number(v)
	if i, err := n.Int64(); err == nil {
		dst = append(dst, `{"int_value":"`...)
		dst = strconv.AppendInt(dst, i, 10)
		return append(dst, `"}`...)
	}
	f, err := n.Float64()
	if err != nil {
		if v[0] == '-' {
			return append(dst, `{"double_value":"-Infinity"}`...)
		}
		return append(dst, `{"double_value":"Infinity"}`...)
	}
	dst = append(dst, `{"double_value":`...)
	dst = appendFloat(dst, f)
	return append(dst, '}')
}

// otelID returns a trace or span id as proto JSON bytes (base64). MLflow
// writes them in base64, except 3.5, which wrote hex (trace ids with the
// "tr-" prefix).
func otelID(v string, trace bool) string {
	size := 8
	if trace {
		size = 16
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == size {
		return v
	}
	if b, err := hex.DecodeString(strings.TrimPrefix(v, "tr-")); err == nil && len(b) == size {
		return base64.StdEncoding.EncodeToString(b)
	}
	return v
}

// nanoString renders a nanosecond time (a JSON number or string) as the
// decimal string proto JSON uses for 64-bit integers; "" when absent.
func nanoString(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		return unquote(raw)
	case c == '-' || (c >= '0' && c <= '9'):
		n := json.Number(raw)
		if i, err := n.Int64(); err == nil {
			return strconv.FormatInt(i, 10)
		}
		if f, err := n.Float64(); err == nil {
			return strconv.FormatInt(int64(f), 10)
		}
	}
	return ""
}
