package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func v3(t testing.TB, ts *httptest.Server, method, path string, body any) response {
	t.Helper()
	ctype := ""
	if body != nil {
		ctype = "json"
	}
	return call(t, ts, method, "/api/3.0/mlflow/"+path, ctype, body)
}

func startV3(t testing.TB, ts *httptest.Server, exp, id string, ms int64, extra map[string]any) map[string]any {
	t.Helper()
	info := map[string]any{
		"trace_id":           id,
		"client_request_id":  "cr-" + id,
		"trace_location":     map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}},
		"request_time":       formatTimestamp(ms),
		"execution_duration": "1.5s",
		"state":              "OK",
		"trace_metadata":     map[string]any{"mlflow.sourceRun": "r1"},
		"tags":               map[string]any{"mlflow.traceName": "pred"},
		"request_preview":    `{"x": 1}`,
	}
	for k, v := range extra {
		info[k] = v
	}
	r := v3(t, ts, "POST", "traces", map[string]any{"trace": map[string]any{"trace_info": info}})
	wantStatus(t, r, 200)
	return r.json(t)["trace"].(map[string]any)["trace_info"].(map[string]any)
}

func TestTracesV3API(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "tv3")
	id := "tr-0123456789abcdef0123456789abcdef"
	info := startV3(t, ts, exp, id, 1700000000500, nil)
	if info["trace_id"] != id || info["request_time"] != "2023-11-14T22:13:20.500Z" ||
		info["execution_duration"] != "1.500s" || info["state"] != "OK" || info["client_request_id"] != "cr-"+id {
		t.Fatalf("start: %v", info)
	}
	tags := info["tags"].(map[string]any)
	if tags["mlflow.artifactLocation"] != "mlflow-artifacts:/"+exp+"/traces/"+id+"/artifacts" {
		t.Fatalf("artifact location: %v", tags)
	}
	loc := info["trace_location"].(map[string]any)
	if loc["type"] != "MLFLOW_EXPERIMENT" || loc["mlflow_experiment"].(map[string]any)["experiment_id"] != exp {
		t.Fatalf("location: %v", loc)
	}

	// Upsert keeps what the second start does not say.
	info = startV3(t, ts, exp, id, 1700000000500, map[string]any{"tags": map[string]any{"extra": "1"}, "request_preview": ""})
	tags = info["tags"].(map[string]any)
	if tags["mlflow.traceName"] != "pred" || tags["extra"] != "1" || info["request_preview"] != `{"x": 1}` {
		t.Fatalf("upsert: %v", info)
	}

	// The v2 view sees the same trace.
	r := get(t, ts, "traces/"+id+"/info")
	wantStatus(t, r, 200)
	v2 := r.json(t)["trace_info"].(map[string]any)
	if v2["request_id"] != id || v2["status"] != "OK" || v2["timestamp_ms"].(json.Number).String() != "1700000000500" ||
		v2["execution_time_ms"].(json.Number).String() != "1500" {
		t.Fatalf("v2 view: %v", v2)
	}
	// ... and a v2 trace is visible through v3.
	r = post(t, ts, "traces", map[string]any{"experiment_id": exp, "timestamp_ms": 1700000001000})
	wantStatus(t, r, 200)
	v2id := r.json(t)["trace_info"].(map[string]any)["request_id"].(string)
	r = v3(t, ts, "GET", "traces/"+v2id, nil)
	wantStatus(t, r, 200)
	if got := r.json(t)["trace"].(map[string]any)["trace_info"].(map[string]any); got["state"] != "IN_PROGRESS" || got["execution_duration"] != nil {
		t.Fatalf("v2 trace through v3: %v", got)
	}

	// Search v3 and v2.
	search := func(body map[string]any) []any {
		t.Helper()
		body["locations"] = []any{map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}}}
		r := v3(t, ts, "POST", "traces/search", body)
		wantStatus(t, r, 200)
		l, _ := r.json(t)["traces"].([]any)
		return l
	}
	if l := search(map[string]any{}); len(l) != 2 || l[0].(map[string]any)["trace_id"] != v2id {
		t.Fatalf("search all: %v", l)
	}
	for filter, want := range map[string]int{
		"trace.status = 'OK'":                 1,
		"trace.timestamp_ms > 1700000000600":  1,
		"trace.execution_time_ms >= 1500":     1,
		"end_time_ms = 1700000002000":         1,
		"tags.extra = '1'":                    1,
		"tags.extra IS NULL":                  1,
		"tags.`mlflow.traceName` LIKE 'pr%'":  1,
		"metadata.`mlflow.sourceRun` = 'r1'":  1,
		"run_id = 'r1'":                       1,
		"client_request_id = 'cr-" + id + "'": 1,
		"name RLIKE '^p.e'":                   1,
		"status IN ('OK', 'ERROR')":           1,
	} {
		if l := search(map[string]any{"filter": filter}); len(l) != want {
			t.Errorf("filter %q: %d traces, want %d", filter, len(l), want)
		}
	}
	if l := search(map[string]any{"order_by": []any{"timestamp_ms ASC"}, "max_results": 1}); len(l) != 1 || l[0].(map[string]any)["trace_id"] != id {
		t.Fatalf("ordered page: %v", l)
	}
	wantError(t, v3(t, ts, "POST", "traces/search", map[string]any{"filter": "x"}), 400, "INVALID_PARAMETER_VALUE", "locations")
	wantError(t, v3(t, ts, "POST", "traces/search", map[string]any{"locations": []any{map[string]any{"type": "MLFLOW_EXPERIMENT",
		"mlflow_experiment": map[string]any{"experiment_id": exp}}}, "max_results": 501}), 400, "INVALID_PARAMETER_VALUE",
		"Invalid value 501 for parameter 'max_results' supplied:  Hint: Value was of type 'int'.")
	// v2 as MLflow 2.22.1 answered it (traces.jsonl #48).
	wantError(t, get(t, ts, "traces?experiment_ids="+exp+"&max_results=501"), 400, "INVALID_PARAMETER_VALUE",
		`Invalid value "501" for parameter 'max_results' supplied:  Hint: Value was of type 'str'.`)
	r = get(t, ts, "traces?experiment_ids="+exp+"&filter=run_id+%3D+%27r1%27")
	wantStatus(t, r, 200)
	if l := r.json(t)["traces"].([]any); len(l) != 1 || l[0].(map[string]any)["request_id"] != id {
		t.Fatalf("v2 search: %v", l)
	}

	// Link to run: run_id searches find linked traces.
	run := mkRun(t, ts, exp)
	wantStatus(t, post(t, ts, "traces/link-to-run", map[string]any{"trace_ids": []string{v2id, "tr-unknown"}, "run_id": run}), 200)
	if l := search(map[string]any{"filter": "run_id = '" + run + "'"}); len(l) != 1 || l[0].(map[string]any)["trace_id"] != v2id {
		t.Fatalf("linked search: %v", l)
	}
	wantError(t, post(t, ts, "traces/link-to-run", map[string]any{"trace_ids": []string{v2id}, "run_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST", "")
	many := make([]string, 101)
	for i := range many {
		many[i] = "x"
	}
	wantError(t, post(t, ts, "traces/link-to-run", map[string]any{"trace_ids": many, "run_id": run}), 400, "INVALID_PARAMETER_VALUE", "more than 100")

	// Tags through v3.
	wantStatus(t, v3(t, ts, "PATCH", "traces/"+id+"/tags", map[string]any{"key": "k3", "value": "v3"}), 200)
	wantStatus(t, v3(t, ts, "DELETE", "traces/"+id+"/tags", map[string]any{"key": "extra"}), 200)
	r = v3(t, ts, "GET", "traces/"+id, nil)
	tags = r.json(t)["trace"].(map[string]any)["trace_info"].(map[string]any)["tags"].(map[string]any)
	if tags["k3"] != "v3" || tags["extra"] != nil {
		t.Fatalf("tags: %v", tags)
	}

	// GetTrace: no data yet.
	wantError(t, v3(t, ts, "GET", "traces/get?trace_id="+id, nil), 404, "RESOURCE_DOES_NOT_EXIST", "not fully exported")
	r = v3(t, ts, "GET", "traces/get?trace_id="+id+"&allow_partial=true", nil)
	wantStatus(t, r, 200)
	if tr := r.json(t)["trace"].(map[string]any); tr["spans"] != nil || tr["trace_info"] == nil {
		t.Fatalf("partial: %v", tr)
	}
	// Upload the data as a client does, then get the spans.
	data := `{"spans": [{"trace_id": "ASNFZ4mrze8BI0VniavN7w==", "span_id": "ASNFZ4mrze8=", "parent_span_id": null,
	  "name": "pred", "start_time_unix_nano": 1700000000500000000, "end_time_unix_nano": 1700000002000000000,
	  "events": [{"name": "e", "time_unix_nano": 1700000001000000000, "attributes": {"n": 1}}],
	  "status": {"code": "STATUS_CODE_OK", "message": ""},
	  "attributes": {"mlflow.traceRequestId": "\"` + id + `\"", "mlflow.spanType": "\"CHAIN\"", "mlflow.spanInputs": "{\"x\": 1}", "n": "2"}}]}`
	wantStatus(t, call(t, ts, "PUT", "/api/2.0/mlflow-artifacts/artifacts/"+exp+"/traces/"+id+"/artifacts/traces.json", "text/plain", data), 200)
	r = v3(t, ts, "GET", "traces/get?trace_id="+id, nil)
	wantStatus(t, r, 200)
	spans := r.json(t)["trace"].(map[string]any)["spans"].([]any)
	sp := spans[0].(map[string]any)
	if sp["name"] != "pred" || sp["span_id"] != "ASNFZ4mrze8=" || sp["start_time_unix_nano"] != "1700000000500000000" ||
		sp["status"].(map[string]any)["code"] != "STATUS_CODE_OK" || sp["parent_span_id"] != nil {
		t.Fatalf("span: %v", sp)
	}
	attrs := map[string]any{}
	for _, a := range sp["attributes"].([]any) {
		kv := a.(map[string]any)
		attrs[kv["key"].(string)] = kv["value"]
	}
	if attrs["mlflow.spanType"].(map[string]any)["string_value"] != "CHAIN" || attrs["n"].(map[string]any)["int_value"] != "2" ||
		attrs["mlflow.spanInputs"].(map[string]any)["kvlist_value"] == nil {
		t.Fatalf("attributes: %v", attrs)
	}
	if !strings.Contains(string(r.body), `"time_unix_nano":"1700000001000000000"`) {
		t.Fatalf("event: %s", r.body)
	}
	// The static route wins over {trace_id}; batch gets.
	r = v3(t, ts, "GET", "traces/batchGet?trace_ids="+id+"&trace_ids="+v2id+"&trace_ids=tr-nope", nil)
	wantStatus(t, r, 200)
	if l := r.json(t)["traces"].([]any); len(l) != 1 {
		t.Fatalf("batchGet (complete traces only): %s", r.body)
	}
	r = v3(t, ts, "POST", "traces/batchGetInfos", map[string]any{"trace_ids": []string{id, v2id, "tr-nope"}})
	wantStatus(t, r, 200)
	if l := r.json(t)["trace_infos"].([]any); len(l) != 2 {
		t.Fatalf("batchGetInfos: %s", r.body)
	}

	// Errors.
	wantError(t, v3(t, ts, "GET", "traces/tr-nope", nil), 404, "RESOURCE_DOES_NOT_EXIST", "Trace with ID 'tr-nope' not found.")
	wantError(t, v3(t, ts, "POST", "traces", map[string]any{}), 400, "INVALID_PARAMETER_VALUE", "'trace'")
	wantError(t, v3(t, ts, "POST", "traces", map[string]any{"trace": map[string]any{"trace_info": map[string]any{"trace_id": "tr-x"}}}),
		400, "INVALID_PARAMETER_VALUE", "trace_location")
	wantError(t, v3(t, ts, "POST", "traces", map[string]any{"trace": map[string]any{"trace_info": map[string]any{"trace_id": "tr-x",
		"trace_location": map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": "999"}}}}}),
		404, "RESOURCE_DOES_NOT_EXIST", "")
	wantError(t, v3(t, ts, "POST", "traces", map[string]any{"trace": map[string]any{"trace_info": map[string]any{"trace_id": "tr-x",
		"request_time":   "yesterday",
		"trace_location": map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}}}}}),
		400, "INVALID_PARAMETER_VALUE", "request_time")

	// Delete through v3.
	r = v3(t, ts, "POST", "traces/delete-traces", map[string]any{"experiment_id": exp, "request_ids": []string{id}})
	wantStatus(t, r, 200)
	if n := r.json(t)["traces_deleted"].(json.Number).String(); n != "1" {
		t.Fatalf("deleted %s", n)
	}
	wantError(t, v3(t, ts, "GET", "traces/"+id, nil), 404, "RESOURCE_DOES_NOT_EXIST", "")
	// The ajax mirror answers too.
	wantStatus(t, call(t, ts, "GET", "/ajax-api/3.0/mlflow/traces/"+v2id, "", nil), 200)
}

func TestAssessmentsAPI(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "assess")
	id := "tr-00000000000000000000000000000001"
	startV3(t, ts, exp, id, 1700000000000, nil)
	src := map[string]any{"source_type": "HUMAN", "source_id": "bob"}
	r := v3(t, ts, "POST", "traces/"+id+"/assessments", map[string]any{"assessment": map[string]any{
		"assessment_name": "quality", "source": src, "feedback": map[string]any{"value": 0.5},
		"create_time": "2025-01-01T00:00:00Z", "metadata": map[string]any{"a": "1"},
	}})
	wantStatus(t, r, 200)
	a := r.json(t)["assessment"].(map[string]any)
	aid, _ := a["assessment_id"].(string)
	if !strings.HasPrefix(aid, "a-") || a["trace_id"] != id || a["valid"] != true || a["create_time"] != "2025-01-01T00:00:00Z" {
		t.Fatalf("created: %v", a)
	}
	// An override invalidates the original; deleting it restores it.
	r = v3(t, ts, "POST", "traces/"+id+"/assessments", map[string]any{"assessment": map[string]any{
		"assessment_name": "quality", "source": src, "feedback": map[string]any{"value": 1}, "overrides": aid}})
	wantStatus(t, r, 200)
	over := r.json(t)["assessment"].(map[string]any)["assessment_id"].(string)
	r = v3(t, ts, "GET", "traces/"+id+"/assessments/"+aid, nil)
	wantStatus(t, r, 200)
	if r.json(t)["assessment"].(map[string]any)["valid"] != false {
		t.Fatalf("overridden assessment still valid: %s", r.body)
	}
	// The trace info carries its assessments.
	r = v3(t, ts, "GET", "traces/"+id, nil)
	if l := r.json(t)["trace"].(map[string]any)["trace_info"].(map[string]any)["assessments"].([]any); len(l) != 2 {
		t.Fatalf("assessments on the trace: %s", r.body)
	}
	// Update with a FieldMask string.
	r = v3(t, ts, "PATCH", "traces/"+id+"/assessments/"+aid, map[string]any{
		"assessment":  map[string]any{"assessment_name": "q2", "rationale": "because", "metadata": map[string]any{"b": "2"}},
		"update_mask": "assessmentName,rationale,metadata"})
	wantStatus(t, r, 200)
	u := r.json(t)["assessment"].(map[string]any)
	md := u["metadata"].(map[string]any)
	if u["assessment_name"] != "q2" || u["rationale"] != "because" || md["a"] != "1" || md["b"] != "2" {
		t.Fatalf("updated: %v", u)
	}
	wantError(t, v3(t, ts, "PATCH", "traces/"+id+"/assessments/"+aid, map[string]any{
		"assessment": map[string]any{"assessment_name": "q", "expectation": map[string]any{"value": 1}}, "update_mask": "expectation"}),
		400, "INVALID_PARAMETER_VALUE", "Feedback assessment")
	wantError(t, v3(t, ts, "PATCH", "traces/"+id+"/assessments/"+aid, map[string]any{"assessment": map[string]any{}}),
		400, "INVALID_PARAMETER_VALUE", "update_mask")
	wantStatus(t, v3(t, ts, "DELETE", "traces/"+id+"/assessments/"+over, nil), 200)
	r = v3(t, ts, "GET", "traces/"+id+"/assessments/"+aid, nil)
	if r.json(t)["assessment"].(map[string]any)["valid"] != true {
		t.Fatalf("restored assessment not valid: %s", r.body)
	}
	wantError(t, v3(t, ts, "GET", "traces/"+id+"/assessments/"+over, nil), 404, "RESOURCE_DOES_NOT_EXIST", "")
	wantError(t, v3(t, ts, "GET", "traces/tr-nope/assessments/"+aid, nil), 404, "RESOURCE_DOES_NOT_EXIST", "")
	wantError(t, v3(t, ts, "POST", "traces/"+id+"/assessments", map[string]any{"assessment": map[string]any{"source": src}}),
		400, "INVALID_PARAMETER_VALUE", "assessment_name")
	wantError(t, v3(t, ts, "POST", "traces/"+id+"/assessments", map[string]any{"assessment": map[string]any{"assessment_name": "x",
		"overrides": "a-nope"}}), 404, "RESOURCE_DOES_NOT_EXIST", "")
}

// TestTraceRequestMessages pins the declared decoding of the trace
// requests (v2 and v3): the messages, and nested fields named by path.
func TestTraceRequestMessages(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "trdecl")
	startV3(t, ts, exp, "tr-decl", 1700000000000, nil)
	const hint = " See the API docs for more information about request parameters."
	loc := func(v any) map[string]any { return map[string]any{"locations": []any{v}} }
	cases := []struct {
		name string
		r    response
		msg  string
	}{
		{"v3 search location type", v3(t, ts, "POST", "traces/search", loc(map[string]any{"mlflow_experiment": map[string]any{"experiment_id": true}})),
			"Invalid value true for parameter 'locations[0].mlflow_experiment.experiment_id' supplied:  Hint: Value was of type 'bool'." + hint},
		{"v3 search location not a message", v3(t, ts, "POST", "traces/search", loc("x")),
			"Invalid value \"x\" for parameter 'locations[0]' supplied:  Hint: Value was of type 'str'." + hint},
		{"v3 search no experiment", v3(t, ts, "POST", "traces/search", loc(map[string]any{"type": "UC"})),
			"At least one location of type MLFLOW_EXPERIMENT is required in 'locations'."},
		{"v3 search max 0", v3(t, ts, "POST", "traces/search", map[string]any{"locations": []any{map[string]any{"mlflow_experiment": map[string]any{"experiment_id": exp}}}, "max_results": 0}),
			"Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"},
		{"v2 search no experiments", get(t, ts, "traces?max_results=10"),
			"Missing value for required parameter 'experiment_ids'." + hint},
		{"v3 start without info", v3(t, ts, "POST", "traces", map[string]any{"trace": map[string]any{"trace_info": "x"}}),
			"Missing value for required parameter 'trace.trace_info'." + hint},
		{"v3 start trace type", v3(t, ts, "POST", "traces", map[string]any{"trace": 1}),
			"Invalid value 1 for parameter 'trace' supplied:  Hint: Value was of type 'int'." + hint},
		{"v3 delete neither", v3(t, ts, "POST", "traces/delete-traces", map[string]any{"experiment_id": exp}),
			"Either `max_timestamp_millis` or `request_ids` must be specified."},
		{"v3 delete both", v3(t, ts, "POST", "traces/delete-traces", map[string]any{"experiment_id": exp, "max_timestamp_millis": 1, "request_ids": []string{"tr-decl"}}),
			"Only one of `max_timestamp_millis` and `request_ids` can be specified."},
		{"v3 delete max traces", v3(t, ts, "POST", "traces/delete-traces", map[string]any{"experiment_id": exp, "max_timestamp_millis": 1, "max_traces": -1}),
			"Invalid value -1 for parameter 'max_traces' supplied. It must be a positive integer"},
		{"v2 end status", call(t, ts, "PATCH", "/api/2.0/mlflow/traces/tr-decl", "json", map[string]any{"status": 9}),
			"Invalid value 9 for parameter 'status' supplied:  Hint: Value was of type 'int'." + hint},
		{"v3 tag key", v3(t, ts, "PATCH", "traces/tr-decl/tags", map[string]any{"key": "a/../b", "value": "v"}),
			"Invalid value \"a/../b\" for parameter 'key' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to 'b'"},
		{"link too many", post(t, ts, "traces/link-to-run", map[string]any{"run_id": "r", "trace_ids": make([]string, 101)}),
			"Cannot link more than 100 traces to a run in a single request. Provided 101 traces."},
		{"assessment not a message", v3(t, ts, "POST", "traces/tr-decl/assessments", map[string]any{"assessment": []any{}}),
			"Invalid value [] for parameter 'assessment' supplied:  Hint: Value was of type 'list'." + hint},
		{"assessment name", v3(t, ts, "POST", "traces/tr-decl/assessments", map[string]any{"assessment": map[string]any{}}),
			"Missing value for required parameter 'assessment.assessment_name'." + hint},
		{"update without mask", v3(t, ts, "PATCH", "traces/tr-decl/assessments/a-1", map[string]any{"assessment": map[string]any{}}),
			"Missing value for required parameter 'update_mask'." + hint},
		{"update both kinds", v3(t, ts, "PATCH", "traces/tr-decl/assessments/a-1", map[string]any{"assessment": map[string]any{}, "update_mask": "feedback,expectation"}),
			"Cannot specify both `expectation` and `feedback` parameters."},
		{"get trace without id", call(t, ts, "GET", "/api/3.0/mlflow/traces/get?allow_partial=true", "", nil),
			"Missing value for required parameter 'trace_id'." + hint},
	}
	for _, c := range cases {
		wantStatus(t, c.r, 400)
		if got := c.r.message(t); got != c.msg {
			t.Errorf("%s: message\n%q, want\n%q", c.name, got, c.msg)
		}
	}
}

// TestGetTraceAllowPartial: allow_partial in the query is "true" or
// "false" in any case, as MLflow's _get_request_message reads a GET's
// booleans; anything else is refused before the other fields are checked.
func TestGetTraceAllowPartial(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "partial")
	startV3(t, ts, exp, "tr-partial", 1700000000000, nil)
	wantStatus(t, v3(t, ts, "GET", "traces/get?trace_id=tr-partial&allow_partial=TRUE", nil), 200)
	wantError(t, v3(t, ts, "GET", "traces/get?trace_id=tr-partial&allow_partial=False", nil), 404, "RESOURCE_DOES_NOT_EXIST", "not fully exported")
	for _, q := range []string{"trace_id=tr-partial&allow_partial=yes", "allow_partial=yes"} {
		r := v3(t, ts, "GET", "traces/get?"+q, nil)
		wantStatus(t, r, 400)
		if got, want := r.message(t), "Invalid boolean value: yes, must be 'true' or 'false'."; got != want {
			t.Errorf("%s: message %q, want %q", q, got, want)
		}
	}
}
