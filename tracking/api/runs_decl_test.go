package api

import (
	"strconv"
	"testing"
)

// TestLogMetricSchemaBeforeStore: MLflow's _log_metric schema checks
// model_id, dataset_name and dataset_digest as strings ([_assert_string])
// whether or not a model_id is given, and the schema runs before the
// store's metric checks (Decisions: "log-metric schema").
func TestLogMetricSchemaBeforeStore(t *testing.T) {
	ts, _ := newTestServer(t)
	run := mkRun(t, ts, mkExperiment(t, ts, "e"))
	intHint := func(v, p string) string {
		return "Invalid value " + v + " for parameter '" + p + "' supplied:  Hint: Value was of type 'int'." + docsHint
	}
	// A negative timestamp is the store's; the bad dataset_name is the schema's.
	wantExact(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "m", "value": 1,
		"timestamp": -1, "dataset_name": 5}), intHint("5", "dataset_name"))
	wantExact(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "m", "value": 1,
		"timestamp": 1, "dataset_digest": 7}), intHint("7", "dataset_digest"))
	wantExact(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "m", "value": 1,
		"timestamp": 1, "model_id": 3}), intHint("3", "model_id"))
	// A blank optional number is refused.
	// log-metric's timestamp is [_assert_intlike, _assert_required]: a
	// blank one fails the type first; value is [_assert_required, ...].
	wantExact(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "m", "value": 1,
		"timestamp": ""}), "Invalid value \"\" for parameter 'timestamp' supplied:  Hint: Value was of type 'str'."+docsHint)
	wantExact(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "m", "value": 1}),
		"Missing value for required parameter 'timestamp'."+docsHint)
	wantExact(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "m", "value": "",
		"timestamp": 1}), "Missing value for required parameter 'value'."+docsHint)
	wantExact(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "m", "value": 1,
		"timestamp": 1, "step": ""}), "Invalid value \"\" for parameter 'step' supplied:  Hint: Value was of type 'str'."+docsHint)
	wantExact(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "m", "value": "1.5",
		"timestamp": "2", "step": "3", "dataset_name": "d"}), "")
}

// TestNestedMessagePaths: a field of a nested message (log-batch's
// metrics, params, tags; log-inputs' datasets, their tags and dataset,
// models) is named by its path, element by element (Decisions: "nested
// message fields").
func TestNestedMessagePaths(t *testing.T) {
	ts, _ := newTestServer(t)
	run := mkRun(t, ts, mkExperiment(t, ts, "e"))
	m := func(k string, extra map[string]any) map[string]any {
		o := map[string]any{"key": k, "value": 1, "timestamp": 1}
		for n, v := range extra {
			o[n] = v
		}
		return o
	}
	cases := []struct {
		route string
		body  map[string]any
		want  string
	}{
		{"runs/log-batch", map[string]any{"run_id": run, "metrics": []any{m("a", nil), m("b", map[string]any{"dataset_digest": 5})}},
			"Invalid value 5 for parameter 'metrics[1].dataset_digest' supplied:  Hint: Value was of type 'int'." + docsHint},
		{"runs/log-batch", map[string]any{"run_id": run, "metrics": []any{m("a", map[string]any{"value": "parameter 'x'"})}},
			"Invalid value \"parameter 'x'\" for parameter 'metrics[0].value' supplied:  Hint: Value was of type 'str'." + docsHint},
		{"runs/log-batch", map[string]any{"run_id": run, "metrics": []any{m("a", map[string]any{"timestamp": ""})}},
			"Missing value for required parameter 'metrics[0].timestamp'." + docsHint},
		{"runs/log-batch", map[string]any{"run_id": run, "params": []any{map[string]any{"key": "p", "value": "v"}, 3}},
			"Invalid value 3 for parameter 'params[1]' supplied:  Hint: Value was of type 'int'." + docsHint},
		{"runs/log-batch", map[string]any{"run_id": run, "tags": []any{map[string]any{"value": "v"}}},
			"Missing value for required parameter 'tags[0].key'." + docsHint},
		{"runs/log-inputs", map[string]any{"run_id": run, "datasets": []any{map[string]any{
			"tags":    []any{map[string]any{"key": "k", "value": "v"}, map[string]any{"key": ""}},
			"dataset": map[string]any{"name": "n", "digest": "d", "source_type": "s", "source": "x"}}}},
			"Missing value for required parameter 'datasets[0].tags[1].key'." + docsHint},
		{"runs/log-inputs", map[string]any{"run_id": run, "datasets": []any{map[string]any{
			"dataset": map[string]any{"name": 5}}}},
			"Invalid value 5 for parameter 'datasets[0].dataset.name' supplied:  Hint: Value was of type 'int'." + docsHint},
		{"runs/log-inputs", map[string]any{"run_id": run, "models": []any{map[string]any{}}},
			"Missing value for required parameter 'models[0].model_id'." + docsHint},
	}
	for _, c := range cases {
		wantExact(t, post(t, ts, c.route, c.body), c.want)
	}
	// A GET with a JSON body (no query): run_ids is [_assert_required,
	// _assert_array], so a blank one is missing, another string the hint.
	bulk := func(ids any) response {
		return call(t, ts, "GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval", "application/json",
			map[string]any{"run_ids": ids, "metric_key": "m"})
	}
	wantExact(t, bulk(""), "Missing value for required parameter 'run_ids'."+docsHint)
	wantExact(t, bulk("x"), "Invalid value \"x\" for parameter 'run_ids' supplied:  Hint: Value was of type 'str'."+docsHint)
	// log-batch and log-inputs: run_uuid satisfies the presence check, but
	// run_id alone is used (an empty one fails the run-id rule).
	for _, route := range []string{"runs/log-batch", "runs/log-inputs"} {
		wantExact(t, post(t, ts, route, map[string]any{}), "Missing value for required parameter 'run_id'."+docsHint)
		wantExact(t, post(t, ts, route, map[string]any{"run_uuid": ""}), "Missing value for required parameter 'run_id'."+docsHint)
		wantExact(t, post(t, ts, route, map[string]any{"run_uuid": 5}),
			"Invalid value 5 for parameter 'run_id' supplied:  Hint: Value was of type 'int'."+docsHint)
		r := post(t, ts, route, map[string]any{"run_uuid": run})
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "")
	}
	// The same batch without the bad field is logged.
	wantExact(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": run,
		"metrics": []any{m("a", nil), m("b", map[string]any{"dataset_digest": "d"})}}), "")
}

