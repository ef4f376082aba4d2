package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// TestModelLifecycleOverHTTP follows MLflow's documented model flow
// through a real Caddy: log a model from a run (MLflow 3 logged model,
// artifact uploads through the proxy, runs/outputs, the MLflow 2
// log-model record), register it, set an alias, transition a stage,
// search, then download MLmodel by alias the way models:/ URIs are
// resolved (get-by-alias, get-download-uri, then the artifact proxy).
func TestModelLifecycleOverHTTP(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	exp := call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "models-e2e"}, 200)
	expID := str(t, exp, "experiment_id")
	run := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{
		"experiment_id": expID, "start_time": time.Now().UnixMilli(),
	}, 200)
	runID := str(t, run, "run", "info", "run_id")

	// MLflow 3's log_model: create the logged model, upload its files,
	// finalize it, record it as the run's output.
	lm := call(t, srv, http.MethodPost, "/api/2.0/mlflow/logged-models", obj{
		"experiment_id": expID, "name": "model", "source_run_id": runID, "model_type": "python_function",
		"params": []obj{{"key": "alpha", "value": "0.5"}},
		"tags":   []obj{{"key": "mlflow.user", "value": "tester"}},
	}, 200)
	modelID := str(t, lm, "model", "info", "model_id")
	modelURI := str(t, lm, "model", "info", "artifact_uri")
	if !strings.HasPrefix(modelID, "m-") || modelURI != "mlflow-artifacts:/"+expID+"/models/"+modelID+"/artifacts" {
		t.Fatalf("logged model id %q, artifact_uri %q", modelID, modelURI)
	}
	if st := str(t, lm, "model", "info", "status"); st != "LOGGED_MODEL_PENDING" {
		t.Fatalf("new logged model status %q", st)
	}
	mlmodel := "artifact_path: model\nflavors:\n  python_function: {}\nmodel_id: " + modelID + "\n"
	modelDir := strings.TrimPrefix(modelURI, "mlflow-artifacts:/")
	for p, body := range map[string]string{"MLmodel": mlmodel, "requirements.txt": "mlflow\n"} {
		if resp, b := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/"+modelDir+"/"+p, body); resp.StatusCode != 200 {
			t.Fatalf("upload %s: %d %s", p, resp.StatusCode, b)
		}
	}
	fin := call(t, srv, http.MethodPatch, "/api/2.0/mlflow/logged-models/"+modelID, obj{"model_id": modelID, "status": "LOGGED_MODEL_READY"}, 200)
	if st := str(t, fin, "model", "info", "status"); st != "LOGGED_MODEL_READY" {
		t.Fatalf("finalized status %q", st)
	}
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/outputs", obj{"run_id": runID, "models": []obj{{"model_id": modelID, "step": 0}}}, 200)
	call(t, srv, http.MethodPatch, "/api/2.0/mlflow/logged-models/"+modelID+"/tags", obj{"tags": []obj{{"key": "k", "value": "v"}}}, 200)
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/logged-models/"+modelID+"/params", obj{"model_id": modelID, "params": []obj{{"key": "beta", "value": "1"}}}, 200)
	list := call(t, srv, http.MethodGet, "/api/2.0/mlflow/logged-models/"+modelID+"/artifacts/directories", nil, 200)
	if files, _ := list["files"].([]any); len(files) != 2 {
		t.Fatalf("logged model artifacts = %v", list)
	}
	found := call(t, srv, http.MethodPost, "/api/2.0/mlflow/logged-models/search", obj{
		"experiment_ids": []string{expID}, "filter": "source_run_id = '" + runID + "' AND params.beta = '1'",
	}, 200)
	if models, _ := found["models"].([]any); len(models) != 1 {
		t.Fatalf("search logged models = %v", found)
	}
	if resp, b := srv.Do(t, http.MethodGet, "/ajax-api/2.0/mlflow/logged-models/"+modelID+"/artifacts/files?artifact_file_path=MLmodel", nil); resp.StatusCode != 200 || string(b) != mlmodel {
		t.Fatalf("logged model file = %d %q", resp.StatusCode, b)
	}

	// The same files under the run (MLflow 2's log_model) and the
	// log-model record, then registration from runs:/.
	runDir := expID + "/" + runID + "/artifacts/model/"
	if resp, b := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/"+runDir+"MLmodel", mlmodel); resp.StatusCode != 200 {
		t.Fatalf("upload run MLmodel: %d %s", resp.StatusCode, b)
	}
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/log-model", obj{"run_id": runID,
		"model_json": `{"artifact_path": "model", "flavors": {"python_function": {}}, "run_id": "` + runID + `", "utc_time_created": "2025-01-01 00:00:00.000000"}`}, 200)
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/registered-models/create", obj{"name": "clf"}, 200)
	mv := call(t, srv, http.MethodPost, "/api/2.0/mlflow/model-versions/create", obj{
		"name": "clf", "source": "runs:/" + runID + "/model", "run_id": runID,
	}, 200)
	version := str(t, mv, "model_version", "version")
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/registered-models/alias", obj{"name": "clf", "alias": "champion", "version": version}, 200)
	st := call(t, srv, http.MethodPost, "/api/2.0/mlflow/model-versions/transition-stage", obj{
		"name": "clf", "version": version, "stage": "Production", "archive_existing_versions": true,
	}, 200)
	if s := str(t, st, "model_version", "current_stage"); s != "Production" {
		t.Fatalf("stage = %q", s)
	}
	res := call(t, srv, http.MethodGet, "/api/2.0/mlflow/model-versions/search?filter="+url.QueryEscape("name = 'clf'"), nil, 200)
	if vs, _ := res["model_versions"].([]any); len(vs) != 1 {
		t.Fatalf("search versions = %v", res)
	}
	rms := call(t, srv, http.MethodGet, "/api/2.0/mlflow/registered-models/search?filter="+url.QueryEscape("name LIKE 'cl%'"), nil, 200)
	if ms, _ := rms["registered_models"].([]any); len(ms) != 1 {
		t.Fatalf("search models = %v", rms)
	}

	// models:/clf@champion: alias -> version -> download URI -> proxy.
	byAlias := call(t, srv, http.MethodGet, "/api/2.0/mlflow/registered-models/alias?name=clf&alias=champion", nil, 200)
	if v := str(t, byAlias, "model_version", "version"); v != version {
		t.Fatalf("alias points at %q, want %q", v, version)
	}
	dl := call(t, srv, http.MethodGet, "/api/2.0/mlflow/model-versions/get-download-uri?name=clf&version="+version, nil, 200)
	uri := str(t, dl, "artifact_uri")
	// A runs:/ source is resolved by the client through the run.
	if runPath, isRuns := strings.CutPrefix(uri, "runs:/"+runID+"/"); isRuns {
		got := call(t, srv, http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+runID, nil, 200)
		uri = str(t, got, "run", "info", "artifact_uri") + "/" + runPath
	}
	rest, ok := strings.CutPrefix(uri, "mlflow-artifacts:/")
	if !ok {
		t.Fatalf("download URI %q is not proxied", uri)
	}
	resp, b := srv.Do(t, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts/"+strings.TrimSuffix(rest, "/")+"/MLmodel", nil)
	if resp.StatusCode != 200 || string(b) != mlmodel {
		t.Fatalf("MLmodel by alias = %d %q", resp.StatusCode, b)
	}
	// The UI's model version file download serves the same bytes, and
	// refuses paths that leave the version's location.
	resp, b = srv.Do(t, http.MethodGet, "/model-versions/get-artifact?name=clf&version="+version+"&path=MLmodel", nil)
	if resp.StatusCode != 200 || string(b) != mlmodel {
		t.Fatalf("get-artifact = %d %q", resp.StatusCode, b)
	}
	if resp, b = srv.Do(t, http.MethodGet, "/model-versions/get-artifact?name=clf&version="+version+"&path=../../x", nil); resp.StatusCode/100 != 4 {
		t.Fatalf("get-artifact traversal = %d %q", resp.StatusCode, b)
	}

	call(t, srv, http.MethodDelete, "/api/2.0/mlflow/logged-models/"+modelID+"/tags/k", nil, 200)
	call(t, srv, http.MethodDelete, "/api/2.0/mlflow/logged-models/"+modelID, nil, 200)
	call(t, srv, http.MethodGet, "/api/2.0/mlflow/logged-models/"+modelID, nil, 404)
}

