package mlflowimport_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/filestore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

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

func copyFixture(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "mlruns")
	out, err := exec.Command("cp", "-a", filepath.Join(importtest.Dir(t), "mlruns"), dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// fileSource opens the file store at root with histories in chunks of
// chunk points.
func fileSource(t *testing.T, root string, chunk int) *filestore.Source {
	t.Helper()
	src, err := filestore.Open(root, "")
	if err != nil {
		t.Fatal(err)
	}
	src.ChunkSize = chunk
	t.Cleanup(func() { src.Close() })
	return src
}

// chunkLog records the size of every ImportMetricHistory call per run,
// and fails (with a plain error, as a broken connection would) after
// failAfter calls when failAfter > 0.
type chunkLog struct {
	*boltstore.Store
	mu        sync.Mutex
	sizes     map[string][]int
	failAfter int
	calls     int
	failedRun string
}

var errBroken = errors.New("connection to the destination lost")

func (c *chunkLog) ImportMetricHistory(ctx context.Context, runID string, points []tracking.Metric) error {
	c.mu.Lock()
	c.calls++
	if c.failAfter > 0 && c.calls > c.failAfter {
		c.failedRun = runID
		c.mu.Unlock()
		return errBroken
	}
	if c.sizes == nil {
		c.sizes = map[string][]int{}
	}
	c.sizes[runID] = append(c.sizes[runID], len(points))
	c.mu.Unlock()
	return c.Store.ImportMetricHistory(ctx, runID, points)
}

// TestImportStreamsHistory: a run's history arrives and is written in
// chunks no larger than the source's chunk size.
func TestImportStreamsHistory(t *testing.T) {
	man := importtest.Load(t, "manifest-file.json")
	dst := &chunkLog{Store: openBolt(t)}
	rep, err := mlflowimport.Import(context.Background(), fileSource(t, copyFixture(t), 2), dst, mlflowimport.Options{})
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("import: %v %v", err, rep.Problems)
	}
	long := man.Runs[0] // the run with the longest history
	if got := dst.sizes[long.ID]; len(got) <= 2 {
		t.Fatalf("run %s: history in %d chunks (%v), want more than 2", long.ID, len(got), got)
	}
	var total int
	for id, sizes := range dst.sizes {
		for _, n := range sizes {
			if n > 2 || n == 0 {
				t.Fatalf("run %s: a chunk of %d points", id, n)
			}
			total += n
		}
	}
	if int64(total) != rep.Imported.MetricPoints {
		t.Fatalf("%d points in chunks, %d counted", total, rep.Imported.MetricPoints)
	}
	importtest.Check(t, dst.Store, man, "")
}

// TestImportResumeAfterChunks: the destination breaks after some history
// chunks, in the middle of a run; that run stays marked pending, and the
// next import completes the store exactly, then a third writes nothing.
func TestImportResumeAfterChunks(t *testing.T) {
	ctx := context.Background()
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	ref := openBolt(t)
	if _, err := mlflowimport.Import(ctx, fileSource(t, root, 2), ref, mlflowimport.Options{}); err != nil {
		t.Fatal(err)
	}
	want, _ := storecopy.Count(ctx, ref, storecopy.ReadOptions{})

	for _, after := range []int{1, 3, 6} {
		store := openBolt(t)
		dst := &chunkLog{Store: store, failAfter: after}
		_, err := mlflowimport.Import(ctx, fileSource(t, root, 2), dst, mlflowimport.Options{})
		if !errors.Is(err, errBroken) {
			t.Fatalf("broken import: %v", err)
		}
		if pending, err := store.RunImportPending(ctx, dst.failedRun); err != nil || !pending {
			t.Fatalf("the cut-off run %s: pending %v %v", dst.failedRun, pending, err)
		}
		rep, err := mlflowimport.Import(ctx, fileSource(t, root, 2), store, mlflowimport.Options{})
		if err != nil || len(rep.Problems) != 0 {
			t.Fatalf("resumed import: %v %v", err, rep.Problems)
		}
		if rep.Imported.Runs == 0 || rep.Imported.Runs+rep.SkippedRuns != int64(len(man.Runs)) {
			t.Fatalf("resumed import: %d runs written, %d skipped", rep.Imported.Runs, rep.SkippedRuns)
		}
		got, _ := storecopy.Count(ctx, store, storecopy.ReadOptions{})
		if got != want {
			t.Fatalf("after %d chunks: resumed store %+v, want %+v", after, got, want)
		}
		importtest.Check(t, store, man, "")
		for _, r := range man.Runs {
			if pending, err := store.RunImportPending(ctx, r.ID); err != nil || pending {
				t.Fatalf("run %s still pending: %v", r.ID, err)
			}
		}
		rep, err = mlflowimport.Import(ctx, fileSource(t, root, 2), store, mlflowimport.Options{})
		if err != nil || rep.Imported != (storecopy.Counts{}) || rep.SkippedRuns != int64(len(man.Runs)) {
			t.Fatalf("third import: %v %+v", err, rep)
		}
	}
}

