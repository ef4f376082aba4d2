package restsource_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/restsource"
)

// flask404 is what an MLflow 2.x server (Flask) answers for a route it
// does not have.
const flask404 = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"

// TestImportFromMLflow2Like puts a proxy in front of the source that
// makes it look like an MLflow 2.x server run with --no-serve-artifacts
// on a store that pages get-history: no logged-model, v3 trace or
// mlflow-artifacts routes (Flask's HTML 404), and metric histories cut
// into pages of max_results with a next_page_token. Runs, histories and
// artifacts (through artifacts/list and get-artifact) are imported
// whole, following the history pages; logged models and traces are
// simply absent, with no problem reported.
func TestImportFromMLflow2Like(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	dir := t.TempDir()
	bolt, arts := filepath.Join(dir, "dst.bolt"), filepath.Join(dir, "artifacts")
	var want map[string]any
	if !t.Run("import", func(t *testing.T) { want = importMLflow2Like(t, bolt, arts) }) {
		return
	}
	t.Run("compare", func(t *testing.T) {
		_, c := serve(t, bolt, arts)
		got := snapshot(t, c)
		for k := range got {
			if strings.HasPrefix(k, "logged model") || strings.HasPrefix(k, "trace") {
				t.Errorf("%s was imported from a server without it", k)
			}
		}
		compare(t, want, got)
	})
}

func importMLflow2Like(t *testing.T, bolt, arts string) map[string]any {
	src := startSource(t)
	seeded := seed(t, src.admin, 3, 300, 1<<12)
	want := snapshot(t, src.admin)
	// What a 2.x server cannot show: logged models and traces; runs
	// keep the outputs naming the logged model.
	for k := range want {
		if strings.HasPrefix(k, "logged model") || strings.HasPrefix(k, "trace") {
			delete(want, k)
		}
	}

	target, _ := url.Parse(src.srv.URL)
	tr := &http.Transport{TLSClientConfig: src.pki.ClientTLSConfig(src.pki.Client)}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = tr
	var pages, missing atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.Contains(p, "/logged-models"), strings.HasPrefix(p, "/api/3.0/"), strings.HasPrefix(p, "/ajax-api/3.0/"),
			strings.HasPrefix(p, "/api/2.0/mlflow-artifacts/"), strings.Contains(p, "get-trace-artifact"):
			missing.Add(1)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, flask404)
			return
		case p == "/api/2.0/mlflow/metrics/get-history":
			pageHistory(t, w, r, tr, target, &pages)
			return
		}
		r.Host = target.Host
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()

	c, err := mlflowclient.NewFromEnv(front.URL, envOf(map[string]string{mlflowclient.EnvToken: src.token}))
	must(t, err)
	s := restsource.New(c)
	s.HistoryPageSize = 1000
	defer s.Close()
	dst, err := boltstore.Open(bolt, boltstore.Options{})
	must(t, err)
	defer dst.Close()
	rep, err := mlflowimport.Import(context.Background(), s, dst, mlflowimport.Options{ArtifactsTo: arts})
	must(t, err)
	if len(rep.Problems) > 0 || rep.Imported.Runs != seeded.runs || rep.Imported.MetricPoints != seeded.points ||
		rep.Imported.LoggedModels != 0 || rep.Imported.Traces != 0 {
		t.Fatalf("import: %+v (seeded %+v)", rep, seeded)
	}
	if pages.Load() == 0 || missing.Load() == 0 {
		t.Fatalf("history pages followed: %d; 404s answered: %d", pages.Load(), missing.Load())
	}
	return want
}

// pageHistory answers get-history as a paging MLflow store does: the
// whole history read from the real server, cut at max_results, with the
// offset of the next page as the token.
func pageHistory(t *testing.T, w http.ResponseWriter, r *http.Request, tr http.RoundTripper, target *url.URL, pages *atomic.Int64) {
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("max_results"))
	from, _ := strconv.Atoi(q.Get("page_token"))
	if q.Get("page_token") != "" {
		pages.Add(1)
	}
	up := *target
	up.Path = r.URL.Path
	full := url.Values{"run_id": {q.Get("run_id")}, "metric_key": {q.Get("metric_key")}}
	up.RawQuery = full.Encode()
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, up.String(), nil)
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var all struct {
		Metrics []json.RawMessage `json:"metrics"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&all) != nil {
		http.Error(w, "upstream", http.StatusBadGateway)
		return
	}
	if size <= 0 {
		size = len(all.Metrics)
	}
	from = min(from, len(all.Metrics))
	to := min(from+size, len(all.Metrics))
	out := map[string]any{"metrics": all.Metrics[from:to]}
	if to < len(all.Metrics) {
		out["next_page_token"] = strconv.Itoa(to)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
