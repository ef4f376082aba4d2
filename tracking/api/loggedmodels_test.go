package api

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func mkLoggedModel(t testing.TB, ts *httptest.Server, exp, name, runID string) string {
	t.Helper()
	time.Sleep(2 * time.Millisecond) // distinct creation times: searches order by them
	body := map[string]any{"experiment_id": exp, "name": name}
	if runID != "" {
		body["source_run_id"] = runID
	}
	r := post(t, ts, "logged-models", body)
	wantStatus(t, r, 200)
	return r.json(t)["model"].(map[string]any)["info"].(map[string]any)["model_id"].(string)
}

func modelIDs(t testing.TB, r response) []string {
	t.Helper()
	wantStatus(t, r, 200)
	var out []string
	ms, _ := r.json(t)["models"].([]any)
	for _, m := range ms {
		out = append(out, m.(map[string]any)["info"].(map[string]any)["name"].(string))
	}
	return out
}

func TestLoggedModelMetricsSearchAndOrder(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "lm")
	run := mkRun(t, ts, exp)
	a := mkLoggedModel(t, ts, exp, "a", run)
	b := mkLoggedModel(t, ts, exp, "b", run)
	c := mkLoggedModel(t, ts, exp, "c", "")

	// Metrics logged with a model_id land on the run and on the model.
	wantStatus(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "acc", "value": 0.7,
		"timestamp": 10, "step": 0, "model_id": a, "dataset_name": "eval", "dataset_digest": "d1"}), 200)
	wantStatus(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": run, "metrics": []any{
		map[string]any{"key": "acc", "value": 0.9, "timestamp": 11, "step": 1, "model_id": a, "dataset_name": "train", "dataset_digest": "d2"},
		map[string]any{"key": "acc", "value": 0.8, "timestamp": 12, "step": 0, "model_id": b, "dataset_name": "eval", "dataset_digest": "d1"},
		map[string]any{"key": "loss", "value": 1, "timestamp": 12, "step": 0},
	}}), 200)
	wantError(t, post(t, ts, "runs/log-metric", map[string]any{"run_id": run, "key": "acc", "value": 1,
		"timestamp": 1, "model_id": "m-nope"}), 404, "RESOURCE_DOES_NOT_EXIST", "m-nope")
	r := get(t, ts, "logged-models/"+a)
	wantStatus(t, r, 200)
	ms := r.json(t)["model"].(map[string]any)["data"].(map[string]any)["metrics"].([]any)
	if len(ms) != 2 {
		t.Fatalf("model metrics: %s", r.body)
	}
	m0 := ms[0].(map[string]any)
	if m0["model_id"] != a || m0["run_id"] != run || m0["dataset_name"] != "eval" || m0["dataset_digest"] != "d1" {
		t.Fatalf("model metric: %v", m0)
	}
	if data := getRun(t, ts, run)["data"].(map[string]any); len(data["metrics"].([]any)) != 2 {
		t.Fatalf("run metrics: %v", data)
	}

	srch := func(body map[string]any) response {
		body["experiment_ids"] = []string{exp}
		return post(t, ts, "logged-models/search", body)
	}
	// Default order: newest first.
	if got := modelIDs(t, srch(map[string]any{})); strings.Join(got, ",") != "c,b,a" {
		t.Fatalf("default order %v", got)
	}
	// Metric order: latest value (by timestamp) of any dataset, missing last.
	if got := modelIDs(t, srch(map[string]any{"order_by": []any{map[string]any{"field_name": "metrics.acc", "ascending": false}}})); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("metrics.acc DESC %v", got)
	}
	// Restricted to the eval dataset, a's value is 0.7.
	if got := modelIDs(t, srch(map[string]any{"order_by": []any{map[string]any{"field_name": "metrics.acc", "ascending": false,
		"dataset_name": "eval"}}})); strings.Join(got, ",") != "b,a,c" {
		t.Fatalf("metrics.acc DESC on eval %v", got)
	}
	if got := modelIDs(t, srch(map[string]any{"order_by": []any{map[string]any{"field_name": "name"}}})); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("name ASC %v", got)
	}
	if got := modelIDs(t, srch(map[string]any{"order_by": []any{map[string]any{"field_name": "creation_timestamp", "ascending": true}}})); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("creation ASC %v", got)
	}
	// Filters with datasets.
	if got := modelIDs(t, srch(map[string]any{"filter": "metrics.acc > 0.85"})); strings.Join(got, ",") != "a" {
		t.Fatalf("acc > 0.85: %v", got)
	}
	if got := modelIDs(t, srch(map[string]any{"filter": "metrics.acc > 0.75", "datasets": []any{map[string]any{"dataset_name": "eval"}}})); strings.Join(got, ",") != "b" {
		t.Fatalf("acc > 0.75 on eval: %v", got)
	}
	if got := modelIDs(t, srch(map[string]any{"datasets": []any{map[string]any{"dataset_name": "train", "dataset_digest": "d2"}}})); strings.Join(got, ",") != "a" {
		t.Fatalf("datasets alone: %v", got)
	}
	wantError(t, srch(map[string]any{"datasets": []any{map[string]any{"dataset_digest": "d"}}}), 400, "INVALID_PARAMETER_VALUE", "`dataset_name`")
	wantError(t, srch(map[string]any{"order_by": []any{map[string]any{"field_name": "params.x"}}}), 400, "INVALID_PARAMETER_VALUE", "Only metrics are supported")
	wantError(t, srch(map[string]any{"order_by": []any{map[string]any{"field_name": "bogus"}}}), 400, "INVALID_PARAMETER_VALUE", "Invalid order by field name: bogus")
	wantError(t, srch(map[string]any{"order_by": []any{map[string]any{"ascending": true}}}), 400, "INVALID_PARAMETER_VALUE", "field_name")

	// Page tokens echo the request.
	order := []any{map[string]any{"field_name": "name"}}
	r = srch(map[string]any{"order_by": order, "max_results": 2})
	if got := modelIDs(t, r); strings.Join(got, ",") != "a,b" {
		t.Fatalf("page 1 %v", got)
	}
	tok, _ := r.json(t)["next_page_token"].(string)
	if raw, err := base64.StdEncoding.DecodeString(tok); err != nil || !strings.Contains(string(raw), `"after":"`) {
		t.Fatalf("token %q (%s)", tok, raw)
	}
	// MLflow's own offset token for the same request is still accepted.
	mlflowTok := base64.StdEncoding.EncodeToString([]byte(`{"experiment_ids": ["1"], "filter_string": null, "order_by": ` +
		`[{"field_name": "name", "ascending": true, "dataset_name": null, "dataset_digest": null}], "offset": 2}`))
	if got := modelIDs(t, srch(map[string]any{"order_by": order, "max_results": 2, "page_token": mlflowTok})); strings.Join(got, ",") != "c" {
		t.Fatalf("offset token page %v", got)
	}
	r = srch(map[string]any{"order_by": order, "max_results": 2, "page_token": tok})
	if got := modelIDs(t, r); strings.Join(got, ",") != "c" || r.json(t)["next_page_token"] != nil {
		t.Fatalf("page 2 %v %s", got, r.body)
	}
	wantError(t, srch(map[string]any{"max_results": 2, "page_token": tok}), 400, "INVALID_PARAMETER_VALUE", "Order by in the page token")
	wantError(t, srch(map[string]any{"order_by": order, "filter": "name = 'a'", "page_token": tok}), 400, "INVALID_PARAMETER_VALUE", "Filter string in the page token")
	wantError(t, srch(map[string]any{"page_token": "!!"}), 400, "INVALID_PARAMETER_VALUE", "Invalid page token")
	// MLflow's own token form is accepted.
	py := base64.StdEncoding.EncodeToString([]byte(`{"experiment_ids": ["` + exp + `"], "filter_string": null, "order_by": null, "offset": 1}`))
	if got := modelIDs(t, srch(map[string]any{"page_token": py})); strings.Join(got, ",") != "b,a" {
		t.Fatalf("python token page %v", got)
	}
	_ = c
}

