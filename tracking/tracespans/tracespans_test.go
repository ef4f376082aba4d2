package tracespans

import "testing"

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
