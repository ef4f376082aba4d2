package caddymodule_test

import (
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
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/logged-models/"+modelID+"/params", obj{"params": []obj{{"key": "beta", "value": "1"}}}, 200)
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
