package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSplitDeployment runs MLflow's split deployment side by side in one
// built caddy: an artifacts_only instance that owns the artifact store, and
// a tracking instance with serve_artifacts off whose default artifact root
// points clients at the first (mlflow-artifacts://host:port/). It checks
// each answers only its own half, with MLflow's 503s for the other, that the
// client-side flow (create run on one, upload and list on the other) works,
// and that an experiment keeps its artifact location when the tracking
// instance later restarts in the default (serving) mode.
func TestSplitDeployment(t *testing.T) {
	dir := t.TempDir()
	// One process, two sites: ports[0] the tracking instance (probed),
	// ports[1] the artifacts instance. A restart keeps both (canMove stays
	// false): the experiment made below stores the artifacts address.
	srv := newServer(t, dir, 0)
	srv.nPorts = 2
	// tracking is the tracking site's mode lines for the artifacts port.
	var tracking func(pa int) string
	srv.prepare = func(s *server) {
		pt, pa := s.ports[0], s.ports[1]
		s.config = fmt.Sprintf(`{
	admin off
	persist_config off
}
http://127.0.0.1:%d {
	mlflow {
		artifacts_only
		artifacts_destination %s
	}
}
http://127.0.0.1:%d {
	mlflow {
		backend_store_uri %s
		%s
	}
}
`, pa, filepath.Join(dir, "shared-artifacts"), pt, filepath.Join(dir, "mlflow.bolt"), tracking(pa))
	}
	call := func(method string, port int, path string, body any) (int, string) {
		t.Helper()
		var rd io.Reader
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), rd)
		if _, ok := body.(string); !ok && body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	tracking = func(pa int) string {
		return fmt.Sprintf("serve_artifacts off\n\t\tdefault_artifact_root mlflow-artifacts://127.0.0.1:%d/", pa)
	}
	srv.start()
	pt, pa := srv.ports[0], srv.ports[1]
	st, body := call("POST", pt, "/api/2.0/mlflow/experiments/create", map[string]any{"name": "split"})
	if st != 200 {
		t.Fatalf("create experiment: %d %s", st, body)
	}
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	_ = json.Unmarshal([]byte(body), &exp)
	st, body = call("POST", pt, "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": exp.ExperimentID})
	var run struct {
		Run struct {
			Info struct {
				RunID       string `json:"run_id"`
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := json.Unmarshal([]byte(body), &run); st != 200 || err != nil {
		t.Fatalf("create run: %d %s", st, body)
	}
	wantURI := fmt.Sprintf("mlflow-artifacts://127.0.0.1:%d/%s/%s/artifacts", pa, exp.ExperimentID, run.Run.Info.RunID)
	if run.Run.Info.ArtifactURI != wantURI {
		t.Fatalf("artifact_uri %q, want %q", run.Run.Info.ArtifactURI, wantURI)
	}
	// What the MLflow client does with that URI: talk to the artifacts instance.
	rel := fmt.Sprintf("%s/%s/artifacts", exp.ExperimentID, run.Run.Info.RunID)
	if st, body := call("PUT", pa, "/api/2.0/mlflow-artifacts/artifacts/"+rel+"/model.txt", "weights"); st != 200 {
		t.Fatalf("upload to the artifacts instance: %d %s", st, body)
	}
	if st, body := call("GET", pa, "/api/2.0/mlflow-artifacts/artifacts/"+rel+"/model.txt", nil); st != 200 || body != "weights" {
		t.Fatalf("download: %d %q", st, body)
	}
	// Each instance refuses the other half with MLflow's 503 texts.
	if st, body := call("GET", pa, "/api/2.0/mlflow/experiments/get?experiment_id=0", nil); st != 503 || !strings.Contains(body, "--artifacts-only") {
		t.Fatalf("tracking on the artifacts-only instance: %d %s", st, body)
	}
	if st, body := call("PUT", pt, "/api/2.0/mlflow-artifacts/artifacts/"+rel+"/x.txt", "x"); st != 503 || !strings.Contains(body, "--no-serve-artifacts") {
		t.Fatalf("artifacts on the no-serve instance: %d %s", st, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "shared-artifacts", filepath.FromSlash(rel), "x.txt")); err == nil {
		t.Fatal("the no-serve instance wrote an artifact")
	}
	srv.kill()

	// Restart the tracking side in the default mode: the old experiment and
	// its run keep their locations; new experiments get the proxied root.
	tracking = func(int) string { return fmt.Sprintf("artifacts_destination %s", filepath.Join(dir, "own-artifacts")) }
	srv.prepare(srv)
	srv.start()
	st, body = call("GET", pt, "/api/2.0/mlflow/experiments/get?experiment_id="+exp.ExperimentID, nil)
	if st != 200 || !strings.Contains(body, fmt.Sprintf(`"artifact_location":"mlflow-artifacts://127.0.0.1:%d/%s"`, pa, exp.ExperimentID)) {
		t.Fatalf("old experiment after the mode change: %d %s", st, body)
	}
	st, body = call("POST", pt, "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": exp.ExperimentID})
	if st != 200 || !strings.Contains(body, fmt.Sprintf("mlflow-artifacts://127.0.0.1:%d/%s/", pa, exp.ExperimentID)) {
		t.Fatalf("new run in the old experiment: %d %s", st, body)
	}
	st, body = call("POST", pt, "/api/2.0/mlflow/experiments/create", map[string]any{"name": "later"})
	_ = json.Unmarshal([]byte(body), &exp)
	st, body = call("GET", pt, "/api/2.0/mlflow/experiments/get?experiment_id="+exp.ExperimentID, nil)
	if st != 200 || !strings.Contains(body, fmt.Sprintf(`"artifact_location":"mlflow-artifacts:/%s"`, exp.ExperimentID)) {
		t.Fatalf("new experiment in the serving mode: %d %s", st, body)
	}
}