// TestImportSourceChanged: a run that gained data in the source since it
// was imported is not complete any more, and is written again.
func TestImportSourceChanged(t *testing.T) {
	ctx := context.Background()
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	dst := openBolt(t)
	if _, err := mlflowimport.Import(ctx, fileSource(t, root, 0), dst, mlflowimport.Options{}); err != nil {
		t.Fatal(err)
	}
	r := man.Runs[3]
	f, err := os.OpenFile(filepath.Join(root, r.ExperimentID, r.ID, "metrics", "m"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("1800000000000 42 99\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rep, err := mlflowimport.Import(ctx, fileSource(t, root, 0), dst, mlflowimport.Options{})
	if err != nil || rep.Imported.Runs != 1 || rep.SkippedRuns != int64(len(man.Runs)-1) {
		t.Fatalf("import after the change: %v %+v", err, rep)
	}
	got, err := dst.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range got.Data.Metrics {
		if m.Key == "m" && (m.Value != 42 || m.Step != 99) {
			t.Fatalf("latest m: %+v", m)
		}
	}
}

// TestImportArtifactHashSkip: an artifact already in the destination
// with the same size and content is skipped; one of the same size with
// other content is copied again.
func TestImportArtifactHashSkip(t *testing.T) {
	ctx := context.Background()
	man := importtest.Load(t, "manifest-file.json")
	root := copyFixture(t)
	dst := openBolt(t)
	arts := t.TempDir()
	rep, err := mlflowimport.Import(ctx, fileSource(t, root, 0), dst, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil || rep.ArtifactFiles != 4 {
		t.Fatalf("import: %v %+v", err, rep)
	}
	var target string
	var size int64
	for _, r := range man.Runs {
		for rel, a := range r.Artifacts {
			target = filepath.Join(arts, r.ExperimentID, r.ID, "artifacts", filepath.FromSlash(rel))
			size = a.Size
		}
	}
	junk := make([]byte, size)
	for i := range junk {
		junk[i] = '#'
	}
	if err := os.WriteFile(target, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = mlflowimport.Import(ctx, fileSource(t, root, 0), dst, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil || rep.ArtifactFiles != 1 || rep.ArtifactsSkipped != 3 || rep.ArtifactBytes != size || rep.Imported.Runs != 0 {
		t.Fatalf("second import: %v %+v", err, rep)
	}
	importtest.Check(t, dst, man, arts)
	entries, _ := os.ReadDir(filepath.Dir(target))
	for _, e := range entries {
		if filepath.Ext(e.Name()) != "" && e.Name()[0] == '.' {
			t.Fatalf("a temporary file is left: %s", e.Name())
		}
	}
}

// vanishing is a source whose run artifact trees list a file that is
// gone when it is opened.
type vanishing struct {
	mlflowimport.Source
	runID string
}

type vanishingTree struct{ mlflowimport.ArtifactTree }

func (v vanishingTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

func (v vanishing) Runs(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.Run) error) error {
	return v.Source.Runs(ctx, exp, report, func(r *mlflowimport.Run) error {
		if r.Run.Info.RunID == v.runID && r.Artifacts != nil {
			r.Artifacts = vanishingTree{r.Artifacts}
		}
		return fn(r)
	})
}

// TestImportMissingArtifact: a run whose artifact file cannot be read is
// a problem and is not written at all; the others are.
func TestImportMissingArtifact(t *testing.T) {
	ctx := context.Background()
	man := importtest.Load(t, "manifest-file.json")
	var bad string
	for _, r := range man.Runs {
		if len(r.Artifacts) > 0 {
			bad = r.ID
		}
	}
	dst := openBolt(t)
	rep, err := mlflowimport.Import(ctx, vanishing{fileSource(t, copyFixture(t), 0), bad}, dst, mlflowimport.Options{ArtifactsTo: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != "run" || rep.Problems[0].ID != bad || !errors.Is(rep.Problems[0].Err, fs.ErrNotExist) {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if _, err := dst.GetRun(ctx, bad); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		t.Fatalf("the run with the missing artifact was written: %v", err)
	}
	if rep.Imported.Runs != int64(len(man.Runs)-1) {
		t.Fatalf("imported %d runs", rep.Imported.Runs)
	}
}

// TestImportStatus: the Status callback sees artifact bytes grow and the
// source's estimate.
func TestImportStatus(t *testing.T) {
	var last mlflowimport.Status
	n := 0
	rep, err := mlflowimport.Import(context.Background(), fileSource(t, copyFixture(t), 0), openBolt(t),
		mlflowimport.Options{ArtifactsTo: t.TempDir(), Status: func(s mlflowimport.Status) { last = s; n++ }})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || last.ArtifactBytes != rep.ArtifactBytes || last.Counts.Runs != rep.Imported.Runs {
		t.Fatalf("last status %+v after %d calls; report %+v", last, n, rep)
	}
	if last.Estimate.Runs != rep.Imported.Runs || last.Estimate.ArtifactBytes != rep.ArtifactBytes {
		t.Fatalf("estimate %+v, imported %d runs and %d bytes", last.Estimate, rep.Imported.Runs, rep.ArtifactBytes)
	}
}
