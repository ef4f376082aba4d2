package caddymodule_test

import (
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api/replay"
)

// TestConformanceThroughCaddy replays every recorded MLflow client↔server
// transcript (testdata/conformance) against a real in-process Caddy with the
// mlflow handler: a fresh server, bbolt file and artifact directory for each
// transcript, real HTTP over loopback, raw request paths.
func TestConformanceThroughCaddy(t *testing.T) {
	conformanceThroughCaddy(t, caddytest.BackendBolt, "../testdata/conformance")
}

// TestConformanceThroughCaddyPostgres is TestConformanceThroughCaddy with
// the tracking data in PostgreSQL: a fresh database for each transcript
// (skipped without MLFLOW_TEST_POSTGRES_URI, failed under CI=true).
func TestConformanceThroughCaddyPostgres(t *testing.T) {
	conformanceThroughCaddy(t, caddytest.BackendPostgres, "../testdata/conformance")
}

// TestConformanceMLflow3ThroughCaddy replays the exchanges recorded from
// MLflow 3's Python client (testdata/conformance-mlflow3: OTLP span
// export, v3 trace routes) through Caddy, on bbolt and on PostgreSQL.
func TestConformanceMLflow3ThroughCaddy(t *testing.T) {
	for _, backend := range []string{caddytest.BackendBolt, caddytest.BackendPostgres} {
		t.Run(backend, func(t *testing.T) {
			conformanceThroughCaddy(t, backend, "../testdata/conformance-mlflow3")
		})
	}
}

func conformanceThroughCaddy(t *testing.T, backend, dir string) {
	if testing.Short() {
		t.Skip("conformance replay skipped in -short mode")
	}
	results := replay.RunDir(t, dir, func(t testing.TB) string {
		return caddytest.Start(t, caddytest.Options{Backend: backend}).URL
	}, replay.OutOfScope, replay.ProjectOptions)
	passed, failed := 0, 0
	for _, r := range results {
		t.Log(r.String())
		passed += r.Passed
		failed += r.Failed
	}
	t.Logf("conformance through Caddy (%s): %d passed, %d failed", backend, passed, failed)
}
