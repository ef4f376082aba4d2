package caddymodule_test

// Operations metrics end to end: an online import and an online backup
// through the admin API of a real Caddy move the import and backup
// families; a PostgreSQL backend exposes its transaction latencies and
// pool state.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
)

func TestMetricsImportAndBackup(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{Admin: true, Backend: caddytest.BackendBolt})
	scrapeNow := func() scrape { return scrapeURL(t, srv.Client(), srv.AdminURL+"/metrics") }
	cfg := filepath.Join(srv.Dir, "caddy.json")
	if err := os.WriteFile(cfg, srv.Config, 0o600); err != nil {
		t.Fatal(err)
	}
	from := filepath.Join(importtest.Dir(t), "mlruns")
	man := importtest.Load(t, "manifest-file.json")

	s0 := scrapeNow()
	for _, kind := range []string{"experiments", "runs", "metric_points", "registered_models"} {
		if _, ok := s0.get("caddy_mlflow_import_records_total", "kind", kind); !ok {
			t.Errorf("import_records_total{kind=%q} is not exposed before any import", kind)
		}
	}
	for _, name := range []string{"caddy_mlflow_import_bytes_total", "caddy_mlflow_backup_bytes_total", "caddy_mlflow_backup_last_success_timestamp_seconds"} {
		if _, ok := s0.get(name); !ok {
			t.Errorf("%s is not exposed", name)
		}
	}

	// A dry run writes nothing and counts nothing.
	var out, errOut bytes.Buffer
	if err := caddymodule.ImportThroughAdmin(context.Background(), cfg, from, true, &out, &errOut); err != nil {
		t.Fatalf("dry run: %v\n%s%s", err, out.String(), errOut.String())
	}
	s1 := scrapeNow()
	if d := s1.value("caddy_mlflow_import_records_total") - s0.value("caddy_mlflow_import_records_total"); d != 0 {
		t.Errorf("a dry run moved import_records_total by %v", d)
	}

	if err := caddymodule.ImportThroughAdmin(context.Background(), cfg, from, false, &out, &errOut); err != nil {
		t.Fatalf("import: %v\n%s%s", err, out.String(), errOut.String())
	}
	s2 := scrapeNow()
	delta := func(a, b scrape, name string, labels ...string) float64 {
		return b.value(name, labels...) - a.value(name, labels...)
	}
	if d := delta(s1, s2, "caddy_mlflow_import_records_total", "kind", "runs"); d != float64(len(man.Runs)) {
		t.Errorf("import_records_total{runs} moved by %v, want %d", d, len(man.Runs))
	}
	if d := delta(s1, s2, "caddy_mlflow_import_records_total", "kind", "metric_points"); d <= 0 {
		t.Errorf("import_records_total{metric_points} moved by %v", d)
	}
	var artBytes int64
	for _, r := range man.Runs {
		for _, a := range r.Artifacts {
			artBytes += a.Size
		}
	}
	if d := delta(s1, s2, "caddy_mlflow_import_bytes_total"); d != float64(artBytes) {
		t.Errorf("import_bytes_total moved by %v, want %d", d, artBytes)
	}

	// An online backup through the admin API.
	started := time.Now()
	body, _ := json.Marshal(map[string]string{"store": srv.BoltPath})
	resp, err := srv.Client().Post(srv.AdminURL+"/mlflow/backup", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(snap) == 0 {
		t.Fatalf("backup: %d, %d bytes, %v", resp.StatusCode, len(snap), err)
	}
	s3 := scrapeNow()
	if d := delta(s2, s3, "caddy_mlflow_backups_total", "result", "ok"); d != 1 {
		t.Errorf("backups_total{ok} moved by %v, want 1", d)
	}
	if d := delta(s2, s3, "caddy_mlflow_backup_bytes_total"); d != float64(len(snap)) {
		t.Errorf("backup_bytes_total moved by %v, want %d", d, len(snap))
	}
	if ts := s3.value("caddy_mlflow_backup_last_success_timestamp_seconds"); ts < float64(started.Unix()) {
		t.Errorf("backup_last_success_timestamp_seconds = %v, want >= %d", ts, started.Unix())
	}
}

func TestMetricsPostgres(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{Admin: true, Backend: caddytest.BackendPostgres})
	scrapeNow := func() scrape { return scrapeURL(t, srv.Client(), srv.AdminURL+"/metrics") }
	before := scrapeNow()
	var exp struct {
		ID string `json:"experiment_id"`
	}
	if code := srv.JSON(t, "POST", "/api/2.0/mlflow/experiments/create", map[string]any{"name": "pg-metrics"}, &exp); code != 200 {
		t.Fatalf("create experiment: %d", code)
	}
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if code := srv.JSON(t, "POST", "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": exp.ID}, &run); code != 200 {
		t.Fatalf("create run: %d", code)
	}
	for i := 0; i < 3; i++ {
		if code := srv.JSON(t, "POST", "/api/2.0/mlflow/runs/log-batch", map[string]any{
			"run_id": run.Run.Info.RunID, "metrics": []map[string]any{{"key": "m", "value": i, "timestamp": 1, "step": i}},
		}, nil); code != 200 {
			t.Fatalf("log-batch: %d", code)
		}
	}
	after := scrapeNow()
	for op, want := range map[string]float64{"create_experiment": 1, "create_run": 1, "log_batch": 3} {
		d := after.value("caddy_mlflow_pg_transaction_duration_seconds_count", "operation", op) -
			before.value("caddy_mlflow_pg_transaction_duration_seconds_count", "operation", op)
		if d != want {
			t.Errorf("pg_transaction_duration_seconds_count{operation=%q} moved by %v, want %v", op, d, want)
		}
	}
	if v, ok := after.get("caddy_mlflow_pg_pool_max_connections"); !ok || v <= 0 {
		t.Errorf("pg_pool_max_connections = %v (exposed %v)", v, ok)
	}
	if d := after.value("caddy_mlflow_pg_pool_acquires_total") - before.value("caddy_mlflow_pg_pool_acquires_total"); d < 5 {
		t.Errorf("pg_pool_acquires_total moved by %v, want >= 5", d)
	}
	for _, state := range []string{"acquired", "idle", "constructing"} {
		if _, ok := after.get("caddy_mlflow_pg_pool_connections", "state", state); !ok {
			t.Errorf("pg_pool_connections{state=%q} is not exposed", state)
		}
	}
}
