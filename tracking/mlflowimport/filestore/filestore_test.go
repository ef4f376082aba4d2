package filestore_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/filestore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// copyFixture copies the committed mlruns/ tree somewhere else, so the
// absolute file: locations in its meta.yaml files do not point at it
// (as after moving a tree between machines).
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "mlruns")
	out, err := exec.Command("cp", "-a", filepath.Join(importtest.Dir(t), "mlruns"), dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func openBolt(t testing.TB) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "mlflow.bolt"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.EnsureDefaultExperiment(context.Background(), "mlflow-artifacts:/"); err != nil {
		t.Fatal(err)
	}
	return s
}

func importInto(t *testing.T, ctx context.Context, root string, dst mlflowimport.Destination, opts mlflowimport.Options) (*mlflowimport.Report, error) {
	t.Helper()
	src, err := filestore.Open(root, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return mlflowimport.Import(ctx, src, dst, opts)
}

func TestImportFileStore(t *testing.T) {
	ctx := context.Background()
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	dst := openBolt(t)
	arts := t.TempDir()
	rep, err := importInto(t, ctx, root, dst, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Imported.Runs != int64(len(man.Runs)) || rep.ArtifactFiles != 4 {
		t.Fatalf("imported %+v, %d artifact files", rep.Imported, rep.ArtifactFiles)
	}
	importtest.Check(t, dst, man, arts)

	// Twice: nothing new, nothing changed.
	before, err := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = importInto(t, ctx, root, dst, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported.Runs != 0 || rep.Imported.MetricPoints != 0 || rep.SkippedRuns != int64(len(man.Runs)) ||
		rep.SkippedModels != int64(len(man.Models)) || rep.ArtifactFiles != 0 {
		t.Fatalf("second import: %+v", rep)
	}
	after, err := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Fatalf("second import changed the store: %+v -> %+v", before, after)
	}
	importtest.Check(t, dst, man, arts)
}

func TestImportFileStoreDryRun(t *testing.T) {
	ctx := context.Background()
	man := importtest.Load(t, "manifest-file.json")
	dst := openBolt(t)
	before, _ := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	rep, err := importInto(t, ctx, copyFixture(t), dst, mlflowimport.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	if before != after {
		t.Fatalf("dry run wrote: %+v -> %+v", before, after)
	}
	if rep.Imported.Runs != int64(len(man.Runs)) || rep.Imported.RegisteredModels != int64(len(man.Models)) {
		t.Fatalf("dry run report: %+v", rep.Imported)
	}
}

// stopAfterRuns cancels the import once n runs are imported whole.
type stopAfterRuns struct {
	*boltstore.Store
	n      int
	cancel context.CancelFunc
}

func (s *stopAfterRuns) FinishRunImport(ctx context.Context, runID string) error {
	if err := s.Store.FinishRunImport(ctx, runID); err != nil {
		return err
	}
	if s.n--; s.n == 0 {
		s.cancel()
	}
	return nil
}

func TestImportFileStoreResume(t *testing.T) {
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	// The reference: one uninterrupted import.
	ref := openBolt(t)
	if _, err := importInto(t, context.Background(), root, ref, mlflowimport.Options{}); err != nil {
		t.Fatal(err)
	}
	want, _ := storecopy.Count(context.Background(), ref, storecopy.ReadOptions{})

	for _, stopAfter := range []int{1, 3} {
		dst := openBolt(t)
		ctx, cancel := context.WithCancel(context.Background())
		_, err := importInto(t, ctx, root, &stopAfterRuns{Store: dst, n: stopAfter, cancel: cancel}, mlflowimport.Options{})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted import: %v", err)
		}
		part, _ := storecopy.Count(context.Background(), dst, storecopy.ReadOptions{})
		if part.Runs >= want.Runs {
			t.Fatalf("the interrupted import was complete: %+v", part)
		}
		rep, err := importInto(t, context.Background(), root, dst, mlflowimport.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.SkippedRuns != int64(stopAfter) {
			t.Errorf("resume skipped %d runs, want %d", rep.SkippedRuns, stopAfter)
		}
		got, _ := storecopy.Count(context.Background(), dst, storecopy.ReadOptions{})
		if got != want {
			t.Fatalf("resumed import: %+v, want %+v", got, want)
		}
		importtest.Check(t, dst, man, "")
	}
}

func TestImportFileStoreCorrupt(t *testing.T) {
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	bad := man.Runs[1]
	if err := os.WriteFile(filepath.Join(root, bad.ExperimentID, bad.ID, "meta.yaml"), []byte("run_id: [unclosed\n\t:"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An experiment with a broken meta.yaml is skipped too.
	if err := os.MkdirAll(filepath.Join(root, "999"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "999", "meta.yaml"), []byte("name: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := openBolt(t)
	rep, err := importInto(t, context.Background(), root, dst, mlflowimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var runProblem, expProblem bool
	for _, p := range rep.Problems {
		runProblem = runProblem || (p.Kind == "run" && p.ID == bad.ID && strings.Contains(p.Err.Error(), "meta.yaml"))
		expProblem = expProblem || (p.Kind == "experiment" && p.ID == "999")
	}
	if !runProblem || !expProblem || len(rep.Problems) != 2 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Imported.Runs != int64(len(man.Runs)-1) {
		t.Fatalf("imported %d runs", rep.Imported.Runs)
	}
	importtest.Check(t, dst, man, "", bad.ID)
}

func TestImportFileStoreExperimentFilter(t *testing.T) {
	man := importtest.Load(t, "manifest-file.json")
	dst := openBolt(t)
	e := man.Experiments[1]
	rep, err := importInto(t, context.Background(), copyFixture(t), dst, mlflowimport.Options{Experiments: []string{e.Name}})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range man.Runs {
		if r.ExperimentID == e.ID {
			want++
		}
	}
	if rep.Imported.Experiments != 1 || rep.Imported.Runs != int64(want) || rep.Imported.RegisteredModels != 0 {
		t.Fatalf("filtered import: %+v", rep.Imported)
	}
}

func TestImportFileStorePostgres(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	s, err := pgstore.Open(ctx, uri, pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.EnsureDefaultExperiment(ctx, "mlflow-artifacts:/"); err != nil {
		t.Fatal(err)
	}
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	arts := t.TempDir()
	rep, err := importInto(t, ctx, root, s, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	importtest.Check(t, s, man, arts)
	rep, err = importInto(t, ctx, root, s, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil || rep.Imported.Runs != 0 || rep.SkippedRuns != int64(len(man.Runs)) {
		t.Fatalf("second import: %v %+v", err, rep)
	}
}

// TestImportFileStoreRemap: an experiment id already held by another
// experiment in the destination gets a new id, reported, and its runs
// follow it; a rerun maps it by name again.
func TestImportFileStoreRemap(t *testing.T) {
	ctx := context.Background()
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	dst := openBolt(t)
	taken := man.Experiments[1]
	if err := dst.ImportExperiment(ctx, &tracking.Experiment{ExperimentID: taken.ID, Name: "already here",
		LifecycleStage: tracking.LifecycleActive, ArtifactLocation: "mlflow-artifacts:/x"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rep, err := importInto(t, ctx, root, dst, mlflowimport.Options{})
		if err != nil {
			t.Fatal(err)
		}
		newID := rep.Remapped[taken.ID]
		if newID == "" || newID == taken.ID || len(rep.Problems) != 0 {
			t.Fatalf("report: %+v", rep)
		}
		e, err := dst.GetExperimentByName(ctx, taken.Name)
		if err != nil || e.ExperimentID != newID {
			t.Fatalf("experiment %q: %+v %v", taken.Name, e, err)
		}
		if held, err := dst.GetExperiment(ctx, taken.ID); err != nil || held.Name != "already here" {
			t.Fatalf("the holder of id %s: %+v %v", taken.ID, held, err)
		}
		for _, r := range man.Runs {
			if r.ExperimentID != taken.ID {
				continue
			}
			got, err := dst.GetRun(ctx, r.ID)
			if err != nil || got.Info.ExperimentID != newID {
				t.Fatalf("run %s: %+v %v", r.ID, got, err)
			}
		}
	}
}

// halfHistory is a destination that dies half-way through one run's
// metric history: it writes half the points, then cancels the import.
type halfHistory struct {
	*boltstore.Store
	runID  string
	cancel context.CancelFunc
}

func (h *halfHistory) ImportMetricHistory(ctx context.Context, runID string, points []tracking.Metric) error {
	if runID != h.runID {
		return h.Store.ImportMetricHistory(ctx, runID, points)
	}
	if err := h.Store.ImportMetricHistory(ctx, runID, points[:len(points)/2]); err != nil {
		return err
	}
	h.cancel()
	return context.Canceled
}

// TestImportFileStoreResumeMidRun: an import killed between a run's info
// and the end of its history leaves a run with part of its history; the
// rerun sees that and writes the run again whole.
func TestImportFileStoreResumeMidRun(t *testing.T) {
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	ref := openBolt(t)
	if _, err := importInto(t, context.Background(), root, ref, mlflowimport.Options{}); err != nil {
		t.Fatal(err)
	}
	want, _ := storecopy.Count(context.Background(), ref, storecopy.ReadOptions{})

	parent := man.Runs[0] // the run with the longest history
	dst := openBolt(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := importInto(t, ctx, root, &halfHistory{Store: dst, runID: parent.ID, cancel: cancel}, mlflowimport.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted import: %v", err)
	}
	if _, err := dst.GetRun(context.Background(), parent.ID); err != nil {
		t.Fatalf("the cut-off run is not there: %v", err)
	}
	rep, err := importInto(t, context.Background(), root, dst, mlflowimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported.Runs+rep.SkippedRuns != int64(len(man.Runs)) || rep.Imported.Runs == 0 {
		t.Fatalf("resumed import: %d runs written, %d skipped", rep.Imported.Runs, rep.SkippedRuns)
	}
	got, _ := storecopy.Count(context.Background(), dst, storecopy.ReadOptions{})
	if got != want {
		t.Fatalf("resumed import: %+v, want %+v", got, want)
	}
	importtest.Check(t, dst, man, "")
}

// TestImportFileStoreBadMetrics: a malformed metrics file makes its run a
// problem, skipped whole.
func TestImportFileStoreBadMetrics(t *testing.T) {
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	bad := man.Runs[3]
	f, err := os.OpenFile(filepath.Join(root, bad.ExperimentID, bad.ID, "metrics", "m"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("1700000000099 not-a-number 7\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dst := openBolt(t)
	rep, err := importInto(t, context.Background(), root, dst, mlflowimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].ID != bad.ID || !strings.Contains(rep.Problems[0].Err.Error(), `metric "m"`) {
		t.Fatalf("problems: %v", rep.Problems)
	}
	importtest.Check(t, dst, man, "", bad.ID)
}
