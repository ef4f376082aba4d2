package caddymodule_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// TestLocalMultipartOverHTTP uploads in parts through Caddy to the local
// artifacts directory, as MLflow's client does with
// MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true.
func TestLocalMultipartOverHTTP(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	data := make([]byte, 4<<20+3)
	_, _ = rand.Read(data)
	if err := artifacttest.Upload(srv.Client(), srv.URL, "0/r1/artifacts", "/home/me/model.bin", data, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp, body := srv.Do(t, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts/model.bin", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d (%d bytes)", resp.StatusCode, len(body))
	}
	list := call(t, srv, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts", nil, 200)
	if s := fmt.Sprint(list["files"]); strings.Contains(s, "mlflow-upload") {
		t.Fatalf("staging visible: %s", s)
	}
}

// TestArtifactsOnlyModeWithMultipart: tracking routes answer MLflow's 503 naming
// --artifacts-only; the artifact proxy (multipart included) works.
func TestArtifactsOnlyModeWithMultipart(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{"artifacts_only"}})
	resp, body := srv.Do(t, http.MethodPost, "/api/2.0/mlflow/experiments/create", `{"name":"x"}`)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "--artifacts-only") {
		t.Fatalf("tracking route = %d %s", resp.StatusCode, body)
	}
	if resp, body := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a.txt", "abc"); resp.StatusCode != 200 {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	if resp, body := srv.Do(t, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a.txt", nil); resp.StatusCode != 200 || string(body) != "abc" {
		t.Fatalf("GET = %d %s", resp.StatusCode, body)
	}
	if err := artifacttest.Upload(srv.Client(), srv.URL, "1/r/artifacts", "m.bin", []byte("0123456789"), 4); err != nil {
		t.Fatal(err)
	}
}

// TestNoServeArtifactsGCSRoot: with serve_artifacts off and
// default_artifact_root gs://..., runs get direct gs:// artifact URIs and
// the proxy routes (multipart included) answer MLflow's 503.
func TestNoServeArtifactsGCSRoot(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{
		"serve_artifacts off", "default_artifact_root gs://direct-bkt/mlruns",
	}})
	exp := call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "direct"}, 200)
	expID := str(t, exp, "experiment_id")
	run := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{"experiment_id": expID, "start_time": time.Now().UnixMilli()}, 200)
	uri := str(t, run, "run", "info", "artifact_uri")
	if want := fmt.Sprintf("gs://direct-bkt/mlruns/%s/%s/artifacts", expID, str(t, run, "run", "info", "run_id")); uri != want {
		t.Fatalf("artifact_uri = %q, want %q", uri, want)
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/1/r/a.txt", "x"},
		{http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts?path=1", ""},
		{http.MethodPost, "/api/2.0/mlflow-artifacts/mpu/create/1/r", `{"path":"a","num_parts":1}`},
	} {
		resp, body := srv.Do(t, c.method, c.path, c.body)
		if resp.StatusCode != 503 || !strings.Contains(string(body), "--no-serve-artifacts") {
			t.Fatalf("%s %s = %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
}
