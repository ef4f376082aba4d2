package importcmd

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
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
	if rep.Imported.Runs != 0 || !strings.Contains(out.String(), "skipped (already imported): 5 runs, 0 logged models, 0 traces, 2 registered models") {
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

func TestProgressLines(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	_, err := Run(context.Background(), Config{
		From: "sqlite:///" + filepath.Join(importtest.Dir(t), "mlflow.db"), To: filepath.Join(dir, "mlflow.bolt"),
		ArtifactsFrom: filepath.Join(importtest.Dir(t), "artifacts"), ArtifactsTo: filepath.Join(dir, "artifacts"),
		Stdout: &out, Stderr: &errOut, Interval: time.Nanosecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	last := lines[len(lines)-2] // before "done in"
	if len(lines) < 5 || !strings.Contains(last, "5/5 runs") || !strings.Contains(last, "100%, ETA 0s") ||
		!strings.Contains(last, "artifacts 2.0 KiB/2.0 KiB") {
		t.Fatalf("progress lines:\n%s", errOut.String())
	}
}

func TestProgressBar(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	_, err := Run(context.Background(), Config{
		From: "sqlite:///" + filepath.Join(importtest.Dir(t), "mlflow.db"), To: filepath.Join(dir, "mlflow.bolt"),
		ArtifactsFrom: filepath.Join(importtest.Dir(t), "artifacts"), ArtifactsTo: filepath.Join(dir, "artifacts"),
		Stdout: &out, Stderr: &errOut, Terminal: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := errOut.String()
	if !strings.Contains(s, "\r") || !strings.Contains(s, "100%") || !strings.Contains(s, "KiB") || !strings.Contains(s, "runs,") {
		t.Fatalf("bar output: %q", s)
	}
}

func TestPrintReportProblems(t *testing.T) {
	var out bytes.Buffer
	PrintReport(&out, &mlflowimport.Report{Problems: []mlflowimport.Problem{
		{Kind: "run", ID: "r1", Err: errors.New("meta.yaml: bad")},
		{Kind: "trace", ID: "t1", Err: errors.New("trace_info.yaml: bad")},
		{Kind: "run", ID: "r2", Err: errors.New("metrics: bad")},
	}, SkippedLoggedModels: 2, SkippedTraces: 3, Remapped: map[string]string{"7": "12"}}, false)
	for _, want := range []string{"problems: 3 (2 run, 1 trace)", "run r1: meta.yaml: bad", "2 logged models, 3 traces", "experiment 7 imported as 12"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunArtifactsFromGCS: --artifacts-from gs://bucket/prefix, with the
// client the importer makes itself (STORAGE_EMULATOR_HOST names a
// fake-gcs-server over HTTP).
func TestRunArtifactsFromGCS(t *testing.T) {
	emu := gcstest.Start(t, "mlflow-src")
	root := filepath.Join(importtest.Dir(t), "artifacts")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		emu.Server.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "mlflow-src",
			Name: "arts/" + filepath.ToSlash(rel)}, Content: b})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(emu.URL, "http://"))
	dir := t.TempDir()
	var out bytes.Buffer
	rep, err := Run(context.Background(), Config{
		From: "sqlite:///" + filepath.Join(importtest.Dir(t), "mlflow.db"), To: filepath.Join(dir, "mlflow.bolt"),
		ArtifactsFrom: "gs://mlflow-src/arts", ArtifactsTo: filepath.Join(dir, "artifacts"), Stdout: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ArtifactFiles != 4 || len(rep.Problems) != 0 {
		t.Fatalf("import: %+v\n%s", rep, out.String())
	}
}
