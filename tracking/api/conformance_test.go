package api

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/api/replay"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

// newTestServer starts a fresh server (empty bbolt store, empty artifact
// directory, proxied artifacts) behind httptest.
func newTestServer(t testing.TB, mutate ...func(*Options)) (*httptest.Server, *Server) {
	t.Helper()
	dir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(dir, "mlflow.bolt"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	arts, err := artifact.NewLocal(filepath.Join(dir, "mlartifacts"))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Store:               st,
		Artifacts:           arts,
		ServeArtifacts:      true,
		DefaultArtifactRoot: "mlflow-artifacts:/",
		MLflowVersion:       "2.22.1",
		BuildVersion:        "test",
	}
	for _, m := range mutate {
		m(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, srv
}

// TestConformance replays the public MLflow 2.22.1 transcripts (copied
// into the repository's testdata/conformance) against a fresh server each.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance replay skipped in -short mode")
	}
	results := replay.RunDir(t, "../../testdata/conformance", func(t testing.TB) string {
		ts, _ := newTestServer(t)
		return ts.URL
	}, replay.OutOfScope, replay.ProjectOptions)
	var sum []string
	for _, r := range results {
		sum = append(sum, r.String())
	}
	t.Log("conformance summary:\n" + strings.Join(sum, "\n"))
}
