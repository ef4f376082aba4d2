package storecopy_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// benchSource is a bbolt store of runs × metrics × points per metric.
func benchSource(b *testing.B, runs, metrics, points int) *boltstore.Store {
	b.Helper()
	ctx := context.Background()
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "src.bolt"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	exp, err := s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for r := range runs {
		run, err := s.CreateRun(ctx, tracking.CreateRun{ExperimentID: exp, RunName: fmt.Sprint("run", r), StartTime: int64(r)})
		if err != nil {
			b.Fatal(err)
		}
		batch := tracking.Batch{Params: []tracking.Param{{Key: "p", Value: "v"}}}
		for m := range metrics {
			for p := range points {
				batch.Metrics = append(batch.Metrics, tracking.Metric{Key: fmt.Sprint("m", m), Value: float64(p), Timestamp: int64(p), Step: int64(p)})
			}
		}
		for len(batch.Metrics) > 0 {
			n := min(len(batch.Metrics), 1000)
			if err := s.LogBatch(ctx, run.Info.RunID, tracking.Batch{Params: batch.Params, Metrics: batch.Metrics[:n]}); err != nil {
				b.Fatal(err)
			}
			batch.Metrics = batch.Metrics[n:]
		}
	}
	return s
}

// BenchmarkCopyBoltToBolt reports runs/s and metric points/s of a
// bbolt → bbolt copy (with its verification read).
func BenchmarkCopyBoltToBolt(b *testing.B) {
	const runs, metrics, points = 200, 5, 200
	src := benchSource(b, runs, metrics, points)
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchCopy(b, src, workers, runs, runs*metrics*points) })
	}
}

func benchCopy(b *testing.B, src *boltstore.Store, workers, runs, points int) {
	ctx := context.Background()
	for i := range b.N {
		dst, err := boltstore.Open(filepath.Join(b.TempDir(), fmt.Sprint("dst", i, ".bolt")), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		dst.BulkImport()
		if _, err := storecopy.Copy(ctx, src, dst, storecopy.Options{ReadOptions: storecopy.ReadOptions{Workers: workers}}); err != nil {
			b.Fatal(err)
		}
		_ = dst.Close()
	}
	secs := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(runs)/secs, "runs/s")
	b.ReportMetric(float64(points)/secs, "points/s")
}
