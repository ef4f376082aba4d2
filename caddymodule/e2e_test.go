package caddymodule_test

// These tests run a real Caddy in-process (caddytest) and talk to it over
// HTTP. They must not use t.Parallel: Caddy runs one config per process.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

type obj = map[string]any

// str digs a string out of nested JSON objects.
func str(t *testing.T, v any, path ...string) string {
	t.Helper()
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: not an object at %q", v, k)
		}
		v = m[k]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v at %v is not a string", v, path)
	}
	return s
}

// call does a JSON request and fails t unless the status is want.
func call(t *testing.T, srv *caddytest.Server, method, path string, req any, want int) obj {
	t.Helper()
	var out obj
	if got := srv.JSON(t, method, path, req, &out); got != want {
		t.Fatalf("%s %s = %d %v, want %d", method, path, got, out, want)
	}
	return out
}

func TestQuickstartOverHTTP(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})

	resp, body := srv.Do(t, http.MethodGet, "/health", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "OK" {
		t.Fatalf("/health = %d %q", resp.StatusCode, body)
	}
	resp, body = srv.Do(t, http.MethodGet, "/version", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != caddymodule.DefaultMLflowVersion {
		t.Fatalf("/version = %d %q", resp.StatusCode, body)
	}
	resp, _ = srv.Do(t, http.MethodGet, "/no/such/page", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path = %d, want 404", resp.StatusCode)
	}

	// The Default experiment exists from the start, rooted at the proxy.
	def := call(t, srv, http.MethodGet, "/api/2.0/mlflow/experiments/get?experiment_id=0", nil, 200)
	if got := str(t, def, "experiment", "artifact_location"); got != "mlflow-artifacts:/0" {
		t.Fatalf("Default artifact_location = %q", got)
	}

	exp := call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "quickstart"}, 200)
	expID := str(t, exp, "experiment_id")

	now := time.Now().UnixMilli()
	run := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{
		"experiment_id": expID, "start_time": now, "run_name": "first",
		"tags": []obj{{"key": "mlflow.user", "value": "tester"}},
	}, 200)
	runID := str(t, run, "run", "info", "run_id")
	if got, want := str(t, run, "run", "info", "artifact_uri"), fmt.Sprintf("mlflow-artifacts:/%s/%s/artifacts", expID, runID); got != want {
		t.Fatalf("artifact_uri = %q, want %q", got, want)
	}

	call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/log-batch", obj{
		"run_id":  runID,
		"metrics": []obj{{"key": "loss", "value": 0.25, "timestamp": now, "step": 1}},
		"params":  []obj{{"key": "lr", "value": "0.01"}},
		"tags":    []obj{{"key": "stage", "value": "test"}},
	}, 200)
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/update", obj{"run_id": runID, "status": "FINISHED", "end_time": now + 1000}, 200)

	got := call(t, srv, http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+runID, nil, 200)
	if s := str(t, got, "run", "info", "status"); s != "FINISHED" {
		t.Fatalf("status = %q", s)
	}
	data := got["run"].(obj)["data"].(obj)
	if m := data["metrics"].([]any)[0].(obj); m["key"] != "loss" || m["value"] != 0.25 {
		t.Fatalf("metrics = %v", data["metrics"])
	}
	if p := data["params"].([]any)[0].(obj); p["key"] != "lr" || p["value"] != "0.01" {
		t.Fatalf("params = %v", data["params"])
	}

	found := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/search", obj{
		"experiment_ids": []string{expID}, "filter": "metrics.loss < 0.5 and params.lr = '0.01'",
	}, 200)
	if runs, _ := found["runs"].([]any); len(runs) != 1 || str(t, runs[0], "info", "run_id") != runID {
		t.Fatalf("search = %v", found)
	}

	// Artifacts through the proxy, as the MLflow client uploads them.
	content := "hello artifacts\n"
	artPath := fmt.Sprintf("/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/model/notes.txt", expID, runID)
	resp, body = srv.Do(t, http.MethodPut, artPath, content)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT artifact = %d %s", resp.StatusCode, body)
	}
	resp, body = srv.Do(t, http.MethodGet, artPath, nil)
	if resp.StatusCode != 200 || string(body) != content {
		t.Fatalf("GET artifact = %d %q", resp.StatusCode, body)
	}
	onDisk := filepath.Join(srv.ArtifactsDir, expID, runID, "artifacts", "model", "notes.txt")
	if b, err := os.ReadFile(onDisk); err != nil || string(b) != content {
		t.Fatalf("artifact on disk at %s: %q, %v", onDisk, b, err)
	}
	list := call(t, srv, http.MethodGet, fmt.Sprintf("/api/2.0/mlflow-artifacts/artifacts?path=%s/%s/artifacts/model", expID, runID), nil, 200)
	if files, _ := list["files"].([]any); len(files) != 1 || str(t, files[0], "path") != "notes.txt" {
		t.Fatalf("proxy list = %v", list)
	}
	list = call(t, srv, http.MethodGet, "/api/2.0/mlflow/artifacts/list?run_id="+runID, nil, 200)
	if files, _ := list["files"].([]any); len(files) != 1 || str(t, files[0], "path") != "model" {
		t.Fatalf("run artifact list = %v", list)
	}

	// The bolt file is where the config said.
	if _, err := os.Stat(srv.BoltPath); err != nil {
		t.Fatalf("bolt file: %v", err)
	}
}