// names lists info.name of the models of a search-logged-models answer.
func names(t *testing.T, res obj) string {
	t.Helper()
	var out []string
	models, _ := res["models"].([]any)
	for _, m := range models {
		out = append(out, str(t, m, "info", "name"))
	}
	return strings.Join(out, ",")
}

// TestMLflow3ModelFlowOverHTTP is MLflow 3's model flow through a real
// Caddy: logged models with params and per-dataset metrics, finalize,
// search ordered by a metric, register from models:/<model_id> (as
// register_model does), alias, and download by alias.
func TestMLflow3ModelFlowOverHTTP(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	expID := str(t, call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "mlflow3"}, 200), "experiment_id")
	runID := str(t, call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{
		"experiment_id": expID, "start_time": time.Now().UnixMilli()}, 200), "run", "info", "run_id")

	ids := map[string]string{}
	for i, name := range []string{"small", "large"} {
		lm := call(t, srv, http.MethodPost, "/api/2.0/mlflow/logged-models", obj{
			"experiment_id": expID, "name": name, "source_run_id": runID, "model_type": "agent"}, 200)
		id := str(t, lm, "model", "info", "model_id")
		ids[name] = id
		call(t, srv, http.MethodPost, "/api/2.0/mlflow/logged-models/"+id+"/params", obj{
			"model_id": id, "params": []obj{{"key": "size", "value": name}}}, 200)
		// mlflow.log_metrics(..., model_id=..., dataset=...) sends log-batch.
		call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/log-batch", obj{"run_id": runID, "metrics": []obj{
			{"key": "accuracy", "value": 0.8 + 0.1*float64(i), "timestamp": 1000 + i, "step": 0,
				"model_id": id, "dataset_name": "eval", "dataset_digest": "abc"},
			{"key": "accuracy", "value": 0.99 - 0.1*float64(i), "timestamp": 1000 + i, "step": 0,
				"model_id": id, "dataset_name": "train", "dataset_digest": "def"},
		}}, 200)
		mlmodel := "artifact_path: model\nmodel_id: " + id + "\n"
		dir := strings.TrimPrefix(str(t, lm, "model", "info", "artifact_uri"), "mlflow-artifacts:/")
		if resp, b := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/"+dir+"/MLmodel", mlmodel); resp.StatusCode != 200 {
			t.Fatalf("upload MLmodel: %d %s", resp.StatusCode, b)
		}
		call(t, srv, http.MethodPatch, "/api/2.0/mlflow/logged-models/"+id, obj{"model_id": id, "status": "LOGGED_MODEL_READY"}, 200)
		call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/outputs", obj{"run_id": runID, "models": []obj{{"model_id": id, "step": 0}}}, 200)
	}

	search := func(body obj) obj {
		body["experiment_ids"] = []string{expID}
		return call(t, srv, http.MethodPost, "/api/2.0/mlflow/logged-models/search", body, 200)
	}
	best := search(obj{"order_by": []obj{{"field_name": "metrics.accuracy", "ascending": false, "dataset_name": "eval", "dataset_digest": "abc"}}})
	if got := names(t, best); got != "large,small" {
		t.Fatalf("best on eval = %s", got)
	}
	if got := names(t, search(obj{"order_by": []obj{{"field_name": "metrics.accuracy", "ascending": false, "dataset_name": "train"}}})); got != "small,large" {
		t.Fatalf("best on train = %s", got)
	}
	if got := names(t, search(obj{"filter": "metrics.accuracy > 0.85 AND params.size = 'large'",
		"datasets": []obj{{"dataset_name": "eval", "dataset_digest": "abc"}}})); got != "large" {
		t.Fatalf("filtered with datasets = %s", got)
	}
	page := search(obj{"order_by": []obj{{"field_name": "name"}}, "max_results": 1})
	tok, _ := page["next_page_token"].(string)
	if names(t, page) != "large" || tok == "" {
		t.Fatalf("page 1 = %v", page)
	}
	if got := names(t, search(obj{"order_by": []obj{{"field_name": "name"}}, "max_results": 1, "page_token": tok})); got != "small" {
		t.Fatalf("page 2 = %s", got)
	}
	run := call(t, srv, http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+runID, nil, 200)
	if outs, _ := run["run"].(obj)["outputs"].(obj)["model_outputs"].([]any); len(outs) != 2 {
		t.Fatalf("run outputs = %v", run["run"])
	}

	// register_model("models:/<model_id>", "agent") and an alias.
	bestID := str(t, best["models"].([]any)[0], "info", "model_id")
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/registered-models/create", obj{"name": "agent"}, 200)
	mv := call(t, srv, http.MethodPost, "/api/2.0/mlflow/model-versions/create", obj{
		"name": "agent", "source": "models:/" + bestID, "model_id": bestID}, 200)
	if got := str(t, mv, "model_version", "model_id"); got != bestID {
		t.Fatalf("version model_id = %q", got)
	}
	if got := str(t, mv, "model_version", "run_id"); got != runID {
		t.Fatalf("version run_id = %q, want the model's source run", got)
	}
	version := str(t, mv, "model_version", "version")
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/registered-models/alias", obj{"name": "agent", "alias": "prod", "version": version}, 200)
	lm := call(t, srv, http.MethodGet, "/api/2.0/mlflow/logged-models/"+bestID, nil, 200)
	if !strings.Contains(fmt.Sprint(lm), `[{"name": "agent", "version": 1}]`) {
		t.Fatalf("logged model lacks mlflow.modelVersions: %v", lm)
	}

	// models:/agent@prod: alias -> version -> download URI -> proxy.
	byAlias := call(t, srv, http.MethodGet, "/api/2.0/mlflow/registered-models/alias?name=agent&alias=prod", nil, 200)
	if str(t, byAlias, "model_version", "model_id") != bestID {
		t.Fatalf("by alias = %v", byAlias)
	}
	uri := str(t, call(t, srv, http.MethodGet, "/api/2.0/mlflow/model-versions/get-download-uri?name=agent&version="+version, nil, 200), "artifact_uri")
	rest, ok := strings.CutPrefix(uri, "mlflow-artifacts:/")
	if !ok || !strings.Contains(rest, "/models/"+bestID+"/artifacts") {
		t.Fatalf("download URI %q is not the logged model's location", uri)
	}
	resp, b := srv.Do(t, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts/"+rest+"/MLmodel", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "model_id: "+bestID) {
		t.Fatalf("MLmodel by alias = %d %q", resp.StatusCode, b)
	}
	resp, b = srv.Do(t, http.MethodGet, "/model-versions/get-artifact?name=agent&version="+version+"&path=MLmodel", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), bestID) {
		t.Fatalf("get-artifact = %d %q", resp.StatusCode, b)
	}
}

