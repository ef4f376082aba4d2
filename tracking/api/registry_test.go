package api

import (
	"testing"
)

func TestRegistryRoutesNamed(t *testing.T) {
	_, srv := newTestServer(t)
	want := map[string]bool{}
	for _, n := range []string{"CreateRegisteredModel", "RenameRegisteredModel", "UpdateRegisteredModel",
		"DeleteRegisteredModel", "GetRegisteredModel", "SearchRegisteredModels", "GetLatestVersions",
		"SetRegisteredModelTag", "DeleteRegisteredModelTag", "SetRegisteredModelAlias", "DeleteRegisteredModelAlias",
		"GetModelVersionByAlias", "CreateModelVersion", "UpdateModelVersion", "DeleteModelVersion", "GetModelVersion",
		"SearchModelVersions", "GetModelVersionDownloadUri", "TransitionModelVersionStage", "SetModelVersionTag",
		"DeleteModelVersionTag"} {
		want[n] = false
	}
	for _, r := range srv.Routes() {
		if _, ok := want[r.Name]; ok {
			want[r.Name] = true
			if !r.Tracking {
				t.Errorf("%s %s is not a tracking route", r.Method, r.Pattern)
			}
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("no route named %s", n)
		}
	}
}

func TestRegisteredModelsAPI(t *testing.T) {
	ts, _ := newTestServer(t)
	wantStatus(t, post(t, ts, "registered-models/create", map[string]any{"name": "m",
		"tags": []any{map[string]any{"key": "k", "value": "v"}}}), 200)
	wantError(t, post(t, ts, "registered-models/create", map[string]any{"name": "m"}), 400,
		"RESOURCE_ALREADY_EXISTS", "already exists")
	wantError(t, post(t, ts, "registered-models/create", map[string]any{}), 400,
		"INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
	wantError(t, post(t, ts, "registered-models/create", map[string]any{"name": "x",
		"tags": []any{map[string]any{"key": "../k", "value": "v"}}}), 400, "INVALID_PARAMETER_VALUE", "")

	// DELETE routes read a JSON body (no Content-Type needed).
	wantStatus(t, call(t, ts, "DELETE", "/api/2.0/mlflow/registered-models/delete-tag", "", `{"name":"m","key":"k"}`), 200)
	r := get(t, ts, "registered-models/get?name=m")
	wantStatus(t, r, 200)
	if _, has := r.json(t)["registered_model"].(map[string]any)["tags"]; has {
		t.Fatalf("tag not deleted: %s", r.body)
	}
	wantError(t, call(t, ts, "DELETE", "/api/2.0/mlflow/registered-models/delete", "", `{"name":"nope"}`), 404,
		"RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found")

	// Search: GET only, max_results bounds, grammar errors are 400.
	wantStatus(t, post(t, ts, "registered-models/search", map[string]any{}), 405)
	// MLflow's schema check (_assert_less_than_or_equal without a message)
	// answers the invalid-value hint before its store's "at most" check.
	wantError(t, get(t, ts, "registered-models/search?max_results=1001"), 400, "INVALID_PARAMETER_VALUE",
		`Invalid value "1001" for parameter 'max_results' supplied:  Hint: Value was of type 'str'.`)
	wantError(t, get(t, ts, "registered-models/search?filter=run_id%3D'x'"), 400, "INVALID_PARAMETER_VALUE", "Invalid attribute key")
	wantError(t, get(t, ts, "registered-models/search?order_by=creation_timestamp"), 400, "INVALID_PARAMETER_VALUE", "")
	wantError(t, get(t, ts, "registered-models/search?page_token=zz"), 400, "INVALID_PARAMETER_VALUE", "page token")
	r = call(t, ts, "GET", "/ajax-api/2.0/mlflow/registered-models/search", "", nil)
	wantStatus(t, r, 200)
	if n := len(r.json(t)["registered_models"].([]any)); n != 1 {
		t.Fatalf("%d models", n)
	}
}

func TestModelVersionsAPI(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "e")
	run := mkRun(t, ts, exp)
	wantStatus(t, post(t, ts, "registered-models/create", map[string]any{"name": "m"}), 200)

	for _, c := range []struct {
		source, runID string
		status        int
	}{
		{"runs:/" + run + "/model", run, 200},
		{"mlflow-artifacts:/" + exp + "/" + run + "/artifacts/model", run, 200},
		{"s3://bucket//model/", "", 200},
		{"s3://bucket/a/../../etc", "", 400},
		{"s3://bucket/a/%252e%252e/x", "", 400},
		{"s3://bucket/a/./x", "", 400},
		{"/etc/passwd", "", 400},
		{"/etc/passwd", run, 400},
		{"file:///tmp/model", run, 400},
		{"relative/dir", "", 400},
		{"models:/nope/1", "", 400},
		{"models:/m-0123456789abcdef", "", 400},
	} {
		r := post(t, ts, "model-versions/create", map[string]any{"name": "m", "source": c.source, "run_id": c.runID})
		if r.status != c.status {
			t.Errorf("source %q run %q: status %d, want %d: %s", c.source, c.runID, r.status, c.status, r.body)
		}
	}
	// models:/ sources resolve to the referenced version's storage location.
	wantStatus(t, post(t, ts, "model-versions/create", map[string]any{"name": "m", "source": "models:/m/3"}), 200)
	r := get(t, ts, "model-versions/get-download-uri?name=m&version=4")
	wantStatus(t, r, 200)
	if got := r.json(t)["artifact_uri"]; got != "s3://bucket//model/" {
		t.Fatalf("download uri %v", got)
	}
	r = get(t, ts, "model-versions/get?name=m&version=4")
	if got := r.json(t)["model_version"].(map[string]any)["source"]; got != "models:/m/3" {
		t.Fatalf("source %v", got)
	}

	wantError(t, get(t, ts, "model-versions/get?name=m&version=x"), 400, "INVALID_PARAMETER_VALUE",
		"Parameter 'version' must be an integer, got 'x'.")
	wantError(t, get(t, ts, "model-versions/get?name=m&version=99"), 404, "RESOURCE_DOES_NOT_EXIST",
		"Model Version (name=m, version=99) not found")
	wantError(t, post(t, ts, "model-versions/transition-stage", map[string]any{"name": "m", "version": "1", "stage": "Prod"}),
		400, "INVALID_PARAMETER_VALUE", "Invalid Model Version stage")
	wantError(t, post(t, ts, "model-versions/transition-stage", map[string]any{"name": "m", "version": "1",
		"stage": "archived", "archive_existing_versions": true}), 400, "INVALID_PARAMETER_VALUE", "")
	wantError(t, post(t, ts, "model-versions/transition-stage", map[string]any{"name": "m", "version": "1",
		"stage": "Staging", "archive_existing_versions": "yes"}), 400, "INVALID_PARAMETER_VALUE", "")
	r = post(t, ts, "model-versions/transition-stage", map[string]any{"name": "m", "version": 1, "stage": "production"})
	wantStatus(t, r, 200)
	if got := r.json(t)["model_version"].(map[string]any)["current_stage"]; got != "Production" {
		t.Fatalf("stage %v", got)
	}

	// Aliases.
	for _, a := range []string{"latest", "V12", "a b", ""} {
		r := post(t, ts, "registered-models/alias", map[string]any{"name": "m", "alias": a, "version": "1"})
		if r.status != 400 {
			t.Errorf("alias %q: status %d", a, r.status)
		}
	}
	wantStatus(t, post(t, ts, "registered-models/alias", map[string]any{"name": "m", "alias": "champ", "version": "2"}), 200)
	r = get(t, ts, "registered-models/alias?name=m&alias=champ")
	wantStatus(t, r, 200)
	if got := r.json(t)["model_version"].(map[string]any)["version"]; got != "2" {
		t.Fatalf("alias version %v", got)
	}
	r = get(t, ts, "registered-models/alias?name=m&alias=latest")
	if got := r.json(t)["model_version"].(map[string]any)["version"]; got != "4" {
		t.Fatalf("latest %v", got)
	}
	wantError(t, get(t, ts, "registered-models/alias?name=m&alias=nope"), 400, "INVALID_PARAMETER_VALUE", "not found")
	wantStatus(t, call(t, ts, "DELETE", "/api/2.0/mlflow/registered-models/alias", "", `{"name":"m","alias":"champ"}`), 200)

	// Tags, update, delete, search.
	wantError(t, post(t, ts, "model-versions/set-tag", map[string]any{"name": "m", "version": "1", "key": ""}), 400,
		"INVALID_PARAMETER_VALUE", "Missing value")
	wantStatus(t, post(t, ts, "model-versions/set-tag", map[string]any{"name": "m", "version": "1", "key": "k", "value": "v"}), 200)
	wantStatus(t, call(t, ts, "PATCH", "/api/2.0/mlflow/model-versions/update", "", `{"name":"m","version":"1","description":"d"}`), 200)
	wantStatus(t, call(t, ts, "DELETE", "/api/2.0/mlflow/model-versions/delete", "", `{"name":"m","version":"2"}`), 200)
	r = get(t, ts, "model-versions/search?filter=tags.k%3D'v'")
	wantStatus(t, r, 200)
	mvs := r.json(t)["model_versions"].([]any)
	if len(mvs) != 1 || mvs[0].(map[string]any)["description"] != "d" {
		t.Fatalf("search %s", r.body)
	}
	r = get(t, ts, "model-versions/search?max_results=1&order_by=version_number+ASC")
	if r.json(t)["next_page_token"] == nil {
		t.Fatalf("no page token: %s", r.body)
	}
	wantError(t, get(t, ts, "model-versions/search?max_results=200001"), 400, "INVALID_PARAMETER_VALUE", "")
	r = post(t, ts, "registered-models/get-latest-versions", map[string]any{"name": "m", "stages": []string{"production"}})
	wantStatus(t, r, 200)
	if mvs := r.json(t)["model_versions"].([]any); len(mvs) != 1 {
		t.Fatalf("latest %s", r.body)
	}
	wantError(t, get(t, ts, "registered-models/get-latest-versions?name=m&stages=bogus"), 400, "INVALID_PARAMETER_VALUE", "")
}

