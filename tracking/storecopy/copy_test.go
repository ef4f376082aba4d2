package storecopy_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy/storecopytest"
)

func openBolt(t *testing.T, name string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), name), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// small pages and chunks so that every kind crosses page boundaries.
var testRead = storecopy.ReadOptions{PageSize: 3, HistoryChunk: 100}

// checkSame compares two stores field by field over what Fill created.
func checkSame(t *testing.T, a, b tracking.Store, f *storecopytest.Fixture) {
	t.Helper()
	da, db := storecopytest.Dump(t, a, f), storecopytest.Dump(t, b, f)
	if d := storecopytest.Diff(da, db); len(d) > 0 {
		t.Fatalf("%d records differ:\n%s", len(d), strings.Join(d, "\n"))
	}
	if h := da["history "+f.RunIDs[0]+" "+f.HistoryKey]; strings.Count(h, "\n")+1 != f.HistoryLen {
		t.Fatalf("history has %d points, want %d", strings.Count(h, "\n")+1, f.HistoryLen)
	}
}

// checkSequences checks that new ids and version numbers continue after
// the copied ones.
func checkSequences(t *testing.T, stores ...tracking.Store) {
	t.Helper()
	ctx := context.Background()
	for _, s := range stores {
		id, err := s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "after copy"})
		if err != nil {
			t.Fatal(err)
		}
		if id != "4" {
			t.Errorf("new experiment id %s, want 4", id)
		}
		mv, err := s.CreateModelVersion(ctx, tracking.CreateModelVersion{Name: "m1", Source: "s3://x"})
		if err != nil {
			t.Fatal(err)
		}
		if mv.Version != "5" {
			t.Errorf("new version of m1 is %s, want 5 (4 was deleted)", mv.Version)
		}
	}
}

func TestCopyBoltToBolt(t *testing.T) {
	ctx := context.Background()
	src, dst := openBolt(t, "src.bolt"), openBolt(t, "dst.bolt")
	f := storecopytest.Fill(t, src, 1050)
	dst.BulkImport()
	var phases []string
	var mu sync.Mutex
	rep, err := storecopy.Copy(ctx, src, dst, storecopy.Options{ReadOptions: testRead, Progress: func(phase string, _ storecopy.Counts) {
		mu.Lock()
		defer mu.Unlock()
		if len(phases) == 0 || phases[len(phases)-1] != phase {
			phases = append(phases, phase)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, src, dst, f)
	if dst.DB().NoSync {
		t.Error("FinishImport left fsync off")
	}
	want := []string{"experiments", "logged models", "runs", "registry", "traces", "verify"}
	if strings.Join(phases, ",") != strings.Join(want, ",") {
		t.Errorf("phases %v, want %v", phases, want)
	}
	c := rep.Source
	if c != rep.Destination || !rep.WasEmpty {
		t.Errorf("report %+v", rep)
	}
	// What Fill made, counted: 4 experiments, 10 runs (2 deleted), 3 model
	// versions + 1 prompt version, a 1050-point history and the rest.
	if c.Experiments != 4 || c.Runs != 10 || c.ModelVersions != 4 || c.RegisteredModels != 3 || c.Aliases != 2 ||
		c.LoggedModels != 2 || c.LoggedModelMetrics != 2 || c.Traces != 3 || c.Assessments != 2 ||
		c.DatasetInputs != 3 || c.ModelInputs != 1 || c.ModelOutputs != 1 || c.ExperimentTags != 2 {
		t.Errorf("counts %+v", c)
	}
	// loss: 1050 points of main + 5 sweep runs; acc 2; nan 1; inf 2; neg 1.
	if c.MetricPoints != 1050+5+2+1+2+1 {
		t.Errorf("metric points %d", c.MetricPoints)
	}
	checkSequences(t, src, dst)
}

func TestCopyRefusesNonEmptyDestination(t *testing.T) {
	ctx := context.Background()
	src, dst := openBolt(t, "src.bolt"), openBolt(t, "dst.bolt")
	f := storecopytest.Fill(t, src, 10)

	// A destination a server has started on (the Default experiment only)
	// counts as empty.
	if err := dst.EnsureDefaultExperiment(ctx, "file:///elsewhere"); err != nil {
		t.Fatal(err)
	}
	if empty, err := dst.IsEmpty(ctx); err != nil || !empty {
		t.Fatalf("IsEmpty with only Default = %v, %v", empty, err)
	}
	if _, err := dst.CreateExperiment(ctx, tracking.CreateExperiment{Name: "precious"}); err != nil {
		t.Fatal(err)
	}
	if _, err := storecopy.Copy(ctx, src, dst, storecopy.Options{}); !errors.Is(err, storecopy.ErrNotEmpty) {
		t.Fatalf("copy into a non-empty store: %v, want ErrNotEmpty", err)
	}
	if _, err := dst.GetExperimentByName(ctx, "alpha"); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		t.Fatalf("the refused copy wrote: %v", err)
	}
	// The experiment "precious" has id 1, as "alpha" in the source: with
	// force the source's records replace it.
	rep, err := storecopy.Copy(ctx, src, dst, storecopy.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.WasEmpty {
		t.Error("report says the destination was empty")
	}
	checkSame(t, src, dst, f)
	if _, err := dst.GetExperimentByName(ctx, "precious"); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		t.Fatalf("experiment 1 was not replaced: %v", err)
	}
	// Copying again with force converges: nothing doubles.
	rep2, err := storecopy.Copy(ctx, src, dst, storecopy.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Destination != rep2.Source {
		t.Fatalf("second forced copy: source %+v, destination %+v", rep2.Source, rep2.Destination)
	}
}

// lossy drops every other metric history chunk: Copy must notice.
type lossy struct {
	storecopy.Destination
	n atomic.Int64
}

func (l *lossy) ImportMetricHistory(ctx context.Context, runID string, points []tracking.Metric) error {
	if l.n.Add(1)%2 == 0 {
		return nil
	}
	return l.Destination.ImportMetricHistory(ctx, runID, points)
}

func TestCopyVerificationMismatch(t *testing.T) {
	ctx := context.Background()
	src, dst := openBolt(t, "src.bolt"), openBolt(t, "dst.bolt")
	storecopytest.Fill(t, src, 500)
	rep, err := storecopy.Copy(ctx, src, &lossy{Destination: dst}, storecopy.Options{ReadOptions: testRead})
	if !errors.Is(err, storecopy.ErrMismatch) {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	if len(rep.Mismatches) != 1 || rep.Mismatches[0].Kind != "metric_points" || !strings.Contains(err.Error(), "metric_points: source") {
		t.Fatalf("mismatches %v (%v)", rep.Mismatches, err)
	}
}
