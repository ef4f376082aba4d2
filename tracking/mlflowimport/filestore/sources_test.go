package filestore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// TestImportRewritesRegistrySources: a version registered from a path
// inside its run's artifacts follows the artifacts to the destination's
// mlflow-artifacts:/ root, in both of MLflow's local spellings; sources
// that do not depend on the artifacts' place (runs:/…, another location)
// are kept.
func TestImportRewritesRegistrySources(t *testing.T) {
	ctx := context.Background()
	root := copyFixture(t)
	const run = "de1274ebd5394936ab1de5ee79770b9d"
	const runArtifacts = "/work/wt/import12/testdata/mlflow-fixtures/mlruns/907215026261860726/" + run + "/artifacts"
	versions, err := filepath.Glob(filepath.Join(root, "models", "*", "version-*", "meta.yaml"))
	if err != nil || len(versions) != 2 {
		t.Fatalf("fixture versions: %v %v", versions, err)
	}
	sources := map[string]string{
		"version-1": "file://" + runArtifacts + "/model",
		"version-2": runArtifacts + "/model/sub",
	}
	for _, p := range versions {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		src := sources[filepath.Base(filepath.Dir(p))]
		out := strings.ReplaceAll(string(data), "source: runs:/"+run+"/model", "source: "+src)
		out = strings.ReplaceAll(out, "storage_location: runs:/"+run+"/model", "storage_location: "+src)
		if out == string(data) {
			t.Fatalf("%s: no source to replace", p)
		}
		if err := os.WriteFile(p, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dst := openBolt(t)
	arts := t.TempDir()
	if rep, err := importInto(t, ctx, root, dst, mlflowimport.Options{ArtifactsTo: arts}); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("import: %v %v", err, rep.Problems)
	}
	r, err := dst.GetRun(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{1: r.Info.ArtifactURI + "/model", 2: r.Info.ArtifactURI + "/model/sub"}
	if !strings.HasPrefix(r.Info.ArtifactURI, "mlflow-artifacts:/") {
		t.Fatalf("run artifact URI %q", r.Info.ArtifactURI)
	}
	for n, w := range want {
		v, err := dst.GetModelVersion(ctx, "fixture-model ü", n)
		if err != nil {
			t.Fatal(err)
		}
		if v.Source != w {
			t.Errorf("version %d source %q, want %q", n, v.Source, w)
		}
	}

	// Without copying artifacts, nothing moves and sources stay.
	dst2 := openBolt(t)
	if _, err := importInto(t, ctx, root, dst2, mlflowimport.Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := dst2.GetModelVersion(ctx, "fixture-model ü", 1)
	if err != nil || v.Source != sources["version-1"] {
		t.Fatalf("without --artifacts-to: source %q, %v", v.Source, err)
	}
}