// TestReloadReusesBoltHandle: reloading a config that names the same bolt
// file reuses the open database (no deadlock on bbolt's file lock), keeps
// the data, and a reload whose provisioning fails leaves the running
// config's database open.
func TestReloadReusesBoltHandle(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	exp := call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "survives-reloads"}, 200)
	expID := str(t, exp, "experiment_id")
	if n := caddymodule.DBReferences(srv.BoltPath); n != 1 {
		t.Fatalf("references before reload = %d, want 1", n)
	}

	for i, version := range []string{"3.7.0", "3.8.1"} {
		done := make(chan error, 1)
		go func() {
			done <- srv.TryReload(caddytest.Options{Directives: []string{"mlflow_version " + version}})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("reload %d: %v", i+1, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("reload %d did not finish: deadlock on the bolt file lock?", i+1)
		}
		if n := caddymodule.DBReferences(srv.BoltPath); n != 1 {
			t.Fatalf("references after reload %d = %d, want 1", i+1, n)
		}
		resp, body := srv.Do(t, http.MethodGet, "/version", nil)
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != version {
			t.Fatalf("/version after reload %d = %q, want %q", i+1, body, version)
		}
		got := call(t, srv, http.MethodGet, "/api/2.0/mlflow/experiments/get?experiment_id="+expID, nil, 200)
		if name := str(t, got, "experiment", "name"); name != "survives-reloads" {
			t.Fatalf("experiment after reload %d: %q", i+1, name)
		}
	}

	// A reload that fails after acquiring the database (its artifacts
	// directory cannot be created) must not close the running config's
	// database.
	notADir := filepath.Join(srv.Dir, "not-a-dir")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := srv.TryReload(caddytest.Options{Directives: []string{"artifacts_destination " + filepath.Join(notADir, "arts")}})
	if err == nil {
		t.Fatal("reload with an impossible artifacts_destination succeeded")
	}
	// And one that fails before acquiring it.
	if err := srv.TryReload(caddytest.Options{Directives: []string{"backend_store_uri sqlite:///x.db"}}); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Fatalf("reload with sqlite = %v, want not supported", err)
	}
	if n := caddymodule.DBReferences(srv.BoltPath); n != 1 {
		t.Fatalf("references after failed reloads = %d, want 1", n)
	}
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "after-failed-reload"}, 200)

	// A full restart closes and reopens the file; the data is durable.
	srv.Restart(t, caddytest.Options{})
	got := call(t, srv, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=after-failed-reload", nil, 200)
	if name := str(t, got, "experiment", "name"); name != "after-failed-reload" {
		t.Fatalf("experiment after restart: %q", name)
	}
	srv.Stop()
	if n := caddymodule.DBReferences(srv.BoltPath); n != 0 {
		t.Fatalf("references after stop = %d, want 0", n)
	}
}

func TestArtifactsOnlyMode(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{"artifacts_only"}})

	resp, body := srv.Do(t, http.MethodPost, "/api/2.0/mlflow/experiments/create", `{"name":"x"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "artifacts-only") {
		t.Fatalf("tracking endpoint in artifacts_only = %d %q, want 503", resp.StatusCode, body)
	}
	path := "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a.txt"
	if resp, body = srv.Do(t, http.MethodPut, path, "data"); resp.StatusCode != 200 {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	if resp, body = srv.Do(t, http.MethodGet, path, nil); resp.StatusCode != 200 || string(body) != "data" {
		t.Fatalf("GET = %d %q", resp.StatusCode, body)
	}
	if resp, _ = srv.Do(t, http.MethodGet, "/health", nil); resp.StatusCode != 200 {
		t.Fatalf("/health = %d", resp.StatusCode)
	}
	if _, err := os.Stat(srv.BoltPath); !os.IsNotExist(err) {
		t.Fatalf("artifacts_only created a bolt file (stat: %v)", err)
	}
}

func TestServeArtifactsOff(t *testing.T) {
	root := filepath.Join(t.TempDir(), "runs-root")
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{"serve_artifacts off", "default_artifact_root " + root}})

	resp, body := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt", "data")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "serve-artifacts") {
		t.Fatalf("proxy with serve_artifacts off = %d %q, want 503", resp.StatusCode, body)
	}
	exp := call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "direct"}, 200)
	expID := str(t, exp, "experiment_id")
	got := call(t, srv, http.MethodGet, "/api/2.0/mlflow/experiments/get?experiment_id="+expID, nil, 200)
	if loc := str(t, got, "experiment", "artifact_location"); loc != root+"/"+expID {
		t.Fatalf("artifact_location = %q, want %q", loc, root+"/"+expID)
	}
	if _, err := os.Stat(srv.ArtifactsDir); !os.IsNotExist(err) {
		t.Fatalf("serve_artifacts off created the artifacts directory (stat: %v)", err)
	}
}
