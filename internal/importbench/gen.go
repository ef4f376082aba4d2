// Package importbench writes synthetic MLflow file stores, byte for byte
// in the layout MLflow's FileStore writes (mlflow/store/tracking/
// file_store.py: experiment and run meta.yaml, metrics/params/tags
// folders, artifacts/), for measuring `caddy mlflow import`. Its
// benchmark runs only when asked (see bench_test.go).
package importbench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Config shapes a synthetic store.
type Config struct {
	// Runs is the number of runs (in one experiment).
	Runs int
	// MetricKeys and PointsPerKey make each run's history.
	MetricKeys, PointsPerKey int
	// SmallFiles files of SmallSize bytes go into every run's artifacts;
	// LargeFiles files of LargeSize bytes into the first runs'.
	SmallFiles int
	SmallSize  int64
	LargeFiles int
	LargeSize  int64
}

// Default is the benchmark's store: 1,000 runs, 100,000 metric points,
// 1 GiB of artifacts (4 files of 200 MiB, 8,000 of 29,360 bytes).
var Default = Config{Runs: 1000, MetricKeys: 2, PointsPerKey: 50, SmallFiles: 8, SmallSize: 29360, LargeFiles: 4, LargeSize: 200 << 20}

// Totals are what a generated store holds.
type Totals struct {
	Runs, MetricPoints, ArtifactFiles, ArtifactBytes int64
}

// RunID is the id of run i: 32 hex digits, like uuid4().hex.
func RunID(i int) string { return fmt.Sprintf("%032x", uint64(i)+0x5eed00000000) }

// Generate writes the store to root (created; it must not exist) and
// returns what it holds.
func Generate(root string, cfg Config) (Totals, error) {
	var tot Totals
	if _, err := os.Stat(root); err == nil {
		return tot, fmt.Errorf("%s exists", root)
	}
	const expID = "491021735648726310"
	exp := filepath.Join(root, expID)
	rng := rand.New(rand.NewChaCha8([32]byte{1, 2, 3}))
	write := func(path string, b []byte) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(path, b, 0o644)
	}
	// FileStore._create_experiment_with_id writes dict(experiment)
	// without tags, yaml.safe_dump sorting the keys; the Default
	// experiment comes with every store.
	expMeta := func(id, name, dir string) []byte {
		return []byte(fmt.Sprintf("artifact_location: file://%s\ncreation_time: 1700000000000\nexperiment_id: '%s'\n"+
			"last_update_time: 1700000000000\nlifecycle_stage: active\nname: %s\n", dir, id, name))
	}
	if err := write(filepath.Join(root, "0", "meta.yaml"), expMeta("0", "Default", filepath.Join(root, "0"))); err != nil {
		return tot, err
	}
	if err := os.MkdirAll(filepath.Join(root, ".trash"), 0o755); err != nil {
		return tot, err
	}
	if err := write(filepath.Join(exp, "meta.yaml"), expMeta(expID, "import-bench", exp)); err != nil {
		return tot, err
	}
	if err := write(filepath.Join(exp, "tags", "mlflow.note.content"), []byte("synthetic")); err != nil {
		return tot, err
	}
	small := make([]byte, cfg.SmallSize)
	large := make([]byte, 4<<20)
	for i := range cfg.Runs {
		id := RunID(i)
		dir := filepath.Join(exp, id)
		start := int64(1700000000000 + i*1000)
		// _make_persisted_run_info_dict: status as its number (3 is
		// FINISHED), the legacy source fields, tags: [].
		meta := fmt.Sprintf("artifact_uri: file://%s/artifacts\nend_time: %d\nentry_point_name: ''\nexperiment_id: '%s'\n"+
			"lifecycle_stage: active\nrun_id: %s\nrun_name: bench-%d\nrun_uuid: %s\nsource_name: ''\nsource_type: 4\n"+
			"source_version: ''\nstart_time: %d\nstatus: 3\ntags: []\nuser_id: bench\n", dir, start+900, expID, id, i, id, start)
		if err := write(filepath.Join(dir, "meta.yaml"), []byte(meta)); err != nil {
			return tot, err
		}
		for k, v := range map[string]string{"mlflow.runName": "bench-" + strconv.Itoa(i), "mlflow.user": "bench",
			"mlflow.source.name": "bench.py", "mlflow.source.type": "LOCAL"} {
			if err := write(filepath.Join(dir, "tags", k), []byte(v)); err != nil {
				return tot, err
			}
		}
		for k, v := range map[string]string{"lr": "0.001", "batch_size": "64", "seed": strconv.Itoa(i)} {
			if err := write(filepath.Join(dir, "params", k), []byte(v)); err != nil {
				return tot, err
			}
		}
		// _log_run_metric: "timestamp value step" lines, the value as
		// Python's str(float).
		for k := range cfg.MetricKeys {
			var b strings.Builder
			for p := range cfg.PointsPerKey {
				fmt.Fprintf(&b, "%d %s %d\n", start+int64(p), strconv.FormatFloat(rng.Float64(), 'g', -1, 64), p)
			}
			if err := write(filepath.Join(dir, "metrics", fmt.Sprintf("metric_%d", k)), []byte(b.String())); err != nil {
				return tot, err
			}
			tot.MetricPoints += int64(cfg.PointsPerKey)
		}
		for f := range cfg.SmallFiles {
			fillRandom(rng, small)
			if err := write(filepath.Join(dir, "artifacts", "eval", fmt.Sprintf("sample_%d.json", f)), small); err != nil {
				return tot, err
			}
			tot.ArtifactFiles++
			tot.ArtifactBytes += cfg.SmallSize
		}
		if i < cfg.LargeFiles {
			n, err := writeLarge(rng, filepath.Join(dir, "artifacts", "model", "model.bin"), cfg.LargeSize, large)
			if err != nil {
				return tot, err
			}
			tot.ArtifactFiles++
			tot.ArtifactBytes += n
		}
		tot.Runs++
	}
	return tot, nil
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

func writeLarge(rng *rand.Rand, path string, size int64, buf []byte) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	var n int64
	for n < size {
		chunk := buf[:min(int64(len(buf)), size-n)]
		fillRandom(rng, chunk)
		m, err := f.Write(chunk)
		n += int64(m)
		if err != nil {
			f.Close()
			return n, err
		}
	}
	return n, f.Close()
}
