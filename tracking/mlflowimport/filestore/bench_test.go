package filestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/filestore"
)

// writeSynthetic writes a file store in MLflow's layout with one
// experiment of runs runs, each with keys metrics of points points and a
// 64 KiB artifact.
func writeSynthetic(b *testing.B, root string, runs, keys, points int) {
	b.Helper()
	exp := filepath.Join(root, "1")
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(os.MkdirAll(exp, 0o755))
	must(os.WriteFile(filepath.Join(exp, "meta.yaml"), []byte("artifact_location: file://"+exp+"\ncreation_time: 1\nexperiment_id: '1'\nlast_update_time: 1\nlifecycle_stage: active\nname: bench\n"), 0o644))
	art := make([]byte, 64<<10)
	for r := range runs {
		id := fmt.Sprintf("%032x", r+1)
		dir := filepath.Join(exp, id)
		for _, d := range []string{"metrics", "params", "tags", "artifacts"} {
			must(os.MkdirAll(filepath.Join(dir, d), 0o755))
		}
		must(os.WriteFile(filepath.Join(dir, "meta.yaml"), []byte(fmt.Sprintf(
			"artifact_uri: file://%s/artifacts\nend_time: 2\nexperiment_id: '1'\nlifecycle_stage: active\nrun_id: %s\nrun_name: r%d\nrun_uuid: %s\nstart_time: 1\nstatus: 3\nuser_id: bench\n", dir, id, r, id)), 0o644))
		must(os.WriteFile(filepath.Join(dir, "params", "p"), []byte("v"), 0o644))
		must(os.WriteFile(filepath.Join(dir, "artifacts", "a.bin"), art, 0o644))
		for k := range keys {
			var sb strings.Builder
			for i := range points {
				fmt.Fprintf(&sb, "%d %g %d\n", 1700000000000+i, float64(i)/3, i)
			}
			must(os.WriteFile(filepath.Join(dir, "metrics", fmt.Sprintf("m%d", k)), []byte(sb.String()), 0o644))
		}
	}
}

// BenchmarkImportFileStore imports 20 runs × 5 metrics × 1,000 points
// (100k points) and 20 × 64 KiB of artifacts into a fresh bbolt store.
func BenchmarkImportFileStore(b *testing.B) {
	const runs, keys, points = 20, 5, 1000
	root := filepath.Join(b.TempDir(), "mlruns")
	writeSynthetic(b, root, runs, keys, points)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst := openBolt(b)
		dst.BulkImport()
		arts := b.TempDir()
		b.StartTimer()
		src, err := filestore.Open(root, "")
		if err != nil {
			b.Fatal(err)
		}
		rep, err := mlflowimport.Import(context.Background(), src, dst, mlflowimport.Options{ArtifactsTo: arts})
		if err != nil || rep.Imported.Runs != runs || len(rep.Problems) != 0 {
			b.Fatalf("%v %+v", err, rep)
		}
	}
	secs := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(runs/secs, "runs/s")
	b.ReportMetric(runs*keys*points/secs, "points/s")
	b.ReportMetric(float64(runs*(64<<10))/(1<<20)/secs, "MB/s")
}
