package caddymodule_test

// Import into a gs:// artifacts destination, end to end: the MLflow
// fixtures are imported offline (the CLI reads the store, the gs://
// artifacts_destination and gcs_endpoint from --config), a real Caddy on
// fake-gcs-server serves the artifacts by their run ids, and imports
// through its admin API skip what is there and re-copy what changed.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
)

func TestImportIntoGCS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts caddy")
	}
	emu := gcstest.Start(t, "mlflow-bkt")
	t.Setenv("STORAGE_EMULATOR_HOST", "") // the config's gcs_endpoint must be what is used
	opts := caddytest.Options{Admin: true, Backend: caddytest.BackendBolt, Directives: []string{
		"artifacts_destination gs://mlflow-bkt/team/arts",
		"gcs_endpoint " + emu.URL,
	}}
	srv := caddytest.Start(t, opts)
	cfg := filepath.Join(srv.Dir, "caddy.json")
	if err := os.WriteFile(cfg, srv.Config, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	// The source: MLflow's SQLite database, its artifacts a copy (changed
	// below).
	src := filepath.Join(t.TempDir(), "artifacts")
	if err := os.CopyFS(src, os.DirFS(filepath.Join(importtest.Dir(t), "artifacts"))); err != nil {
		t.Fatal(err)
	}
	man := importtest.Load(t, "manifest-sqlite.json")
	args := []string{"--config", cfg, "--from", "sqlite:///" + filepath.Join(importtest.Dir(t), "mlflow.db"), "--artifacts-from", src}
	files := 0
	for _, r := range man.Runs {
		files += len(r.Artifacts)
	}
	if files == 0 {
		t.Fatal("the manifest lists no artifacts")
	}
	count := func(out, name string) string {
		m := regexp.MustCompile(name + `\s+(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s in the report:\n%s", name, out)
		}
		return m[1]
	}
	skipped := func(out string) string {
		m := regexp.MustCompile(`(\d+) artifact files\n`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no skipped artifact files in the report:\n%s", out)
		}
		return m[1]
	}

	// 1. Offline: every artifact lands in the bucket under the prefix.
	out, err := caddymodule.RunImportCLI(args...)
	if err != nil {
		t.Fatalf("offline import: %v\n%s", err, out)
	}
	if got := count(out, "artifact_files"); got != strconv.Itoa(files) {
		t.Fatalf("offline import copied %s files, want %d:\n%s", got, files, out)
	}
	for _, r := range man.Runs {
		for rel, a := range r.Artifacts {
			o, err := emu.Server.GetObject("mlflow-bkt", "team/arts/"+r.ExperimentID+"/"+r.ID+"/artifacts/"+rel)
			if err != nil || int64(len(o.Content)) != a.Size || hexSHA(o.Content) != a.SHA256 {
				t.Fatalf("run %s: object %s: %v", r.ID, rel, err)
			}
		}
	}

	// 2. The server serves them by run id, both ways MLflow reads them.
	srv.Restart(t, opts)
	serves := func(runID, expID, rel string, want []byte) {
		t.Helper()
		resp, body := srv.Do(t, "GET", "/get-artifact?run_id="+runID+"&path="+url.QueryEscape(rel), nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("get-artifact %s %s = %d (%d bytes), want the source's %d bytes", runID, rel, resp.StatusCode, len(body), len(want))
		}
		p := "/api/2.0/mlflow-artifacts/artifacts/" + expID + "/" + runID + "/artifacts/" + (&url.URL{Path: rel}).EscapedPath()
		resp, body = srv.Do(t, "GET", p, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("GET %s = %d (%d bytes)", p, resp.StatusCode, len(body))
		}
	}
	var changedRun, changedExp, changedRel string
	for _, r := range man.Runs {
		var run struct {
			Run struct {
				Info struct {
					ArtifactURI string `json:"artifact_uri"`
				} `json:"info"`
			} `json:"run"`
		}
		if code := srv.JSON(t, "GET", "/api/2.0/mlflow/runs/get?run_id="+r.ID, nil, &run); code != 200 {
			t.Fatalf("runs/get %s = %d", r.ID, code)
		}
		if want := "mlflow-artifacts:/" + r.ExperimentID + "/" + r.ID + "/artifacts"; run.Run.Info.ArtifactURI != want {
			t.Fatalf("run %s: artifact_uri %q, want %q", r.ID, run.Run.Info.ArtifactURI, want)
		}
		for rel, a := range r.Artifacts {
			b, err := os.ReadFile(sourceFile(t, src, r.ID, rel))
			if err != nil || hexSHA(b) != a.SHA256 {
				t.Fatalf("source %s: %v", rel, err)
			}
			serves(r.ID, r.ExperimentID, rel, b)
			if len(b) > 0 && (changedRel == "" || rel < changedRel) {
				changedRun, changedExp, changedRel = r.ID, r.ExperimentID, rel
			}
		}
	}

	// 3. Again, through the running server's admin API: every object is
	// skipped.
	out, err = caddymodule.RunImportCLI(args...)
	if err != nil {
		t.Fatalf("second import: %v\n%s", err, out)
	}
	if count(out, "artifact_files") != "0" || skipped(out) != strconv.Itoa(files) {
		t.Fatalf("second import, want 0 copied and %d skipped:\n%s", files, out)
	}

	// 4. One source file changed, same size: only it is copied again,
	// and served new.
	file := sourceFile(t, src, changedRun, changedRel)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = caddymodule.RunImportCLI(args...)
	if err != nil {
		t.Fatalf("third import: %v\n%s", err, out)
	}
	if count(out, "artifact_files") != "1" || skipped(out) != strconv.Itoa(files-1) {
		t.Fatalf("third import, want 1 copied and %d skipped:\n%s", files-1, out)
	}
	serves(changedRun, changedExp, changedRel, b)
	if !strings.Contains(out, "problems: 0") {
		t.Fatalf("third import output:\n%s", out)
	}
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sourceFile is a run's artifact in the source's artifact directory
// (<source experiment dir>/<run id>/artifacts/<rel>).
func sourceFile(t *testing.T, src, runID, rel string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(src, "*", runID, "artifacts", filepath.FromSlash(rel)))
	if err != nil || len(m) != 1 {
		t.Fatalf("source file of run %s %s: %v %v", runID, rel, m, err)
	}
	return m[0]
}
