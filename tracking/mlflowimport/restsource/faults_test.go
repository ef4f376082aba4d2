package restsource_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/restsource"
)

// TestImportBadRecords puts a proxy in front of the source that breaks
// three runs: one's get-history answers 500, one's artifact 404, and
// one's record in runs/search does not decode while its runs/get answers
// 500. Each is reported as a Problem and skipped, the others are
// imported; the next import, without the faults, brings the three in
// and leaves the rest alone.
func TestImportBadRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	src := startSource(t)
	seed(t, src.admin, 4, 300, 1<<10)
	ctx := context.Background()
	var ids []string
	must(t, src.admin.EachRun(ctx, []string{"1"}, mlflowclient.AllViews, func(r mlflowclient.Run) error {
		ids = append(ids, r.Info.ID())
		return nil
	}))
	if len(ids) != 4 {
		t.Fatalf("runs of experiment 1: %v", ids)
	}
	badHistory, badArtifact, badRecord := ids[0], ids[1], ids[2]

	target, _ := url.Parse(src.srv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: src.pki.ClientTLSConfig(src.pki.Client)}
	startTime := regexp.MustCompile(`("run_uuid":"` + badRecord + `"[^}]*"start_time":)(\d+)`)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/api/2.0/mlflow/runs/search" {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body = startTime.ReplaceAll(body, []byte(`${1}{"not":"a number"}`))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
		return nil
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.URL.Path == "/api/2.0/mlflow/metrics/get-history" && q.Get("run_id") == badHistory:
			http.Error(w, `{"error_code":"INTERNAL_ERROR","message":"broken"}`, http.StatusInternalServerError)
			return
		case strings.HasPrefix(r.URL.Path, "/api/2.0/mlflow-artifacts/artifacts/") && strings.Contains(r.URL.Path, badArtifact) &&
			strings.HasSuffix(r.URL.Path, "/a.txt"):
			http.Error(w, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"gone"}`, http.StatusNotFound)
			return
		case r.URL.Path == "/api/2.0/mlflow/runs/get" && q.Get("run_id") == badRecord:
			http.Error(w, `{"error_code":"INTERNAL_ERROR","message":"broken"}`, http.StatusInternalServerError)
			return
		}
		r.Host = target.Host
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()

	dir := t.TempDir()
	bolt, arts := filepath.Join(dir, "dst.bolt"), filepath.Join(dir, "artifacts")
	imp := func(uri string) *mlflowimport.Report {
		t.Helper()
		c, err := mlflowclient.NewFromEnv(uri, envOf(src.env(map[string]string{mlflowclient.EnvToken: src.token,
			mlflowclient.EnvMaxRetries: "0"})))
		must(t, err)
		s := restsource.New(c)
		defer s.Close()
		dst, err := boltstore.Open(bolt, boltstore.Options{})
		must(t, err)
		defer dst.Close()
		rep, err := mlflowimport.Import(ctx, s, dst, mlflowimport.Options{ArtifactsTo: arts})
		must(t, err)
		return rep
	}
	rep := imp(front.URL)
	got := map[string]string{}
	for _, p := range rep.Problems {
		got[p.ID] = p.Kind + ": " + p.Err.Error()
	}
	for _, id := range []string{badHistory, badArtifact, badRecord} {
		if got[id] == "" {
			t.Errorf("run %s: no problem reported (%v)", id, rep.Problems)
		}
	}
	if len(rep.Problems) != 3 {
		t.Errorf("problems: %v", rep.Problems)
	}
	if !strings.Contains(got[badRecord], "runs/get") || !strings.Contains(got[badHistory], "metric") || !strings.Contains(got[badArtifact], "a.txt") {
		t.Errorf("problems do not say what failed: %v", got)
	}

	rep = imp(src.srv.URL)
	if len(rep.Problems) != 0 || rep.Imported.Runs != 3 || rep.SkippedRuns != 4+4+2-3 {
		t.Fatalf("after the faults: %d imported, %d skipped, problems %v", rep.Imported.Runs, rep.SkippedRuns, rep.Problems)
	}
	rep = imp(src.srv.URL)
	if !zero(rep.Imported) || rep.ArtifactFiles != 0 || len(rep.Problems) != 0 {
		t.Fatalf("third import: %+v", rep)
	}
}

// TestOnlineImportRefusesServers: a running server's admin route does
// not fetch from an http(s) source.
func TestOnlineImportRefusesServers(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{Admin: true})
	body := `{"store": "` + srv.BoltPath + `", "from": "https://mlflow.example.com"}`
	resp, err := http.Post(srv.AdminURL+"/mlflow/import", "application/json", strings.NewReader(body))
	must(t, err)
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "does not fetch from other servers") {
		t.Fatalf("%d %s", resp.StatusCode, msg)
	}
}
