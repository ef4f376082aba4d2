package restsource_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/restsource"
)

// BenchmarkImportFromCaddy imports a modest source (2×50 active runs and
// 2 deleted ones, 1,000 metric points each, 1 MiB of artifacts per run)
// from a live caddy-mlflow over TLS with a client certificate and a
// bearer token, into a fresh bbolt store and artifact directory per
// iteration, and reports runs/s, metric points/s and artifact MB/s.
func BenchmarkImportFromCaddy(b *testing.B) {
	src := startSource(b)
	ctx := context.Background()
	seeded := seed(b, src.admin, 50, 1000, 16)
	blob := bytes.Repeat([]byte("caddy-mlflow-bench-0123456789abc"), (1<<20)/32)
	must(b, src.admin.EachExperiment(ctx, mlflowclient.AllViews, func(e mlflowclient.Experiment) error {
		return src.admin.EachRun(ctx, []string{e.ExperimentID}, mlflowclient.AllViews, func(r mlflowclient.Run) error {
			root, _ := mlflowclient.ProxiedPath(r.Info.ArtifactURI)
			seeded.artifactBytes += int64(len(blob))
			return src.admin.UploadProxied(ctx, root+"/blob.bin", bytes.NewReader(blob), int64(len(blob)))
		})
	}))
	dir := b.TempDir()
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c, err := mlflowclient.NewFromEnv(src.srv.URL, envOf(src.env(map[string]string{mlflowclient.EnvToken: src.token})))
		must(b, err)
		s := restsource.New(c)
		dst, err := boltstore.Open(filepath.Join(dir, fmt.Sprintf("%d.bolt", i)), boltstore.Options{})
		must(b, err)
		b.StartTimer()
		start := time.Now()
		rep, err := mlflowimport.Import(ctx, s, dst, mlflowimport.Options{ArtifactsTo: filepath.Join(dir, fmt.Sprint(i))})
		elapsed += time.Since(start)
		b.StopTimer()
		must(b, err)
		if len(rep.Problems) > 0 || rep.Imported.Runs != seeded.runs || rep.Imported.MetricPoints != seeded.points {
			b.Fatalf("import: %d runs (want %d), %d points (want %d), problems %v",
				rep.Imported.Runs, seeded.runs, rep.Imported.MetricPoints, seeded.points, rep.Problems)
		}
		must(b, dst.Close())
		s.Close()
		b.StartTimer()
	}
	b.StopTimer()
	sec := elapsed.Seconds()
	n := float64(b.N)
	b.ReportMetric(float64(seeded.runs)*n/sec, "runs/s")
	b.ReportMetric(float64(seeded.points)*n/sec, "points/s")
	b.ReportMetric(float64(seeded.artifactBytes)*n/sec/1e6, "MB/s")
}