// TestPromptVersionSources: MLflow 3 registers a prompt version with a
// placeholder source ("dummy-source") and the prompt tag; its
// _create_model_version refuses only local paths for prompt versions and
// checks relative references in URIs.
func TestPromptVersionSources(t *testing.T) {
	ts, _ := newTestServer(t)
	wantStatus(t, post(t, ts, "registered-models/create", map[string]any{"name": "p",
		"tags": []map[string]any{{"key": "mlflow.prompt.is_prompt", "value": "true"}}}), 200)
	promptTags := []map[string]any{{"key": "mlflow.prompt.is_prompt", "value": "true"}, {"key": "mlflow.prompt.text", "value": "Hi {{name}}"}}
	for _, c := range []struct {
		source string
		tags   []map[string]any
		status int
		msg    string
	}{
		{"dummy-source", promptTags, 200, ""},
		{"prompt-template", promptTags, 200, ""},
		// The tag marks a prompt request whatever its value.
		{"dummy-source", []map[string]any{{"key": "mlflow.prompt.is_prompt", "value": "false"}}, 200, ""},
		{"s3://bucket/prompts/p", promptTags, 200, ""},
		{"/etc/passwd", promptTags, 400, "Invalid prompt source: '/etc/passwd'. Local source paths are not allowed for prompts."},
		{"file:///etc/passwd", promptTags, 400, "Invalid prompt source: 'file:///etc/passwd'. Local source paths are not allowed for prompts."},
		{"FILE:/etc/passwd", promptTags, 400, "Local source paths are not allowed for prompts."},
		{"s3://bucket/a/../../etc", promptTags, 400, "Invalid model version source: 's3://bucket/a/../../etc'."},
		// Without the prompt tag the source is a model's, checked as before.
		{"dummy-source", nil, 400, "Invalid model version source: 'dummy-source'. To use a local path"},
	} {
		r := post(t, ts, "model-versions/create", map[string]any{"name": "p", "source": c.source, "tags": c.tags})
		if c.status == 200 {
			wantStatus(t, r, 200)
			if got := r.json(t)["model_version"].(map[string]any)["source"]; got != c.source {
				t.Errorf("source %q stored as %v", c.source, got)
			}
			continue
		}
		wantError(t, r, c.status, "INVALID_PARAMETER_VALUE", c.msg)
	}
}
