package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

const docsHint = " See the API docs for more information about request parameters."

// wantExact asserts a 400 INVALID_PARAMETER_VALUE with exactly msg, or a
// 200 when msg is empty.
func wantExact(t *testing.T, r response, msg string) {
	t.Helper()
	if msg == "" {
		wantStatus(t, r, 200)
		return
	}
	wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "")
	if got := r.message(t); got != msg {
		t.Fatalf("message\n got %q\nwant %q", got, msg)
	}
}

// registryFixture makes experiment e, a run, model m and its version 1.
func registryFixture(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ts, _ := newTestServer(t)
	run := mkRun(t, ts, mkExperiment(t, ts, "e"))
	wantStatus(t, post(t, ts, "registered-models/create", map[string]any{"name": "m"}), 200)
	wantStatus(t, post(t, ts, "model-versions/create", map[string]any{
		"name": "m", "source": "runs:/" + run + "/model", "run_id": run}), 200)
	return ts, run
}

// TestRegistryTagLimits: MLflow's _validate_registered_model_tag and
// _validate_model_version_tag, limit by limit, on every route that takes
// registry tags: the value at the limit is accepted, one over refused with
// MLflow's message (lengths in code points).
func TestRegistryTagLimits(t *testing.T) {
	ts, run := registryFixture(t)
	const (
		keyMsg    = "'key' exceeds the maximum length of 250 characters"
		valueMsg  = "'value' exceeds the maximum length of 5000 characters"
		promptMsg = "Prompt text exceeds max length of 5000 characters."
	)
	n := 0
	routes := map[string]func(key, value string) response{
		"registered-models/create": func(k, v string) response {
			n++
			return post(t, ts, "registered-models/create", map[string]any{"name": "c" + strings.Repeat("x", n),
				"tags": []any{map[string]any{"key": k, "value": v}}})
		},
		"registered-models/set-tag": func(k, v string) response {
			return post(t, ts, "registered-models/set-tag", map[string]any{"name": "m", "key": k, "value": v})
		},
		"model-versions/create": func(k, v string) response {
			return post(t, ts, "model-versions/create", map[string]any{"name": "m", "source": "runs:/" + run + "/model",
				"run_id": run, "tags": []any{map[string]any{"key": k, "value": v}}})
		},
		"model-versions/set-tag": func(k, v string) response {
			return post(t, ts, "model-versions/set-tag", map[string]any{"name": "m", "version": "1", "key": k, "value": v})
		},
	}
	for route, send := range routes {
		version := strings.HasPrefix(route, "model-versions")
		for _, c := range []struct {
			what, key, value, msg string
		}{
			{"value at 5000", "k", strings.Repeat("v", 5000), ""},
			{"value at 5000 code points", "k", strings.Repeat("é", 5000), ""},
			{"value 5001", "k", strings.Repeat("v", 5001), valueMsg},
			{"key at 250", strings.Repeat("k", 250), "v", ""},
			{"key 251", strings.Repeat("k", 251), "v", keyMsg},
			{"key checked before value", strings.Repeat("k", 251), strings.Repeat("v", 5001), keyMsg},
			{"prompt text 5000", "mlflow.prompt.text", strings.Repeat("p", 5000), ""},
			{"prompt text 5001", "mlflow.prompt.text", strings.Repeat("p", 5001),
				map[bool]string{true: promptMsg, false: valueMsg}[version]},
		} {
			t.Run(route+"/"+c.what, func(t *testing.T) { wantExact(t, send(c.key, c.value), c.msg) })
		}
	}
}

// TestRegistryAliasRules: MLflow's _validate_model_alias_name, rule by rule
// and in its order, after the schema's required check.
func TestRegistryAliasRules(t *testing.T) {
	ts, _ := registryFixture(t)
	for _, c := range []struct{ alias, version, msg string }{
		{strings.Repeat("a", 255), "1", ""},
		{strings.Repeat("ä", 255), "1", ""},
		{strings.Repeat("a", 256), "1", "'Registered model alias name' exceeds the maximum length of 255 characters"},
		{"", "1", "Missing value for required parameter 'alias'." + docsHint},
		{"a b", "1", "Invalid alias name: 'a b'. Names may only contain alphanumerics, underscores (_), and dashes (-)."},
		{"LaTeSt", "1", "'latest' alias name (case insensitive) is reserved."},
		{"v12", "1", "Version alias name 'v12' is reserved."},
		{"V٣", "1", "Version alias name 'V٣' is reserved."},
		{"v1x", "1", ""},
		{"champion", "x", "Parameter 'version' must be an integer, got 'x'."},
		{"a b", "x", "Invalid alias name: 'a b'. Names may only contain alphanumerics, underscores (_), and dashes (-)."},
	} {
		r := post(t, ts, "registered-models/alias", map[string]any{"name": "m", "alias": c.alias, "version": c.version})
		t.Run(c.alias, func(t *testing.T) { wantExact(t, r, c.msg) })
	}
}

// TestRegistrySearchMaxResults: the schema's upper bound (MLflow's
// _assert_less_than_or_equal without a message: the invalid-value hint),
// search-model-versions' store lower bound, and our lower bound on
// search-registered-models (a deviation, see Decisions).
func TestRegistrySearchMaxResults(t *testing.T) {
	ts, _ := registryFixture(t)
	hint := func(v string) string {
		return `Invalid value "` + v + `" for parameter 'max_results' supplied:  Hint: Value was of type 'str'.` + docsHint
	}
	for _, c := range []struct{ query, msg string }{
		{"registered-models/search?max_results=1000", ""},
		{"registered-models/search?max_results=1001", hint("1001")},
		{"registered-models/search?max_results=0", "Invalid value for request parameter max_results. It must be at least 1, but got value 0"},
		{"registered-models/search?max_results=-3", "Invalid value for request parameter max_results. It must be at least 1, but got value -3"},
		{"model-versions/search?max_results=200000", ""},
		{"model-versions/search?max_results=200001", hint("200001")},
		{"model-versions/search?max_results=0", "Invalid value for max_results. It must be a positive integer, but got 0"},
		{"model-versions/search?max_results=-1", "Invalid value for max_results. It must be a positive integer, but got -1"},
		{"model-versions/search?max_results=x", `Invalid value "x" for parameter 'max_results' supplied:  Hint: Value was of type 'str'.` + docsHint},
	} {
		t.Run(c.query, func(t *testing.T) { wantExact(t, get(t, ts, c.query), c.msg) })
	}
}