func TestRunOutputsAndModelVersionModelID(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "out")
	run := mkRun(t, ts, exp)
	if _, has := getRun(t, ts, run)["outputs"]; has {
		t.Fatal("a run without outputs has an outputs key (MLflow 2.x clients compare keys)")
	}
	m := mkLoggedModel(t, ts, exp, "model", run)
	wantStatus(t, post(t, ts, "runs/outputs", map[string]any{"run_id": run, "models": []any{map[string]any{"model_id": m, "step": 3}}}), 200)
	outs := getRun(t, ts, run)["outputs"].(map[string]any)["model_outputs"].([]any)
	if len(outs) != 1 || outs[0].(map[string]any)["model_id"] != m || outs[0].(map[string]any)["step"].(interface{ String() string }).String() != "3" {
		t.Fatalf("outputs %v", outs)
	}
	r := post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{exp}})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.body), `"model_outputs":[{"model_id":"`+m+`","step":3}]`) {
		t.Fatalf("search runs lacks outputs: %s", r.body)
	}

	// Register from models:/<model_id> as MLflow 3's register_model does.
	wantStatus(t, post(t, ts, "registered-models/create", map[string]any{"name": "reg"}), 200)
	r = post(t, ts, "model-versions/create", map[string]any{"name": "reg", "source": "models:/" + m, "model_id": m})
	wantStatus(t, r, 200)
	mv := r.json(t)["model_version"].(map[string]any)
	if mv["model_id"] != m || mv["run_id"] != run || mv["source"] != "models:/"+m {
		t.Fatalf("version %v", mv)
	}
	r = get(t, ts, "model-versions/get?name=reg&version=1")
	if r.json(t)["model_version"].(map[string]any)["model_id"] != m {
		t.Fatalf("get %s", r.body)
	}
	r = get(t, ts, "model-versions/get-download-uri?name=reg&version=1")
	if got := r.json(t)["artifact_uri"]; got != "mlflow-artifacts:/"+exp+"/models/"+m+"/artifacts" {
		t.Fatalf("download uri %v", got)
	}
	r = get(t, ts, "model-versions/search?filter=name%3D'reg'")
	if !strings.Contains(string(r.body), `"model_id":"`+m+`"`) {
		t.Fatalf("search versions %s", r.body)
	}
	// The logged model lists its versions.
	wantStatus(t, post(t, ts, "model-versions/create", map[string]any{"name": "reg", "source": "models:/" + m, "model_id": m}), 200)
	r = get(t, ts, "logged-models/"+m)
	if !strings.Contains(string(r.body), `"key":"mlflow.modelVersions","value":"[{\"name\": \"reg\", \"version\": 1}, {\"name\": \"reg\", \"version\": 2}]"`) {
		t.Fatalf("modelVersions tag: %s", r.body)
	}
	// A files download through the version reaches the model's artifacts.
	wantStatus(t, call(t, ts, "PUT", "/api/2.0/mlflow-artifacts/artifacts/"+exp+"/models/"+m+"/artifacts/MLmodel", "text/plain", "flavors: {}\n"), 200)
	r = call(t, ts, "GET", "/model-versions/get-artifact?name=reg&version=1&path=MLmodel", "", nil)
	if r.status != 200 || string(r.body) != "flavors: {}\n" {
		t.Fatalf("get-artifact %d %s", r.status, r.body)
	}

	wantError(t, post(t, ts, "model-versions/create", map[string]any{"name": "reg", "source": "models:/m-nope"}), 400,
		"INVALID_PARAMETER_VALUE", "Unable to fetch model")
	wantError(t, post(t, ts, "model-versions/create", map[string]any{"name": "reg", "source": "s3://b/x", "model_id": "m-nope"}), 404,
		"RESOURCE_DOES_NOT_EXIST", "m-nope")
	wantError(t, post(t, ts, "model-versions/create", map[string]any{"name": "reg", "source": "/tmp/x", "model_id": m}), 400,
		"INVALID_PARAMETER_VALUE", "model_id request parameter")
}

