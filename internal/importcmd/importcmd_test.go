package importcmd

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
)

func TestRunFileStoreTwice(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join(importtest.Dir(t), "mlruns"), filepath.Join(dir, "mlruns")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cfg := Config{From: "file://" + filepath.Join(dir, "mlruns"), To: filepath.Join(dir, "mlflow.bolt"), ArtifactsTo: filepath.Join(dir, "artifacts")}
	var out, errOut bytes.Buffer
	cfg.Stdout, cfg.Stderr = &out, &errOut
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if rep.Imported.Runs != 5 || !strings.Contains(out.String(), "problems: 0") ||
		!strings.Contains(out.String(), "artifact_files") {
		t.Fatalf("first import: %+v\n%s", rep.Imported, out.String())
	}
	out.Reset()
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported.Runs != 0 || !strings.Contains(out.String(), "skipped (already imported): 5 runs, 2 registered models") {
		t.Fatalf("second import:\n%s", out.String())
	}
}

func TestRunSQLiteExperimentDryRun(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	rep, err := Run(context.Background(), Config{
		From: "sqlite:///" + filepath.Join(importtest.Dir(t), "mlflow.db"), To: filepath.Join(dir, "mlflow.bolt"),
		ArtifactsFrom: filepath.Join(importtest.Dir(t), "artifacts"), Experiments: []string{"second"}, DryRun: true, Stdout: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported.Experiments != 1 || rep.Imported.Runs != 1 || !strings.Contains(out.String(), "WOULD IMPORT") {
		t.Fatalf("dry run: %+v\n%s", rep.Imported, out.String())
	}
}

func TestOpenSourceRefusals(t *testing.T) {
	for _, from := range []string{"https://mlflow.example.com", "postgresql://u@h/db", "s3://bucket/x", filepath.Join(t.TempDir(), "missing")} {
		if _, err := OpenSource(context.Background(), from, ""); err == nil {
			t.Errorf("OpenSource(%q) succeeded", from)
		}
	}
	if _, err := Run(context.Background(), Config{From: "x"}); err == nil {
		t.Error("Run without --to succeeded")
	}
}
