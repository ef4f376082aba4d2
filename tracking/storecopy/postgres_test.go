package storecopy_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy/storecopytest"
)

func openPostgres(t *testing.T) *pgstore.Store {
	t.Helper()
	uri := pgtest.NewDatabase(t)
	s, err := pgstore.Open(context.Background(), uri, pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestCopyRoundTripPostgres copies a bbolt store holding every record
// kind into PostgreSQL and back into a new bbolt file: the PostgreSQL
// copy and the final copy both equal the source field by field, and new
// experiment ids and version numbers continue after the copied ones.
func TestCopyRoundTripPostgres(t *testing.T) {
	ctx := context.Background()
	src, pg, back := openBolt(t, "src.bolt"), openPostgres(t), openBolt(t, "back.bolt")
	f := storecopytest.Fill(t, src, 1050)
	if err := pg.EnsureDefaultExperiment(ctx, "file:///pg"); err != nil { // as a server started on it would
		t.Fatal(err)
	}
	rep, err := storecopy.Copy(ctx, src, pg, storecopy.Options{ReadOptions: testRead})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.WasEmpty || rep.Source != rep.Destination || rep.Source.MetricPoints < 1050 {
		t.Fatalf("bbolt → PostgreSQL report %+v", rep)
	}
	checkSame(t, src, pg, f)
	rep2, err := storecopy.Copy(ctx, pg, back, storecopy.Options{ReadOptions: testRead})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Source != rep.Source {
		t.Fatalf("PostgreSQL → bbolt counts %+v, want %+v", rep2.Source, rep.Source)
	}
	checkSame(t, src, back, f)
	checkSequences(t, src, pg, back)
}

// TestCopyIntoNonEmptyPostgres checks the refusal and --force on PostgreSQL.
func TestCopyIntoNonEmptyPostgres(t *testing.T) {
	ctx := context.Background()
	src, pg := openBolt(t, "src.bolt"), openPostgres(t)
	f := storecopytest.Fill(t, src, 10)
	if empty, err := pg.IsEmpty(ctx); err != nil || !empty {
		t.Fatalf("IsEmpty of a new database = %v, %v", empty, err)
	}
	if _, err := pg.CreateExperiment(ctx, tracking.CreateExperiment{Name: "precious"}); err != nil {
		t.Fatal(err)
	}
	if _, err := storecopy.Copy(ctx, src, pg, storecopy.Options{}); !errors.Is(err, storecopy.ErrNotEmpty) {
		t.Fatalf("copy into a non-empty database: %v", err)
	}
	if _, err := storecopy.Copy(ctx, src, pg, storecopy.Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	checkSame(t, src, pg, f)
	rep, err := storecopy.Copy(ctx, src, pg, storecopy.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != rep.Destination {
		t.Fatalf("second forced copy: source %+v, destination %+v", rep.Source, rep.Destination)
	}
}

// BenchmarkCopyBoltToPostgres reports runs/s and metric points/s of a
// bbolt → PostgreSQL copy (with its verification read).
func BenchmarkCopyBoltToPostgres(b *testing.B) {
	const runs, metrics, points = 200, 5, 200
	src := benchSource(b, runs, metrics, points)
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				dst, err := pgstore.Open(ctx, pgtest.NewDatabase(b), pgdb.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := storecopy.Copy(ctx, src, dst, storecopy.Options{ReadOptions: storecopy.ReadOptions{Workers: workers}}); err != nil {
					b.Fatal(err)
				}
				_ = dst.Close()
			}
			secs := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(runs/secs, "runs/s")
			b.ReportMetric(runs*metrics*points/secs, "points/s")
		})
	}
}

// TestImportDuplicatePoints: a history chunk holding a point twice (NaN
// twice too) stores it once, on both backends (PostgreSQL's COPY path
// falls back to an insert that skips duplicates).
func TestImportDuplicatePoints(t *testing.T) {
	ctx := context.Background()
	stores := map[string]storecopy.Destination{"bbolt": openBolt(t, "dup.bolt")}
	if pgtest.Available() {
		stores["postgres"] = openPostgres(t)
	}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			if err := s.ImportExperiment(ctx, &tracking.Experiment{ExperimentID: "7", Name: "e", LifecycleStage: tracking.LifecycleActive}); err != nil {
				t.Fatal(err)
			}
			const run = "0123456789abcdef0123456789abcdef"
			if err := s.ImportRun(ctx, &tracking.Run{Info: tracking.RunInfo{RunID: run, ExperimentID: "7", Status: tracking.StatusRunning,
				LifecycleStage: tracking.LifecycleActive}, Data: tracking.RunData{Metrics: []tracking.Metric{{Key: "m", Value: 1, Timestamp: 2, Step: 3}}}}); err != nil {
				t.Fatal(err)
			}
			p := tracking.Metric{Key: "m", Value: 1, Timestamp: 2, Step: 3}
			nan := tracking.Metric{Key: "m", Value: math.NaN(), Timestamp: 2, Step: 3}
			for range 2 { // the second call: every point already there
				if err := s.ImportMetricHistory(ctx, run, []tracking.Metric{p, nan, p, nan}); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			if err := s.MetricHistory(ctx, run, "m", 10, func(ms []tracking.Metric) error {
				for _, m := range ms {
					b, _ := m.MarshalJSON()
					got = append(got, string(b))
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("history %v, want the two distinct points", got)
			}
			// A history for a run that was not imported is refused.
			if err := s.ImportMetricHistory(ctx, "ffffffffffffffffffffffffffffffff", []tracking.Metric{p}); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				t.Fatalf("history of a missing run: %v", err)
			}
		})
	}
}
