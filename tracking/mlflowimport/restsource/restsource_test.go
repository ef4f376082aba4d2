package restsource_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/internal/importcmd"
	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil/testpki"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/restsource"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

const rootPassword = "root-password-0123456"

// source is a caddy-mlflow over TLS with a client certificate required
// and every call authenticated (Basic or an API token).
type source struct {
	srv       *caddytest.Server
	caFile    string
	clientPEM string
	admin     *mlflowclient.Client
	token     string
	pki       *testpki.PKI
}

func envOf(m map[string]string) mlflowclient.LookupFunc {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func startSource(t testing.TB) *source {
	t.Helper()
	dir := t.TempDir()
	pki, err := testpki.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(rootPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TEST_ROOT_HASH", string(hash))
	s := &source{caFile: pki.CA.CertFile, clientPEM: filepath.Join(dir, "client.pem"), pki: pki}
	if err := os.WriteFile(s.clientPEM, append(append([]byte{}, pki.Client.CertPEM...), pki.Client.KeyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	s.srv = caddytest.Start(t, caddytest.Options{
		TLS: pki.ClientTLSConfig(pki.Client),
		Site: []string{fmt.Sprintf(`tls %q %q {
		client_auth {
			mode require_and_verify
			trust_pool file %q
		}
	}`, pki.Server.CertFile, pki.Server.KeyFile, pki.CA.CertFile)},
		Directives: []string{"serve_artifacts on", `auth {
			admin root {env.MLFLOW_TEST_ROOT_HASH}
			basic
			api_tokens
			default_permission NO_PERMISSIONS
		}`},
	})
	s.admin, err = mlflowclient.NewFromEnv(s.srv.URL, envOf(s.env(map[string]string{
		mlflowclient.EnvUsername: "root", mlflowclient.EnvPassword: rootPassword})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.admin.Close)
	var tok struct {
		Token string `json:"token"`
	}
	if err := s.admin.Call(context.Background(), http.MethodPost, "/api/2.0/mlflow/users/tokens/create", nil,
		map[string]string{"name": "import"}, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token: %v", err)
	}
	s.token = tok.Token
	return s
}

// env is the MLflow client environment for this server: its CA and the
// client certificate, plus extra.
func (s *source) env(extra map[string]string) map[string]string {
	m := map[string]string{
		mlflowclient.EnvServerCertPath: s.caFile,
		mlflowclient.EnvClientCertPath: s.clientPEM,
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// setEnv puts the environment into the process (importcmd reads
// os.LookupEnv, as the CLI does), clearing the other credentials.
func setEnv(t *testing.T, m map[string]string) {
	for _, k := range []string{mlflowclient.EnvUsername, mlflowclient.EnvPassword, mlflowclient.EnvToken,
		mlflowclient.EnvInsecureTLS, mlflowclient.EnvServerCertPath, mlflowclient.EnvClientCertPath} {
		t.Setenv(k, m[k])
		if _, ok := m[k]; !ok {
			os.Unsetenv(k)
		}
	}
}

// seeded is what seed made.
type seeded struct {
	runs, points, artifactBytes int64
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// seed logs, through the REST API: experiments (one deleted, tags,
// unicode), parent and nested runs with params, tags, datasets, metric
// histories longer than a page with NaN and ±Inf, a deleted run,
// artifacts in subdirectories, a logged model with artifacts and a
// metric, a trace with its data and an assessment, and a registry with
// stages, aliases, tags and descriptions.
func seed(t testing.TB, c *mlflowclient.Client, runsPerExp, pointsPerRun int, bigArtifact int) seeded {
	t.Helper()
	ctx := context.Background()
	var out seeded
	expA, err := c.CreateExperiment(ctx, "rest-a", "", []mlflowclient.Tag{{Key: "team", Value: "vision"}, {Key: "mlflow.note.content", Value: "notes ü"}})
	must(t, err)
	expB, err := c.CreateExperiment(ctx, "rest-b ünï", "", nil)
	must(t, err)
	expDel, err := c.CreateExperiment(ctx, "rest-deleted", "", []mlflowclient.Tag{{Key: "k", Value: "v"}})
	must(t, err)
	big := bytes.Repeat([]byte("0123456789abcdef"), bigArtifact/16)
	var firstRun string
	var runIDs []string
	for ei, exp := range []string{expA, expB, expDel} {
		parent := ""
		n := runsPerExp
		if exp == expDel {
			n = 2
		}
		for i := range n {
			tags := []mlflowclient.Tag{{Key: "mlflow.user", Value: "alice"}, {Key: "tag ü", Value: fmt.Sprint(i)}}
			if parent != "" && i%2 == 1 {
				tags = append(tags, mlflowclient.Tag{Key: "mlflow.parentRunId", Value: parent})
			}
			r, err := c.CreateRun(ctx, mlflowclient.CreateRun{ExperimentID: exp, RunName: fmt.Sprintf("run-%d-%d", ei, i),
				StartTime: int64(1_700_000_000_000 + ei*1000 + i), Tags: tags, UserID: "alice"})
			must(t, err)
			id := r.Info.ID()
			runIDs = append(runIDs, id)
			out.runs++
			if parent == "" {
				parent = id
			}
			if firstRun == "" {
				firstRun = id
			}
			var pts []mlflowclient.Metric
			for k := range pointsPerRun {
				v := float64(k)/7 + float64(i)
				switch k % 97 {
				case 3:
					v = math.NaN()
				case 4:
					v = math.Inf(1)
				case 5:
					v = math.Inf(-1)
				}
				key := "loss"
				if k%3 == 2 {
					key = "acc"
				}
				pts = append(pts, mlflowclient.Metric{Key: key, Value: mlflowclient.Float(v),
					Timestamp: mlflowclient.Int64(1_700_000_000_000 + k), Step: mlflowclient.Int64(k / 2)})
			}
			pts = append(pts, mlflowclient.Metric{Key: "only nan", Value: mlflowclient.Float(math.NaN()), Timestamp: 5, Step: 0})
			if id == firstRun {
				// Longer than mlflowimport.HistoryChunk: handed over in
				// several chunks.
				for k := range 2*mlflowimport.HistoryChunk + 123 {
					pts = append(pts, mlflowclient.Metric{Key: "long", Value: mlflowclient.Float(float64(k) * 1.5), Timestamp: mlflowclient.Int64(k), Step: mlflowclient.Int64(k)})
				}
			}
			out.points += int64(len(pts))
			params := []mlflowclient.Param{{Key: "lr", Value: "0.01"}, {Key: "unicode ü", Value: "ï"}, {Key: "i", Value: fmt.Sprint(i)}}
			must(t, c.LogBatchChunks(ctx, id, pts, params, []mlflowclient.Tag{{Key: "stage", Value: "train"}}))
			if i%2 == 0 {
				must(t, c.LogInputs(ctx, id, []mlflowclient.DatasetInput{{
					Tags:    []mlflowclient.Tag{{Key: "mlflow.data.context", Value: "training"}},
					Dataset: mlflowclient.Dataset{Name: "ds", Digest: fmt.Sprintf("d%d", i), SourceType: "local", Source: `{"uri": "/data"}`, Schema: `{"a": 1}`},
				}}))
			}
			root, ok := mlflowclient.ProxiedPath(r.Info.ArtifactURI)
			if !ok {
				t.Fatalf("artifact URI %q is not proxied", r.Info.ArtifactURI)
			}
			files := map[string][]byte{"a.txt": []byte("hello " + id), "model/MLmodel": []byte("flavors: {}\n"),
				"dir/sub/deep ü.bin": big, "dir/empty": {}}
			if i > 0 {
				delete(files, "dir/sub/deep ü.bin")
			}
			for p, data := range files {
				must(t, c.UploadProxied(ctx, root+"/"+p, bytes.NewReader(data), int64(len(data))))
				out.artifactBytes += int64(len(data))
			}
			status := "FINISHED"
			if i == 2 {
				status = "FAILED"
			}
			if i != 3 {
				_, err = c.UpdateRun(ctx, mlflowclient.UpdateRun{RunID: id, Status: status, EndTime: int64(1_700_000_100_000 + i)})
				must(t, err)
			}
			if i == 1 && exp == expA {
				must(t, c.DeleteRun(ctx, id))
			}
		}
	}
	must(t, c.DeleteExperiment(ctx, expDel))

	// A logged model (MLflow 3) with params, tags, a metric and artifacts.
	var lm struct {
		Model mlflowclient.LoggedModel `json:"model"`
	}
	must(t, c.Call(ctx, http.MethodPost, "/api/2.0/mlflow/logged-models", nil, map[string]any{
		"experiment_id": expA, "name": "clf", "model_type": "sklearn", "source_run_id": firstRun,
		"params": []map[string]string{{"key": "depth", "value": "3"}}, "tags": []map[string]string{{"key": "lm", "value": "t"}},
	}, &lm))
	mroot, ok := mlflowclient.ProxiedPath(lm.Model.Info.ArtifactURI)
	if !ok {
		t.Fatalf("logged model artifact URI %q", lm.Model.Info.ArtifactURI)
	}
	for p, data := range map[string]string{"MLmodel": "artifact_path: model\n", "sub/model.pkl": "pickled"} {
		must(t, c.UploadProxied(ctx, mroot+"/"+p, strings.NewReader(data), int64(len(data))))
		out.artifactBytes += int64(len(data))
	}
	must(t, c.Call(ctx, http.MethodPatch, "/api/2.0/mlflow/logged-models/"+lm.Model.Info.ModelID, nil,
		map[string]any{"model_id": lm.Model.Info.ModelID, "status": "LOGGED_MODEL_READY"}, nil))
	must(t, c.LogBatch(ctx, firstRun, []mlflowclient.Metric{{Key: "model_acc", Value: 0.9, Timestamp: 7, Step: 1, ModelID: lm.Model.Info.ModelID}}, nil, nil))
	out.points++
	must(t, c.Call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/outputs", nil, map[string]any{
		"run_id": firstRun, "models": []map[string]any{{"model_id": lm.Model.Info.ModelID, "step": 1}}}, nil))

	// A trace (v3) with metadata, tags, data and an assessment.
	var tr struct {
		Trace struct {
			TraceInfo struct {
				TraceID string            `json:"trace_id"`
				Tags    map[string]string `json:"tags"`
			} `json:"trace_info"`
		} `json:"trace"`
	}
	must(t, c.Call(ctx, http.MethodPost, "/api/3.0/mlflow/traces", nil, map[string]any{"trace": map[string]any{"trace_info": map[string]any{
		"trace_id": "tr-0123456789abcdef0123456789abcdef", "client_request_id": "req-1",
		"trace_location": map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]string{"experiment_id": expA}},
		"request_time":   "2025-01-02T03:04:05.678Z", "execution_duration": "1.250s", "state": "OK",
		"request_preview": `{"q": "hi"}`, "response_preview": `"hello"`,
		"trace_metadata": map[string]string{"mlflow.sourceRun": firstRun, "mlflow.trace_schema.version": "3"},
		"tags":           map[string]string{"mlflow.traceName": "chat", "t": "ü"},
	}}}, &tr))
	traceID := tr.Trace.TraceInfo.TraceID
	troot, ok := mlflowclient.ProxiedPath(tr.Trace.TraceInfo.Tags["mlflow.artifactLocation"])
	if !ok {
		t.Fatalf("trace artifact location %q", tr.Trace.TraceInfo.Tags["mlflow.artifactLocation"])
	}
	data := `{"spans": [{"name": "root", "context": {"span_id": "0x1", "trace_id": "0x2"}, "parent_id": null, "start_time": 1, "end_time": 2, "status_code": "OK", "status_message": "", "attributes": {}, "events": []}]}`
	must(t, c.UploadProxied(ctx, troot+"/traces.json", strings.NewReader(data), int64(len(data))))
	out.artifactBytes += int64(len(data))
	must(t, c.Call(ctx, http.MethodPost, "/api/3.0/mlflow/traces/"+traceID+"/assessments", nil, map[string]any{"assessment": map[string]any{
		"assessment_name": "correct", "trace_id": traceID, "source": map[string]any{"source_type": "HUMAN", "source_id": "bob"},
		"feedback": map[string]any{"value": true}, "rationale": "looks right",
	}}, nil))

	// The registry: two models, versions in stages, aliases, tags, descriptions.
	_, err = c.CreateRegisteredModel(ctx, "reg-m", "the model ü", []mlflowclient.Tag{{Key: "owner", Value: "ml"}})
	must(t, err)
	_, err = c.CreateRegisteredModel(ctx, `it's "quoted"`, "", nil)
	must(t, err)
	for i := range 3 {
		run := runIDs[i]
		v, err := c.CreateModelVersion(ctx, mlflowclient.CreateModelVersion{Name: "reg-m", Source: "runs:/" + run + "/model", RunID: run,
			Tags: []mlflowclient.Tag{{Key: "v", Value: fmt.Sprint(i)}}, Description: fmt.Sprintf("version %d", i+1)})
		must(t, err)
		switch i {
		case 0:
			_, err = c.TransitionModelVersionStage(ctx, "reg-m", v.Version, "Production", false)
		case 1:
			_, err = c.TransitionModelVersionStage(ctx, "reg-m", v.Version, "Staging", false)
		}
		must(t, err)
	}
	must(t, c.SetRegisteredModelAlias(ctx, "reg-m", "champion", "2"))
	must(t, c.SetRegisteredModelAlias(ctx, "reg-m", "old", "1"))
	_, err = c.CreateModelVersion(ctx, mlflowclient.CreateModelVersion{Name: `it's "quoted"`, Source: "runs:/" + runIDs[0] + "/model", RunID: runIDs[0]})
	must(t, err)
	return out
}

// snapshot reads everything a server shows through its REST API, as
// canonical JSON per object (lists of key/value pairs sorted), with every
// artifact's SHA-256.
func snapshot(t *testing.T, c *mlflowclient.Client) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	var exps []mlflowclient.Experiment
	must(t, c.EachExperiment(ctx, mlflowclient.AllViews, func(e mlflowclient.Experiment) error {
		exps = append(exps, e)
		return nil
	}))
	for _, e := range exps {
		out["experiment "+e.ExperimentID] = canon(t, e)
		var runs []mlflowclient.Run
		must(t, c.EachRun(ctx, []string{e.ExperimentID}, mlflowclient.AllViews, func(r mlflowclient.Run) error {
			runs = append(runs, r)
			return nil
		}))
		for _, r := range runs {
			id := r.Info.ID()
			full, err := c.GetRun(ctx, id)
			must(t, err)
			out["run "+id] = canon(t, full)
			for _, m := range full.Data.Metrics {
				var hist []mlflowclient.Metric
				must(t, c.EachMetricPage(ctx, id, m.Key, func(p []mlflowclient.Metric) error {
					hist = append(hist, p...)
					return nil
				}))
				sort.SliceStable(hist, func(i, j int) bool {
					a, b := hist[i], hist[j]
					if a.Step != b.Step {
						return a.Step < b.Step
					}
					if a.Timestamp != b.Timestamp {
						return a.Timestamp < b.Timestamp
					}
					return fmt.Sprint(a.Value) < fmt.Sprint(b.Value)
				})
				out["history "+id+" "+m.Key] = canon(t, hist)
			}
			root, _ := mlflowclient.ProxiedPath(full.Info.ArtifactURI)
			out["artifacts "+id] = hashes(t, func(fn func(mlflowclient.FileInfo) error) error { return c.WalkProxiedArtifacts(ctx, root, fn) },
				func(p string) (io.ReadCloser, int64, error) { return c.DownloadProxied(ctx, root+"/"+p) })
			out["artifacts/list "+id] = hashes(t, func(fn func(mlflowclient.FileInfo) error) error { return c.WalkRunArtifacts(ctx, id, fn) },
				func(p string) (io.ReadCloser, int64, error) { return c.DownloadRunArtifact(ctx, id, p) })
		}
		must(t, c.EachLoggedModel(ctx, []string{e.ExperimentID}, func(m mlflowclient.LoggedModel) error {
			id := m.Info.ModelID
			out["logged model "+id] = canon(t, m)
			out["logged model artifacts "+id] = hashes(t, func(fn func(mlflowclient.FileInfo) error) error { return c.WalkLoggedModelArtifacts(ctx, id, fn) },
				func(p string) (io.ReadCloser, int64, error) { return c.DownloadLoggedModelArtifact(ctx, id, p) })
			return nil
		}))
		must(t, c.EachTraceV3(ctx, []string{e.ExperimentID}, func(raw json.RawMessage) error {
			var id struct {
				TraceID string `json:"trace_id"`
			}
			must(t, json.Unmarshal(raw, &id))
			info, err := c.GetTraceInfoV3(ctx, id.TraceID)
			must(t, err)
			out["trace "+id.TraceID] = canon(t, info)
			rc, _, err := c.DownloadTraceData(ctx, id.TraceID)
			must(t, err)
			h := sha256.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			must(t, err)
			out["trace data "+id.TraceID] = hex.EncodeToString(h.Sum(nil))
			return nil
		}))
	}
	must(t, c.EachRegisteredModel(ctx, "", func(m mlflowclient.RegisteredModel) error {
		full, err := c.GetRegisteredModel(ctx, m.Name)
		must(t, err)
		out["registered model "+m.Name] = canon(t, full)
		return nil
	}))
	must(t, c.EachModelVersion(ctx, "", func(v mlflowclient.ModelVersion) error {
		full, err := c.GetModelVersion(ctx, v.Name, v.Version)
		must(t, err)
		out["model version "+v.Name+"/"+v.Version] = canon(t, full)
		return nil
	}))
	return out
}

func hashes(t *testing.T, walk func(func(mlflowclient.FileInfo) error) error, open func(string) (io.ReadCloser, int64, error)) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, walk(func(f mlflowclient.FileInfo) error {
		rc, _, err := open(f.Path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			return err
		}
		out[f.Path] = fmt.Sprintf("%d %x", n, h.Sum(nil))
		return nil
	}))
	return out
}

// canon turns v into generic JSON with lists sorted by their JSON text
// (tags, params, versions come in any order).
func canon(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	var x any
	must(t, json.Unmarshal(b, &x))
	return sortLists(x)
}

func sortLists(x any) any {
	switch v := x.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = sortLists(e)
		}
	case []any:
		// Ordered by each element's JSON, marshalled once per element (not
		// twice per comparison: with metric histories of thousands of
		// points that was a third of this package's time under -race).
		keys := make([]string, len(v))
		idx := make([]int, len(v))
		for i, e := range v {
			v[i] = sortLists(e)
			b, _ := json.Marshal(v[i])
			keys[i], idx[i] = string(b), i
		}
		sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
		sorted := make([]any, len(v))
		for i, j := range idx {
			sorted[i] = v[j]
		}
		copy(v, sorted)
	}
	return x
}