// TestSearchRunsViewTypeNumber: run_view_type has no schema in MLflow, so
// an unknown number fails only the parse and the default ACTIVE_ONLY holds;
// a known number or name is taken; max_results is 1..50000.
func TestSearchRunsViewTypeNumber(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "e")
	run := mkRun(t, ts, exp)
	wantStatus(t, post(t, ts, "runs/delete", map[string]any{"run_id": run}), 200)
	count := func(view any) int {
		r := post(t, ts, "runs/search", map[string]any{"experiment_ids": []any{exp}, "run_view_type": view})
		wantStatus(t, r, 200)
		runs, _ := r.json(t)["runs"].([]any)
		return len(runs)
	}
	if n := count(7); n != 0 {
		t.Errorf("run_view_type 7: %d runs, want 0 (ACTIVE_ONLY)", n)
	}
	if n := count(2); n != 1 {
		t.Errorf("run_view_type 2: %d runs, want 1", n)
	}
	if n := count("ALL"); n != 1 {
		t.Errorf("run_view_type ALL: %d runs, want 1", n)
	}
	// Above 50000 is the schema's (the hint); below 1 the store's
	// _validate_max_results_param, checked before the filter is parsed.
	search := func(n int, filter string) response {
		return post(t, ts, "runs/search", map[string]any{"experiment_ids": []any{exp}, "max_results": n, "filter": filter})
	}
	wantExact(t, search(50001, ""), "Invalid value 50001 for parameter 'max_results' supplied:  Hint: Value was of type 'int'."+docsHint)
	for _, n := range []int{0, -1} {
		wantExact(t, search(n, "bogus"), "Invalid value "+strconv.Itoa(n)+" for parameter 'max_results' supplied. It must be a positive integer")
	}
	wantStatus(t, search(50000, ""), 200)
}

// TestQueryInvalidUTF8: a query string is decoded as werkzeug decodes
// request.args, invalid UTF-8 bytes replaced by U+FFFD (Decisions: "query
// strings with invalid UTF-8"); found by FuzzDecode.
func TestQueryInvalidUTF8(t *testing.T) {
	ts, _ := newTestServer(t)
	id := mkExperiment(t, ts, "a\uFFFD\uFFFDb")
	r := get(t, ts, "experiments/get-by-name?experiment_name=a%FF%FEb")
	wantStatus(t, r, 200)
	if got := r.json(t)["experiment"].(map[string]any)["experiment_id"]; got != id {
		t.Fatalf("experiment %v, want %s", got, id)
	}
}