// TestTracesV3OverHTTP is an MLflow 3 client's trace flow through a real
// Caddy: start a v3 trace, upload its data, read it back with spans,
// search through v3 and v2, tags, delete.
func TestTracesV3OverHTTP(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	expID := str(t, call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "traces3"}, 200), "experiment_id")
	traceID := "tr-5f1e2d3c4b5a69788796a5b4c3d2e1f0"
	start := call(t, srv, http.MethodPost, "/api/3.0/mlflow/traces", obj{"trace": obj{"trace_info": obj{
		"trace_id":           traceID,
		"trace_location":     obj{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": obj{"experiment_id": expID}},
		"request_time":       "2025-04-15T08:49:18.699Z",
		"execution_duration": "0.250s",
		"state":              "OK",
		"request_preview":    `{"question": "hi"}`,
		"response_preview":   `"hello"`,
		"trace_metadata":     obj{"mlflow.trace_schema.version": "3"},
		"tags":               obj{"mlflow.traceName": "chat"},
	}}}, 200)
	loc := str(t, start, "trace", "trace_info", "tags", "mlflow.artifactLocation")
	if loc != "mlflow-artifacts:/"+expID+"/traces/"+traceID+"/artifacts" {
		t.Fatalf("artifact location %q", loc)
	}
	// The client uploads the span data next to it.
	data := `{"spans": [{"trace_id": "Xx4tPEtaaXiHlqW0w9Lh8A==", "span_id": "AAAAAAAAAAE=", "parent_span_id": null, "name": "chat",` +
		` "start_time_unix_nano": 1744706958699000000, "end_time_unix_nano": 1744706958949000000, "events": [],` +
		` "status": {"code": "STATUS_CODE_OK", "message": ""},` +
		` "attributes": {"mlflow.traceRequestId": "\"` + traceID + `\"", "mlflow.spanType": "\"CHAT_MODEL\""}}]}`
	if resp, b := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/"+strings.TrimPrefix(loc, "mlflow-artifacts:/")+"/traces.json", data); resp.StatusCode != 200 {
		t.Fatalf("upload trace data: %d %s", resp.StatusCode, b)
	}
	full := call(t, srv, http.MethodGet, "/api/3.0/mlflow/traces/get?trace_id="+traceID, nil, 200)
	spans, _ := full["trace"].(obj)["spans"].([]any)
	if len(spans) != 1 || str(t, spans[0], "name") != "chat" || str(t, spans[0], "end_time_unix_nano") != "1744706958949000000" {
		t.Fatalf("spans = %v", full)
	}
	info := call(t, srv, http.MethodGet, "/api/3.0/mlflow/traces/"+traceID, nil, 200)
	if str(t, info, "trace", "trace_info", "request_time") != "2025-04-15T08:49:18.699Z" ||
		str(t, info, "trace", "trace_info", "execution_duration") != "0.250s" {
		t.Fatalf("info = %v", info)
	}
	// The UI's trace data endpoint serves the same file.
	for _, v := range []string{"2.0", "3.0"} {
		if resp, b := srv.Do(t, http.MethodGet, "/ajax-api/"+v+"/mlflow/get-trace-artifact?request_id="+traceID, nil); resp.StatusCode != 200 || string(b) != data {
			t.Fatalf("get-trace-artifact (%s) = %d %.100s", v, resp.StatusCode, b)
		}
	}

	loc3 := []obj{{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": obj{"experiment_id": expID}}}
	found := call(t, srv, http.MethodPost, "/api/3.0/mlflow/traces/search", obj{"locations": loc3,
		"filter": "trace.status = 'OK' AND trace.execution_time_ms < 1000 AND name = 'chat'", "order_by": []string{"timestamp_ms DESC"}}, 200)
	if ts, _ := found["traces"].([]any); len(ts) != 1 || str(t, ts[0], "trace_id") != traceID {
		t.Fatalf("v3 search = %v", found)
	}
	v2 := call(t, srv, http.MethodGet, "/api/2.0/mlflow/traces?experiment_ids="+expID+"&filter="+url.QueryEscape("status = 'OK'"), nil, 200)
	if ts, _ := v2["traces"].([]any); len(ts) != 1 || str(t, ts[0], "request_id") != traceID || str(t, ts[0], "status") != "OK" {
		t.Fatalf("v2 search = %v", v2)
	}

	call(t, srv, http.MethodPatch, "/api/3.0/mlflow/traces/"+traceID+"/tags", obj{"key": "reviewed", "value": "yes"}, 200)
	call(t, srv, http.MethodPatch, "/api/2.0/mlflow/traces/"+traceID+"/tags", obj{"key": "via-v2", "value": "1"}, 200)
	tagged := call(t, srv, http.MethodPost, "/api/3.0/mlflow/traces/search", obj{"locations": loc3, "filter": "tags.reviewed = 'yes' AND tags.`via-v2` = '1'"}, 200)
	if ts, _ := tagged["traces"].([]any); len(ts) != 1 {
		t.Fatalf("tag search = %v", tagged)
	}
	call(t, srv, http.MethodDelete, "/api/3.0/mlflow/traces/"+traceID+"/tags", obj{"key": "reviewed"}, 200)

	del := call(t, srv, http.MethodPost, "/api/3.0/mlflow/traces/delete-traces", obj{"experiment_id": expID, "request_ids": []string{traceID}}, 200)
	if n, _ := del["traces_deleted"].(float64); n != 1 {
		t.Fatalf("deleted = %v", del)
	}
	call(t, srv, http.MethodGet, "/api/3.0/mlflow/traces/"+traceID, nil, 404)
}