// compare reports every object that differs.
func compare(t *testing.T, want, got map[string]any) {
	t.Helper()
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	bad := 0
	for _, k := range sorted {
		a, _ := json.Marshal(want[k])
		b, _ := json.Marshal(got[k])
		if !bytes.Equal(a, b) {
			bad++
			if bad <= 20 {
				t.Errorf("%s differs:\nsource:      %s\ndestination: %s", k, trim(a), trim(b))
			}
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more", bad-20)
	}
	if len(want) < 10 {
		t.Fatalf("the snapshot is too small to mean anything: %d objects", len(want))
	}
}

func trim(b []byte) string {
	if len(b) > 1500 {
		return string(b[:1500]) + "…"
	}
	return string(b)
}

// serve starts a plain caddy-mlflow over an imported store.
func serve(t *testing.T, bolt, artifacts string) (*caddytest.Server, *mlflowclient.Client) {
	t.Helper()
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{
		"backend_store_uri " + bolt, "artifacts_destination " + artifacts, "serve_artifacts on"}})
	c, err := mlflowclient.NewFromEnv(srv.URL, envOf(nil))
	must(t, err)
	t.Cleanup(c.Close)
	return srv, c
}

func zero(c storecopy.Counts) bool {
	for _, k := range c.Kinds() {
		if k.Value != 0 {
			return false
		}
	}
	return true
}