// TestDeclCheckOrder: every schema check (types, required-ness, in the
// declaration's order) comes before the store's checks, as in MLflow, where
// _get_request_message runs before the store parses the version.
func TestDeclCheckOrder(t *testing.T) {
	ts, _ := registryFixture(t)
	for _, c := range []struct {
		path string
		body map[string]any
		msg  string
	}{
		{"model-versions/set-tag", map[string]any{"name": "m", "version": "x"},
			"Missing value for required parameter 'key'." + docsHint},
		{"model-versions/set-tag", map[string]any{"name": "m", "version": "x", "key": "k", "value": 5},
			"Invalid value 5 for parameter 'value' supplied:  Hint: Value was of type 'int'." + docsHint},
		{"model-versions/set-tag", map[string]any{"name": "m", "version": "x", "key": "k"},
			"Parameter 'version' must be an integer, got 'x'."},
		{"model-versions/transition-stage", map[string]any{"name": "m", "version": "x", "stage": "Nope"},
			"Invalid Model Version stage: Nope. Value must be one of None, Staging, Production, Archived."},
		{"model-versions/transition-stage", map[string]any{"name": "m", "version": 1, "stage": "staging",
			"archive_existing_versions": "yes"},
			`Invalid value "yes" for parameter 'archive_existing_versions' supplied:  Hint: Value was of type 'str'.` + docsHint},
		{"registered-models/alias", map[string]any{"alias": "v1"},
			"Missing value for required parameter 'name'." + docsHint},
	} {
		t.Run(c.path, func(t *testing.T) { wantExact(t, post(t, ts, c.path, c.body), c.msg) })
	}
}

// TestProtoJSONScalars: how MLflow's parse_dict (protobuf's JSON mapping)
// and its schemas treat scalars: a string holding an integer for int64, a
// scalar where a repeated field belongs, enum names and numbers in a query.
func TestProtoJSONScalars(t *testing.T) {
	ts, _ := newTestServer(t)
	del := mkExperiment(t, ts, "gone")
	wantStatus(t, post(t, ts, "experiments/delete", map[string]any{"experiment_id": del}), 200)

	// int64 from a JSON string.
	r := post(t, ts, "experiments/search", map[string]any{"max_results": "1"})
	wantStatus(t, r, 200)
	if n := len(r.json(t)["experiments"].([]any)); n != 1 {
		t.Fatalf("max_results \"1\": %d experiments", n)
	}

	// A scalar for a repeated field: SearchRuns' schema (_assert_array)
	// refuses it; SearchDatasets has no schema, so the field is unset.
	wantExact(t, post(t, ts, "runs/search", map[string]any{"experiment_ids": "0"}),
		`Invalid value "0" for parameter 'experiment_ids' supplied:  Hint: Value was of type 'str'.`+docsHint)
	ds := func(ids any) response {
		return call(t, ts, "POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", "json", map[string]any{"experiment_ids": ids})
	}
	wantExact(t, ds("0"), "SearchDatasets request must specify at least one experiment_id.")
	wantExact(t, ds([]any{map[string]any{}}), "SearchDatasets request must specify at least one experiment_id.")
	wantExact(t, ds([]any{"0", map[string]any{}}), "")
	wantExact(t, ds([]any{0}), "")

	// Enums in a query: by name, by number; an unknown name or number is
	// ignored (the default, ACTIVE_ONLY).
	for _, c := range []struct {
		view string
		want int
	}{{"ACTIVE_ONLY", 1}, {"DELETED_ONLY", 1}, {"ALL", 2}, {"2", 1}, {"3", 2}, {"FOO", 1}, {"7", 1}, {"-1", 1}} {
		r := get(t, ts, "experiments/search?max_results=10&view_type="+c.view)
		wantStatus(t, r, 200)
		if n := len(r.json(t)["experiments"].([]any)); n != c.want {
			t.Errorf("view_type=%s: %d experiments, want %d", c.view, n, c.want)
		}
	}
	r = post(t, ts, "experiments/search", map[string]any{"max_results": 10, "view_type": 7})
	wantStatus(t, r, 200)
	if n := len(r.json(t)["experiments"].([]any)); n != 1 {
		t.Errorf("view_type 7 in a body: %d experiments, want 1", n)
	}
}

// TestScanContainers: the scanner's objects and arrays agree with
// encoding/json on well-formed and malformed input.
func TestScanContainers(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, ` { } `, `[ ]`, `{"a":1}`, `{"a":1,"b":[1,2,{"c":[]}]}`, `[1, "x", null, true]`,
		`{`, `[`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a":1 "b":2}`, `{,}`, `[,]`,
		`{"a":1]`, `[1}`, `{1:2}`, `[1,2`, `{"a":1,"b"`, `{"a":[1,{"b":2]}`,
	} {
		_, err := parseJSONValue([]byte(in))
		if got, want := err == nil, json.Valid([]byte(in)); got != want {
			t.Errorf("%s: parsed %v, encoding/json says valid %v", in, got, want)
		}
	}
}
