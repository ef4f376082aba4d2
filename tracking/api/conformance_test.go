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

const registryIssue = "model registry and traces are out of scope here (issue 5)"

// conformanceDeviations are the exchanges this server answers differently
// from MLflow 2.22.1 on purpose, per transcript.
var conformanceDeviations = map[string]replay.Options{
	"experiments_crud.jsonl": {
		Skip: map[int]string{
			37: "delete-experiment-tag is implemented here (MLflow 2.22.1 had no such route and answered 404); " +
				"sending it would delete the tag the final search expects",
		},
	},
	"params_metrics.jsonl": {
		StatusOnly: map[int]string{
			50: "run data lacks metric lit_nan: its bare-NaN log-metric (#47, a quirk) is refused with a 400 here",
			64: "history of lit_nan is empty: its bare-NaN log-metric (#47, a quirk) is refused with a 400 here",
		},
	},
	"misc_http.jsonl": {
		Skip: map[int]string{
			26: registryIssue, 27: registryIssue, 28: registryIssue, 29: registryIssue,
			30: registryIssue, 31: registryIssue, 32: registryIssue,
		},
	},
	"log_model.jsonl": {
		Skip: map[int]string{22: registryIssue, 24: registryIssue, 25: registryIssue, 26: registryIssue},
	},
}

// TestConformance replays the public MLflow 2.22.1 transcripts (copied
// into the repository's testdata/conformance) against a fresh server each.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance replay skipped in -short mode")
	}
	skip := map[string]string{"traces.jsonl": registryIssue}
	files, _ := filepath.Glob("../../testdata/conformance/registry_*.jsonl")
	for _, f := range files {
		skip[filepath.Base(f)] = registryIssue
	}
	results := replay.RunDir(t, "../../testdata/conformance", func(t testing.TB) string {
		ts, _ := newTestServer(t)
		return ts.URL
	}, skip, func(name string) replay.Options {
		return conformanceDeviations[name]
	})
	var sum []string
	for _, r := range results {
		sum = append(sum, r.String())
	}
	t.Log("conformance summary:\n" + strings.Join(sum, "\n"))
}