// TestImportFromLiveServer is the live-server import: a
// caddy-mlflow over TLS with a required client certificate and auth on,
// seeded through the REST API, imported (importcmd.Run, as the CLI) with
// Basic credentials and interrupted after a few runs, resumed with a
// bearer token, imported once more (nothing new), and imported again
// through the tracking routes with small history pages; each destination
// is then served by a second caddy-mlflow and compared with the source,
// object by object through the API and artifact by hash.
func TestImportFromLiveServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	dir := t.TempDir()
	var want map[string]any
	bolt1, arts1 := filepath.Join(dir, "one.bolt"), filepath.Join(dir, "one-artifacts")
	bolt2, arts2 := filepath.Join(dir, "two.bolt"), filepath.Join(dir, "two-artifacts")
	// One Caddy per process: the source runs in this subtest, each
	// destination in one of its own.
	if !t.Run("import", func(t *testing.T) {
		want = importFromSource(t, bolt1, arts1, bolt2, arts2)
	}) {
		return
	}
	for _, d := range []struct{ bolt, arts string }{{bolt1, arts1}, {bolt2, arts2}} {
		t.Run("compare "+filepath.Base(d.bolt), func(t *testing.T) {
			_, c := serve(t, d.bolt, d.arts)
			compare(t, want, snapshot(t, c))
		})
	}
}

