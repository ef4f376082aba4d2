package tracespans

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestOTelIDs(t *testing.T) {
	for in, want := range map[string]string{
		"ASNFZ4mrze8=":                        "ASNFZ4mrze8=",
		"0123456789abcdef":                    "ASNFZ4mrze8=",
		"tr-0123456789abcdef0123456789abcdef": "ASNFZ4mrze8BI0VniavN7w==",
		"ASNFZ4mrze8BI0VniavN7w==":            "ASNFZ4mrze8BI0VniavN7w==",
		"":                                    "",
	} {
		if got := otelID(in, len(want) > 12); got != want {
			t.Errorf("otelID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromTraceData(t *testing.T) {
	data := []byte(`{"spans": [{"name": "root", "trace_id": "ASNFZ4mrze8BI0VniavN7w==", "span_id": "0123456789abcdef",
		"parent_span_id": null, "start_time_unix_nano": 1700000000000000000, "end_time_unix_nano": "1700000000500000000",
		"status": {"code": "STATUS_CODE_OK", "message": ""},
		"attributes": {"mlflow.spanType": "\"LLM\"", "n": "3", "x": "{\"a\": [1.5, true]}"},
		"events": [{"name": "e", "time_unix_nano": 5, "attributes": {"k": "v"}}]}]}`)
	spans, ok, err := FromTraceData(data)
	if err != nil || !ok || len(spans) != 1 {
		t.Fatalf("%v %v %d", err, ok, len(spans))
	}
	want := `{"attributes":[{"key":"mlflow.spanType","value":{"string_value":"LLM"}},{"key":"n","value":{"int_value":"3"}},` +
		`{"key":"x","value":{"kvlist_value":{"values":[{"key":"a","value":{"array_value":{"values":[{"double_value":1.5},{"bool_value":true}]}}}]}}}],` +
		`"end_time_unix_nano":"1700000000500000000","events":[{"attributes":[{"key":"k","value":{"string_value":"v"}}],"name":"e","time_unix_nano":"5"}],` +
		`"name":"root","span_id":"ASNFZ4mrze8=","start_time_unix_nano":"1700000000000000000","status":{"code":"STATUS_CODE_OK"},"trace_id":"ASNFZ4mrze8BI0VniavN7w=="}`
	if string(spans[0]) != want {
		t.Fatalf("span\n%s\nwant\n%s", spans[0], want)
	}
	if _, ok, err := FromTraceData([]byte("not json")); ok || err != nil {
		t.Fatalf("unreadable data: ok %v err %v", ok, err)
	}
}

// quirky reports a span whose encoded attributes the old decoder read
// differently on purpose: a value followed by a stray ']' or '}' (which
// json.Decoder stops before) or a number out of float64's range (which
// could not be encoded at all and is now "Infinity").
func quirky(span []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(span, &m) != nil {
		return false
	}
	if bytes.Contains(span, []byte("e")) || bytes.Contains(span, []byte("E")) {
		// A large exponent anywhere may overflow.
		for _, part := range bytes.FieldsFunc(span, func(r rune) bool { return !strings.ContainsRune("0123456789.eE+-", r) }) {
			if f, err := strconv.ParseFloat(string(part), 64); err != nil && math.IsInf(f, 0) {
				return true
			}
		}
	}
	var attrs map[string]any
	if json.Unmarshal(m["attributes"], &attrs) != nil {
		return false
	}
	for _, v := range attrs {
		s, ok := v.(string)
		if !ok {
			continue
		}
		d := json.NewDecoder(strings.NewReader(s))
		var x any
		if d.Decode(&x) == nil && !d.More() {
			if _, ok := valid([]byte(s)); !ok {
				return true
			}
		}
	}
	return false
}

// spanCorpus covers what stored spans hold: every field, odd types in
// each, escapes, HTML characters, non-UTF-8 bytes, repeated keys, nesting,
// numbers of every shape, hex and base64 ids.
var spanCorpus = []string{
	`null`,
	`{}`,
	`{"name": "root", "trace_id": "ASNFZ4mrze8BI0VniavN7w==", "span_id": "0123456789abcdef", "parent_span_id": null,
	  "start_time_unix_nano": 1700000000000000000, "end_time_unix_nano": "1700000000500000000",
	  "status": {"code": "STATUS_CODE_OK", "message": ""}, "kind": "SPAN_KIND_INTERNAL", "trace_state": "a=b",
	  "attributes": {"mlflow.spanType": "\"LLM\"", "n": "3", "x": "{\"a\": [1.5, true, null, -0, 1e300, 12345678901234567890, 1.0, 2E-9]}"},
	  "events": [{"name": "e", "time_unix_nano": 5, "attributes": {"k": "v", "n": 1, "o": {"z": 1, "a": [2]}}}, null]}`,
	`{"trace_id": "tr-0123456789abcdef0123456789abcdef", "span_id": "zz", "parent_span_id": "ASNFZ4mrze8=", "name": 5, "kind": null,
	  "start_time_unix_nano": 1.7e18, "end_time_unix_nano": true, "status": {"code": "STATUS_CODE_UNSET", "message": "m<&>\u2028"},
	  "attributes": {"b": "not json", "a": "\"<tag>&amp;\"", "c": "  {\"k\": 1, \"k\": 2}  ", "d": "", "e": "1 2", "f": 7, "g": [1, "x"],
	  "h": "{\"\\u00e9t\u00e9\": \"\\ud83d\\ude00\", \"ctl\": \"\\u0001\\b\\f\\t\"}", "i": "[[[[[]]]]]", "j": "tru", "k": {"n": null}},
	  "events": [{"name": ["x"]}]}`,
	`{"name": "a", "name": "b", "attributes": {"x": "\"1\"", "x": "\"2\""}, "status": "OK", "events": [1]}`,
	"{\"name\": \"bad \xff\xfe utf8\", \"attributes\": {\"k\xff\": \"\\\"v\xff\\\"\"}, \"status\": null, \"events\": []}",
	`{"name": "esc \"q\" \\ \/ \n", "attributes": {"esc\n": "{\"a\\\"b\": \"c\\\\d\"}"}, "events": {"not": "a list"}}`,
	`{"start_time_unix_nano": -5, "end_time_unix_nano": 9223372036854775808, "attributes": "not an object", "status": {"code": 2}}`,
	`{"attributes": {"deep": "[{\"a\": {\"b\": [{\"c\": -1.25e-7}]}}]", "unicode": "\"日本語 \\u2029\""}}`,
}

// TestAppendSpanMatchesReference compares the byte conversion with the
// map-based one it replaced, span by span.
func TestAppendSpanMatchesReference(t *testing.T) {
	for i, in := range spanCorpus {
		want, err := refFromStoredSpan([]byte(in))
		if err != nil {
			t.Fatalf("corpus %d: reference: %v", i, err)
		}
		got, err := AppendSpan(nil, []byte(in))
		if err != nil {
			t.Fatalf("corpus %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("corpus %d:\n got %s\nwant %s", i, got, want)
		}
	}
	// Whole documents.
	doc := `{"spans": [` + strings.Join(spanCorpus, ", ") + `]}`
	got, ok, err := FromTraceData([]byte(doc))
	want, wok, werr := refFromTraceData([]byte(doc))
	if err != nil || werr != nil || !ok || !wok || len(got) != len(want) {
		t.Fatalf("document: %v %v %v %v %d %d", err, werr, ok, wok, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("document span %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	for _, doc := range []string{`null`, `{}`, `{"SPANS": null}`, `{"Spans": [], "x": 1}`, `{"spans": [1]}`, `{"spans": {}}`,
		`[]`, `"x"`, `{"spans": []} x`, `{"spans": [`, ``, `{"spans": [{"a": 01}]}`, `{"spans": [{"a": "\x01"}]}`, `{"spans": [{"a": "\q"}]}`,
		`{"spans": [], "spans": [null]}`, `  {"spans" : [ {} , null ] }  `} {
		got, ok, err := FromTraceData([]byte(doc))
		want, wok, _ := refFromTraceData([]byte(doc))
		if err != nil || ok != wok || len(got) != len(want) {
			t.Errorf("document %q: ok %v (want %v), %d spans (want %d), %v", doc, ok, wok, len(got), len(want), err)
		}
	}
	for _, bad := range []string{`[]`, `5`, `{`, `{"a": 1} {}`, ``} {
		if _, err := AppendSpan(nil, []byte(bad)); err == nil {
			t.Errorf("stored span %q: no error", bad)
		}
	}
	// An out-of-range number is proto JSON's Infinity, not an error.
	got1, err := AppendSpan(nil, []byte(`{"attributes": {"big": "1e400", "small": "-1e400"}}`))
	if err != nil || string(got1) != `{"attributes":[{"key":"big","value":{"double_value":"Infinity"}},{"key":"small","value":{"double_value":"-Infinity"}}]}` {
		t.Errorf("out of range: %s %v", got1, err)
	}
}

// FuzzAppendSpan checks that any input converts without panicking to valid
// JSON, the same as the reference conversion's wherever that one succeeds
// (the deliberate differences aside, see quirky).
func FuzzAppendSpan(f *testing.F) {
	for _, s := range spanCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := AppendSpan(nil, in)
		want, werr := refFromStoredSpan(in)
		if (err == nil) != (werr == nil) && !(werr != nil && quirky(in)) {
			if werr == nil || !strings.Contains(werr.Error(), "encode span") {
				t.Fatalf("error %v, reference %v", err, werr)
			}
		}
		if err != nil {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON out: %s", got)
		}
		if werr == nil && !bytes.Equal(got, want) && !quirky(in) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}