// TestLogInputsModelsOnly: MLflow 3's mlflow.log_metric(..., model_id=m)
// inside a run sends log-inputs with models and no datasets key; MLflow 2.x
// required datasets, MLflow 3 does not.
func TestLogInputsModelsOnly(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "in")
	run := mkRun(t, ts, exp)
	m := mkLoggedModel(t, ts, exp, "model", run)
	wantStatus(t, post(t, ts, "runs/log-inputs", map[string]any{"run_id": run, "models": []any{map[string]any{"model_id": m}}}), 200)
	ins := getRun(t, ts, run)["inputs"].(map[string]any)["model_inputs"].([]any)
	if len(ins) != 1 || ins[0].(map[string]any)["model_id"] != m {
		t.Fatalf("model inputs %v", ins)
	}
	wantError(t, post(t, ts, "runs/log-inputs", map[string]any{"run_id": run, "models": []any{map[string]any{}}}), 400,
		"INVALID_PARAMETER_VALUE", "models[0].model_id")
}

// TestLoggedModelRequestMessages pins the declared decoding of the logged
// model requests: nested messages name their fields by full path, and
// log-outputs requires models as MLflow's _log_outputs schema does.
func TestLoggedModelRequestMessages(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "lmdecl")
	run := mkRun(t, ts, exp)
	m := mkLoggedModel(t, ts, exp, "m", run)
	const hint = " See the API docs for more information about request parameters."
	cases := []struct {
		name, method, path string
		body               any
		msg                string
	}{
		{"no dataset name", "POST", "logged-models/search", map[string]any{"experiment_ids": []string{exp}, "datasets": []any{map[string]any{}}},
			"`dataset_name` in the `datasets` clause must be specified."},
		{"dataset name type", "POST", "logged-models/search", map[string]any{"experiment_ids": []string{exp}, "datasets": []any{map[string]any{"dataset_name": 5}}},
			"Invalid value 5 for parameter 'datasets[0].dataset_name' supplied:  Hint: Value was of type 'int'." + hint},
		{"dataset not a message", "POST", "logged-models/search", map[string]any{"experiment_ids": []string{exp}, "datasets": []any{"x"}},
			"Invalid value \"x\" for parameter 'datasets[0]' supplied:  Hint: Value was of type 'str'." + hint},
		{"order field missing", "POST", "logged-models/search", map[string]any{"experiment_ids": []string{exp}, "order_by": []any{map[string]any{"field_name": "name"}, map[string]any{"ascending": true}}},
			"Missing value for required parameter 'order_by[1].field_name'." + hint},
		{"order ascending type", "POST", "logged-models/search", map[string]any{"experiment_ids": []string{exp}, "order_by": []any{map[string]any{"field_name": "name", "ascending": "maybe"}}},
			"Invalid value \"maybe\" for parameter 'order_by[0].ascending' supplied:  Hint: Value was of type 'str'." + hint},
		{"no experiments", "POST", "logged-models/search", map[string]any{"experiment_ids": []string{}},
			"Missing value for required parameter 'experiment_ids'." + hint},
		{"max results", "POST", "logged-models/search", map[string]any{"experiment_ids": []string{exp}, "max_results": 1001},
			"Invalid value 1001 for parameter 'max_results' supplied. It must be between 1 and 1000"},
		{"outputs without models", "POST", "runs/outputs", map[string]any{"run_id": run},
			"Missing value for required parameter 'models'." + hint},
		{"output step type", "POST", "runs/outputs", map[string]any{"run_id": run, "models": []any{map[string]any{"model_id": m, "step": "a"}}},
			"Invalid value \"a\" for parameter 'models[0].step' supplied:  Hint: Value was of type 'str'." + hint},
		{"output model id", "POST", "runs/outputs", map[string]any{"run_id": run, "models": []any{map[string]any{"step": 1}}},
			"Missing value for required parameter 'models[0].model_id'." + hint},
		{"finalize unspecified", "PATCH", "logged-models/" + m, map[string]any{"model_id": m, "status": "LOGGED_MODEL_STATUS_UNSPECIFIED"},
			"Missing value for required parameter 'status'." + hint},
		{"param value type", "POST", "logged-models/" + m + "/params", map[string]any{"model_id": m, "params": []any{map[string]any{"key": "k", "value": 1}}},
			"Invalid value 1 for parameter 'params[0].value' supplied:  Hint: Value was of type 'int'." + hint},
		{"finalize without body model_id", "PATCH", "logged-models/" + m, map[string]any{"status": "LOGGED_MODEL_READY"},
			"Missing value for required parameter 'model_id'." + hint},
		{"params without body model_id", "POST", "logged-models/" + m + "/params", map[string]any{"params": []any{}},
			"Missing value for required parameter 'model_id'." + hint},
	}
	for _, c := range cases {
		r := call(t, ts, c.method, "/api/2.0/mlflow/"+c.path, "json", c.body)
		wantStatus(t, r, 400)
		if got := r.message(t); got != c.msg {
			t.Errorf("%s: message\n%q, want\n%q", c.name, got, c.msg)
		}
	}
	// An empty models list is accepted (present, as _assert_required lets it).
	wantStatus(t, post(t, ts, "runs/outputs", map[string]any{"run_id": run, "models": []any{}}), 200)
}
