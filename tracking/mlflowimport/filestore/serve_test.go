package filestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// TestImportedServed: after importing the hand-made MLflow 3 store, the
// tracking API (over real HTTP) serves the trace's data, the logged
// model and the run's artifacts from where the import put them.
func TestImportedServed(t *testing.T) {
	ctx := context.Background()
	root := copyHandmade(t)
	dst := openBolt(t)
	artsDir := t.TempDir()
	if rep, err := importInto(t, ctx, root, dst, mlflowimport.Options{ArtifactsTo: artsDir}); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("import: %v %+v", err, rep)
	}
	arts, err := artifact.NewLocal(artsDir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Options{Store: dst, Artifacts: arts, ServeArtifacts: true, DefaultArtifactRoot: "mlflow-artifacts:/",
		MLflowVersion: "3.1.0", BuildVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	get := func(p string) []byte {
		t.Helper()
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
		}
		return b
	}
	want, _ := os.ReadFile(filepath.Join(root, "1", "traces", hmTraceV3, "artifacts", "traces.json"))
	if got := get("/ajax-api/2.0/mlflow/get-trace-artifact?request_id=" + hmTraceV3); !bytes.Equal(got, want) {
		t.Fatalf("trace data: %s", got)
	}
	var lm struct {
		Model struct {
			Info struct {
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"model"`
	}
	if err := json.Unmarshal(get("/api/2.0/mlflow/logged-models/"+hmModel), &lm); err != nil || lm.Model.Info.ArtifactURI != hmModelURI {
		t.Fatalf("logged model: %+v %v", lm, err)
	}
	want, _ = os.ReadFile(filepath.Join(root, "1", hmRun, "artifacts", "sub", "data.csv"))
	q := url.Values{"run_id": {hmRun}, "path": {"sub/data.csv"}}
	if got := get("/get-artifact?" + q.Encode()); !bytes.Equal(got, want) {
		t.Fatalf("run artifact: %s", got)
	}
}
