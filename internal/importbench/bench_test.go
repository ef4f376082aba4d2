package importbench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/importcmd"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/filestore"
)

// TestGenerateSmall: a small generated store reads back through the
// file store source with the counts it was made with.
func TestGenerateSmall(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mlruns")
	cfg := Config{Runs: 3, MetricKeys: 2, PointsPerKey: 7, SmallFiles: 2, SmallSize: 100, LargeFiles: 1, LargeSize: 5 << 20}
	tot, err := Generate(root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rep, err := importcmd.Run(context.Background(), importcmd.Config{From: root, To: filepath.Join(dir, "mlflow.bolt"), ArtifactsTo: filepath.Join(dir, "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Imported.Runs != tot.Runs || rep.Imported.MetricPoints != tot.MetricPoints ||
		rep.ArtifactFiles != tot.ArtifactFiles || rep.ArtifactBytes != tot.ArtifactBytes {
		t.Fatalf("generated %+v, imported %+v (%d files, %d bytes), problems %v", tot, rep.Imported, rep.ArtifactFiles, rep.ArtifactBytes, rep.Problems)
	}
	src, _ := filestore.Open(root, "")
	est, err := src.Estimate(context.Background(), nil)
	if err != nil || est.Runs != tot.Runs || est.ArtifactBytes != tot.ArtifactBytes {
		t.Fatalf("estimate %+v %v, generated %+v", est, err, tot)
	}
}

// BenchmarkImportFileStore imports the Default synthetic store (1,000
// runs, 100,000 metric points, 1 GiB of artifacts) into a fresh bbolt
// store through `caddy mlflow import`'s code, and reports runs/s, metric
// points/s and artifact MB/s. It writes about 2 GiB, so it runs only
// with MLFLOW_IMPORT_BENCH_DIR set to a scratch directory (removed
// afterwards):
//
//	MLFLOW_IMPORT_BENCH_DIR=/tmp/ib go test -run '^$' -bench ImportFileStore -benchtime 1x ./internal/importbench
func BenchmarkImportFileStore(b *testing.B) {
	base := os.Getenv("MLFLOW_IMPORT_BENCH_DIR")
	if base == "" {
		b.Skip("set MLFLOW_IMPORT_BENCH_DIR to a scratch directory to run the import benchmark")
	}
	root := filepath.Join(base, "mlruns")
	b.Cleanup(func() { os.RemoveAll(base) })
	t0 := time.Now()
	tot, err := Generate(root, Default)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %+v in %s", tot, time.Since(t0).Round(time.Millisecond))
	b.ResetTimer()
	var elapsed, again time.Duration
	for i := range b.N {
		dst := filepath.Join(base, "dst", time.Now().Format("150405.000000"))
		cfg := importcmd.Config{From: root, To: filepath.Join(dst, "mlflow.bolt"), ArtifactsTo: filepath.Join(dst, "artifacts")}
		start := time.Now()
		rep, err := importcmd.Run(context.Background(), cfg)
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Imported.Runs != tot.Runs || rep.Imported.MetricPoints != tot.MetricPoints || rep.ArtifactBytes != tot.ArtifactBytes {
			b.Fatalf("imported %+v, %d bytes; generated %+v", rep.Imported, rep.ArtifactBytes, tot)
		}
		if i == 0 {
			// The second import finds everything there (every artifact
			// compared by content).
			start = time.Now()
			rep, err = importcmd.Run(context.Background(), cfg)
			again = time.Since(start)
			if err != nil || rep.Imported.Runs != 0 || rep.ArtifactFiles != 0 {
				b.Fatalf("second import: %v %+v", err, rep)
			}
		}
		os.RemoveAll(dst)
	}
	secs := elapsed.Seconds() / float64(b.N)
	b.ReportMetric(float64(tot.Runs)/secs, "runs/s")
	b.ReportMetric(float64(tot.MetricPoints)/secs, "points/s")
	b.ReportMetric(float64(tot.ArtifactBytes)/1e6/secs, "artifactMB/s")
	b.ReportMetric(again.Seconds(), "s-reimport")
}