func importFromSource(t *testing.T, bolt1, arts1, bolt2, arts2 string) map[string]any {
	src := startSource(t)
	seed(t, src.admin, 8, 2600, 1<<20)
	want := snapshot(t, src.admin)
	kinds := map[string]int{}
	for k := range want {
		kinds[strings.Fields(k)[0]]++
	}
	t.Logf("source: %d objects: %v", len(want), kinds)

	run := func(ctx context.Context) (*mlflowimport.Report, error) {
		return importcmd.Run(ctx, importcmd.Config{From: src.srv.URL, To: bolt1, ArtifactsTo: arts1,
			ResolveBolt: func(s string) (string, error) { return s, nil }})
	}

	// Interrupted: cancel once three runs are in (importcmd.Run has no
	// hook, so the first pass goes through mlflowimport.Import with the
	// same source importcmd opens).
	setEnv(t, src.env(map[string]string{mlflowclient.EnvUsername: "root", mlflowclient.EnvPassword: rootPassword}))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := importcmd.OpenSource(ctx, src.srv.URL, "")
	must(t, err)
	dst, err := boltstore.Open(bolt1, boltstore.Options{})
	must(t, err)
	rep, err := mlflowimport.Import(ctx, s, dst, mlflowimport.Options{ArtifactsTo: arts1,
		Progress: func(phase string, c storecopy.Counts) {
			if c.Runs >= 3 {
				cancel()
			}
		}})
	cancel()
	s.Close()
	must(t, dst.Close())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted import: %v (%+v)", err, rep)
	}
	if rep.Imported.Runs < 3 || rep.Imported.Runs >= 8 {
		t.Fatalf("interrupted after %d runs", rep.Imported.Runs)
	}

	// Resumed with a bearer token (Basic unset).
	setEnv(t, src.env(map[string]string{mlflowclient.EnvToken: src.token}))
	rep, err = run(context.Background())
	must(t, err)
	if len(rep.Problems) > 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.SkippedRuns < 2 || rep.Imported.Runs == 0 {
		t.Fatalf("resume: %d runs skipped, %d imported", rep.SkippedRuns, rep.Imported.Runs)
	}
	// Again: nothing new.
	rep, err = run(context.Background())
	must(t, err)
	if !zero(rep.Imported) || rep.ArtifactFiles != 0 || len(rep.Problems) > 0 || rep.SkippedRuns != 8+8+2 {
		t.Fatalf("second import: %+v", rep)
	}

	// Without credentials the source refuses, and the error says so.
	setEnv(t, src.env(nil))
	if _, err := run(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("no credentials: %v", err)
	}
	// Without the CA the certificate does not verify.
	setEnv(t, map[string]string{mlflowclient.EnvToken: src.token, mlflowclient.EnvClientCertPath: src.clientPEM})
	if _, err := run(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unverified server: %v", err)
	}

	// Through the tracking routes, get-history in pages of 1000.
	c2, err := mlflowclient.NewFromEnv(src.srv.URL, envOf(src.env(map[string]string{mlflowclient.EnvToken: src.token})))
	must(t, err)
	s2 := restsource.New(c2)
	s2.ThroughTrackingAPI, s2.HistoryPageSize, s2.RunPageSize = true, 1000, 3
	dst2, err := boltstore.Open(bolt2, boltstore.Options{})
	must(t, err)
	rep, err = mlflowimport.Import(context.Background(), s2, dst2, mlflowimport.Options{ArtifactsTo: arts2})
	must(t, err)
	must(t, dst2.Close())
	s2.Close()
	if len(rep.Problems) > 0 || rep.Imported.Runs != 18 {
		t.Fatalf("through the tracking routes: %+v", rep)
	}

	return want
}
