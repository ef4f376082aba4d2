package caddymodule_test

import (
	"net/http"
	"path/filepath"
	"strings"
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

// basicAuthTransport adds a Basic Authorization header to every request.
type basicAuthTransport struct {
	auth string
	base http.RoundTripper
}

func (b basicAuthTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", b.auth)
	return b.base.RoundTrip(r)
}

// TestConformanceMLflow3Secure replays the MLflow 3 client's exchanges
// through the secure gateway (TLS, Basic auth, no permission by default)
// as a user who is not an admin, after another user's experiment exists:
// every route the client uses (OTLP export naming the experiment in a
// header, v3 trace routes, batchGet, searches, tags, runs) must be
// authorized for the experiment's creator, and ids shifted by the earlier
// experiment are bound, in the OTLP header too.
func TestConformanceMLflow3Secure(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance replay skipped in -short mode")
	}
	files, err := filepath.Glob("../testdata/conformance-mlflow3/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".jsonl"), func(t *testing.T) {
			e := startSecure(t, "NO_PERMISSIONS")
			setupFixture(t, e)
			client := &http.Client{Transport: basicAuthTransport{basic("bob", bobPassword), e.client.Transport}}
			res := replay.Run(t, e.srv.URL, file, replay.Options{Client: client})
			if res.Failed != 0 || res.Passed == 0 {
				t.Fatalf("%s", res)
			}
		})
	}
}
