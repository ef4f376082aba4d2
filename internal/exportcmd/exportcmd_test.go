package exportcmd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/internal/exportcmd"
	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowexport"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil/testpki"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

const rootPassword = "root-password-0123456"

// must returns v, or panics with err (which fails the test with its
// stack).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// source is a seeded caddy-mlflow bbolt store and its artifacts root.
type source struct {
	path, arts string
	bigRun     string // the run with the long history
	files      int    // artifact files written
}

// seed writes the source store: experiments (one deleted, one with a
// unicode name, Default), nested runs (children started after their
// parent, so that a search lists them first), every run status and a
// deleted run, 150 params, NaN/±Inf metrics, a 2600-point history (three
// log-batch chunks), dataset inputs with tags, artifacts in
// subdirectories, and a registry with descriptions, tags, stages, a
// deleted version (a gap in the numbers) and aliases.
func seed(t *testing.T, dir string) *source {
	t.Helper()
	return seedURI(t, dir, filepath.Join(dir, "src.bolt"))
}

// openStore opens a bbolt path or a postgresql:// URI.
func openStore(t *testing.T, uri string) tracking.Store {
	t.Helper()
	if strings.HasPrefix(uri, "postgres") {
		return must(pgstore.Open(context.Background(), uri, pgdb.Options{}))
	}
	return must(boltstore.Open(uri, boltstore.Options{}))
}

// seedURI seeds the store uri names.
func seedURI(t *testing.T, dir, uri string) *source {
	t.Helper()
	ctx := context.Background()
	src := &source{path: uri, arts: filepath.Join(dir, "src-artifacts")}
	s := openStore(t, uri)
	defer s.(io.Closer).Close()
	root := "mlflow-artifacts:/"
	check(t, s.EnsureDefaultExperiment(ctx, root))
	vision := must(s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "vision", DefaultArtifactRoot: root,
		Tags: []tracking.Tag{{Key: "team", Value: "cv"}, {Key: "mlflow.note.content", Value: "notes\nline 2"}}}))
	old := must(s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "old", DefaultArtifactRoot: root}))
	uni := must(s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "ünï ☃", DefaultArtifactRoot: root}))

	writeArt := func(run *tracking.Run, rel string, data []byte) {
		p, ok := artifact.URIPath(run.Info.ArtifactURI)
		if !ok {
			t.Fatalf("run artifact URI %q", run.Info.ArtifactURI)
		}
		full := filepath.Join(src.arts, filepath.FromSlash(p), filepath.FromSlash(rel))
		check(t, os.MkdirAll(filepath.Dir(full), 0o755))
		check(t, os.WriteFile(full, data, 0o644))
		src.files++
	}
	newRun := func(exp, name string, start int64, extra ...tracking.Tag) *tracking.Run {
		tags := append([]tracking.Tag{{Key: tracking.TagUser, Value: "alice"}, {Key: "mlflow.source.name", Value: "train.py"}}, extra...)
		return must(s.CreateRun(ctx, tracking.CreateRun{ExperimentID: exp, UserID: "alice", RunName: name, StartTime: start, Tags: tags}))
	}
	finish := func(id, status string, end int64) {
		_ = must(s.UpdateRun(ctx, id, tracking.UpdateRun{Status: &status, EndTime: &end}))
	}

	parent := newRun(vision, "parent", 1000)
	src.bigRun = parent.Info.RunID
	var params []tracking.Param
	for i := range 150 {
		params = append(params, tracking.Param{Key: fmt.Sprintf("p%03d", i), Value: fmt.Sprintf("v%d", i)})
	}
	check(t, s.LogBatch(ctx, parent.Info.RunID, tracking.Batch{Params: params[:100], Tags: []tracking.Tag{{Key: "phase", Value: "train"}}}))
	check(t, s.LogBatch(ctx, parent.Info.RunID, tracking.Batch{Params: params[100:], Metrics: []tracking.Metric{
		{Key: "inf", Value: math.Inf(1), Timestamp: 5, Step: 0},
		{Key: "inf", Value: math.Inf(-1), Timestamp: 6, Step: 1},
		{Key: "nan", Value: math.NaN(), Timestamp: 7, Step: 0},
	}}))
	for start := 0; start < 2600; start += 500 {
		var ms []tracking.Metric
		for i := start; i < min(start+500, 2600); i++ {
			v := 1 / float64(i+1)
			if i%50 == 7 {
				v = math.NaN()
			}
			ms = append(ms, tracking.Metric{Key: "loss", Value: v, Timestamp: int64(10_000 + i/3), Step: int64(i)})
		}
		check(t, s.LogBatch(ctx, parent.Info.RunID, tracking.Batch{Metrics: ms}))
	}
	check(t, s.LogInputs(ctx, parent.Info.RunID, []tracking.DatasetInput{
		{Dataset: tracking.Dataset{Name: "train", Digest: "abc", SourceType: "local", Source: `{"uri": "/data/train"}`, Schema: `{"cols": 3}`, Profile: `{"rows": 10}`},
			Tags: []tracking.Tag{{Key: tracking.InputTagContext, Value: "training"}}},
		{Dataset: tracking.Dataset{Name: "val", Digest: "d1", SourceType: "http", Source: `{"url": "https://x/val"}`}},
	}, nil))
	check(t, s.AppendModelHistory(ctx, parent.Info.RunID, []byte(`{"run_id": "`+parent.Info.RunID+`", "artifact_path": "model", "flavors": {}}`)))
	weights := make([]byte, 300_000)
	_, _ = rand.Read(weights)
	writeArt(parent, "model/MLmodel", []byte("flavors: {}\n"))
	writeArt(parent, "model/data/weights.bin", weights)
	writeArt(parent, "plots/loss curve.png", []byte("\x89PNG fake"))
	writeArt(parent, "notes.txt", []byte("hello"))
	finish(parent.Info.RunID, tracking.StatusFinished, 5000)

	child1 := newRun(vision, "child-1", 2000, tracking.Tag{Key: tracking.TagParentRunID, Value: parent.Info.RunID})
	check(t, s.LogBatch(ctx, child1.Info.RunID, tracking.Batch{Metrics: []tracking.Metric{{Key: "acc", Value: 0.5, Timestamp: 1, Step: 1}, {Key: "acc", Value: 0.75, Timestamp: 2, Step: 2}}}))
	writeArt(child1, "model/MLmodel", []byte("child model\n"))
	finish(child1.Info.RunID, tracking.StatusFinished, 2500)
	child2 := newRun(vision, "child-2", 3000, tracking.Tag{Key: tracking.TagParentRunID, Value: parent.Info.RunID})
	finish(child2.Info.RunID, tracking.StatusFailed, 3100)
	grandchild := newRun(vision, "grandchild", 4000, tracking.Tag{Key: tracking.TagParentRunID, Value: child2.Info.RunID})
	finish(grandchild.Info.RunID, tracking.StatusKilled, 4100)
	gone := newRun(vision, "gone", 1500)
	check(t, s.LogParam(ctx, gone.Info.RunID, tracking.Param{Key: "p", Value: "v"}))
	check(t, s.DeleteRun(ctx, gone.Info.RunID))
	newRun(vision, "still running", 6000) // RUNNING, no end time

	oldRun := newRun(old, "in old", 500)
	check(t, s.LogParam(ctx, oldRun.Info.RunID, tracking.Param{Key: "k", Value: strings.Repeat("v", 600)}))
	finish(oldRun.Info.RunID, tracking.StatusFinished, 600)
	check(t, s.DeleteExperiment(ctx, old))
	uniRun := newRun(uni, "ünï run", 700)
	writeArt(uniRun, "a b.txt", []byte("unicode experiment"))

	_ = must(s.CreateRegisteredModel(ctx, tracking.CreateRegisteredModel{Name: "m1", Description: "the model", Tags: []tracking.Tag{{Key: "owner", Value: "alice"}}}))
	v := func(source, runID, desc string, tags ...tracking.Tag) {
		_ = must(s.CreateModelVersion(ctx, tracking.CreateModelVersion{Name: "m1", Source: source, RunID: runID, UserID: "alice", Description: desc, Tags: tags}))
	}
	v(parent.Info.ArtifactURI+"/model", parent.Info.RunID, "first", tracking.Tag{Key: "n", Value: "1"})
	v("runs:/"+child1.Info.RunID+"/model", child1.Info.RunID, "")
	v(parent.Info.ArtifactURI+"/model", parent.Info.RunID, "dropped")
	v(parent.Info.ArtifactURI+"/model", parent.Info.RunID, "fourth", tracking.Tag{Key: "n", Value: "4"}, tracking.Tag{Key: "validated", Value: "yes"})
	_ = must(s.TransitionModelVersionStage(ctx, "m1", 1, tracking.StageStaging, false))
	_ = must(s.TransitionModelVersionStage(ctx, "m1", 2, tracking.StageProduction, false))
	_ = must(s.TransitionModelVersionStage(ctx, "m1", 4, tracking.StageArchived, false))
	check(t, s.DeleteModelVersion(ctx, "m1", 3))
	check(t, s.SetRegisteredModelAlias(ctx, "m1", "champion", 2))
	check(t, s.SetRegisteredModelAlias(ctx, "m1", "legacy", 4))
	_ = must(s.CreateRegisteredModel(ctx, tracking.CreateRegisteredModel{Name: "m2 empty", Tags: []tracking.Tag{{Key: "k", Value: "v"}}}))
	return src
}

// destination is a caddy-mlflow with Basic auth behind a TLS front end
// (the test CA's server certificate) that can cut the connection.
type destination struct {
	srv    *caddytest.Server
	front  *httptest.Server
	env    map[string]string
	client *mlflowclient.Client
	// logBatches counts the log-batch calls the front forwarded; at
	// cancelAt of them it calls cancel.
	logBatches atomic.Int64
	cancelAt   atomic.Int64
	cancel     atomic.Pointer[context.CancelFunc]
}

func startDestination(t *testing.T, dir string) *destination {
	t.Helper()
	pki := must(testpki.Generate(t.TempDir()))
	hash := must(bcrypt.GenerateFromPassword([]byte(rootPassword), bcrypt.MinCost))
	t.Setenv("MLFLOW_TEST_ROOT_HASH", string(hash))
	d := &destination{}
	d.srv = caddytest.Start(t, caddytest.Options{Directives: []string{"serve_artifacts on", `auth {
		admin root {env.MLFLOW_TEST_ROOT_HASH}
		basic
		default_permission NO_PERMISSIONS
	}`}})
	target := must(url.Parse(d.srv.URL))
	rp := httputil.NewSingleHostReverseProxy(target)
	// A connection of its own per request: a request the interrupted
	// export abandoned must not leave a half-read connection behind.
	rp.Transport = &http.Transport{DisableKeepAlives: true}
	d.front = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/runs/log-batch") {
			n := d.logBatches.Add(1)
			if at := d.cancelAt.Load(); at > 0 && n >= at {
				if c := d.cancel.Load(); c != nil {
					(*c)()
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	d.front.TLS = pki.ServerTLSConfig(tls.NoClientCert)
	d.front.StartTLS()
	t.Cleanup(d.front.Close)
	d.env = map[string]string{
		mlflowclient.EnvUsername: "root", mlflowclient.EnvPassword: rootPassword,
		mlflowclient.EnvServerCertPath: pki.CA.CertFile,
	}
	d.client = must(mlflowclient.NewFromEnv(d.front.URL, lookup(d.env)))
	t.Cleanup(d.client.Close)
	return d
}

func lookup(m map[string]string) mlflowclient.LookupFunc {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func (d *destination) run(t *testing.T, ctx context.Context, src *source, idMap string, extra func(*exportcmd.Config)) (*mlflowexport.Report, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cfg := exportcmd.Config{
		From: src.path, ArtifactsFrom: src.arts, To: d.front.URL, IDMap: idMap,
		Lookup: lookup(d.env), Stdout: &out, Stderr: &errOut, Workers: 3,
	}
	if extra != nil {
		extra(&cfg)
	}
	rep, err := exportcmd.Run(ctx, cfg)
	return rep, out.String() + errOut.String(), err
}

// TestExportIntoCaddyMLflow exports a seeded store into a running,
// authenticated caddy-mlflow through TLS, interrupted halfway and
// continued, and compares every object field by field (ids through the
// id map) and every artifact by sha256; a second export changes nothing.
func TestExportIntoCaddyMLflow(t *testing.T) {
	dir := t.TempDir()
	src := seed(t, dir)
	d := startDestination(t, dir)
	idMap := filepath.Join(dir, "ids.jsonl")

	// A dry run writes nothing and counts what the export will write.
	dry, out, err := d.run(t, context.Background(), src, idMap, func(c *exportcmd.Config) { c.DryRun = true })
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if _, err := os.Stat(idMap); !os.IsNotExist(err) {
		t.Fatal("the dry run wrote the id map")
	}
	if dry.Exported.Runs != 8 || dry.Exported.MetricPoints != 2600+3+2 || dry.Exported.ModelVersions != 3 || dry.Exported.Experiments != 4 ||
		dry.ArtifactFiles != int64(src.files) {
		t.Fatalf("dry run counts: %+v, %d artifact files", dry.Exported, dry.ArtifactFiles)
	}
	if n := countDestination(t, d.client); n != 1 {
		t.Fatalf("the dry run wrote experiments: %d", n)
	}

	// Interrupted in the middle of the long history (its 2nd chunk).
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel.Store(&cancel)
	d.cancelAt.Store(4)
	_, out, err = d.run(t, ctx, src, idMap, func(c *exportcmd.Config) { c.Workers = 1 })
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("the interrupted export: %v\n%s", err, out)
	}
	cancel()
	d.cancelAt.Store(0)
	j := must(mlflowexport.OpenJournal(idMap, d.client.BaseURL(), true))
	if _, ok := j.Run(src.bigRun); !ok || j.RunDone(src.bigRun) {
		t.Fatalf("the interruption did not stop inside the long run: mapped=%v", ok)
	}

	rep, out, err := d.run(t, context.Background(), src, idMap, nil)
	if err != nil {
		t.Fatalf("resumed export: %v\n%s", err, out)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	t.Logf("resumed export:\n%s", out)
	compare(t, src, d.client, idMap)

	// A third export finds everything done.
	again, out, err := d.run(t, context.Background(), src, idMap, nil)
	if err != nil {
		t.Fatalf("repeated export: %v\n%s", err, out)
	}
	if again.Exported.Runs != 0 || again.Exported.MetricPoints != 0 || again.Exported.ModelVersions != 0 ||
		again.Exported.Experiments != 0 || again.SkippedRuns != 8 || again.SkippedModels != 2 || again.ArtifactFiles != 0 {
		t.Fatalf("the repeated export wrote: %+v (skipped %d runs, %d models)", again.Exported, again.SkippedRuns, again.SkippedModels)
	}
	compare(t, src, d.client, idMap)

	// The id map is for one destination only.
	if _, err := mlflowexport.OpenJournal(idMap, "https://elsewhere.example.com", false); err == nil {
		t.Fatal("an id map was reused for another destination")
	}
}

// TestExportIntoRealMLflow exports the same store into a real MLflow
// server when MLFLOW_EXPORT_TEST_SERVER names one (an empty `mlflow
// server --serve-artifacts`, credentials from the usual MLFLOW_TRACKING_*
// variables), and compares as above. Not run in CI: MLflow is not
// installable there.
func TestExportIntoRealMLflow(t *testing.T) {
	uri := os.Getenv("MLFLOW_EXPORT_TEST_SERVER")
	if uri == "" {
		t.Skip("MLFLOW_EXPORT_TEST_SERVER is not set")
	}
	dir := t.TempDir()
	src := seed(t, dir)
	c := must(mlflowclient.NewFromEnv(uri, os.LookupEnv))
	idMap := filepath.Join(dir, "ids.jsonl")
	var out bytes.Buffer
	rep, err := exportcmd.Run(context.Background(), exportcmd.Config{
		From: src.path, ArtifactsFrom: src.arts, To: uri, IDMap: idMap, Lookup: os.LookupEnv, Stdout: &out, Stderr: &out,
	})
	t.Logf("%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	compare(t, src, c, idMap)
	// MLflow 2.x has no logged models or v3 traces: the client's
	// searches answer nothing rather than fail.
	exps := []string{"0"}
	if err := c.EachLoggedModel(context.Background(), exps, func(mlflowclient.LoggedModel) error { return nil }); err != nil {
		t.Errorf("logged models: %v", err)
	}
	if err := c.EachTraceV3(context.Background(), exps, func(json.RawMessage) error { return nil }); err != nil {
		t.Errorf("traces: %v", err)
	}
	again, err := exportcmd.Run(context.Background(), exportcmd.Config{
		From: src.path, ArtifactsFrom: src.arts, To: uri, IDMap: idMap, Lookup: os.LookupEnv,
	})
	if err != nil || again.Exported.Runs != 0 || again.SkippedRuns != 8 {
		t.Fatalf("repeated export: %v %+v", err, again)
	}
}

// countDestination counts the destination's experiments (every stage).
func countDestination(t *testing.T, c *mlflowclient.Client) int {
	n := 0
	check(t, c.EachExperiment(context.Background(), mlflowclient.AllViews, func(mlflowclient.Experiment) error { n++; return nil }))
	return n
}

type pointKey struct {
	step, ts int64
	val      string
}

func fmtValue(v float64) string {
	// MLflow's stores keep ±Inf as ±MaxFloat64.
	if math.IsInf(v, 1) {
		v = math.MaxFloat64
	} else if math.IsInf(v, -1) {
		v = -math.MaxFloat64
	}
	return fmt.Sprintf("%v", v)
}

func tagMap[T any](items []T, kv func(T) (string, string)) map[string]string {
	m := map[string]string{}
	for _, it := range items {
		k, v := kv(it)
		m[k] = v
	}
	return m
}

func eqMap(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d entries, want %d: %v vs %v", what, len(got), len(want), got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s[%q] = %q, want %q", what, k, got[k], v)
		}
	}
}

func sha(r io.Reader) string {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "error: " + err.Error()
	}
	return hex.EncodeToString(h.Sum(nil))
}

// compare reads the source store and the destination and compares every
// object, ids through the id map.
func compare(t *testing.T, src *source, c *mlflowclient.Client, idMap string) {
	t.Helper()
	ctx := context.Background()
	j := must(mlflowexport.OpenJournal(idMap, c.BaseURL(), true))
	exps, runs := j.Experiments(), j.Runs()
	s := openStore(t, src.path)
	defer s.(io.Closer).Close()
	arts := must(artifact.NewLocal(src.arts))

	page := must(s.SearchExperiments(ctx, tracking.ExperimentQuery{ViewType: tracking.AllViews, MaxResults: 100}))
	if len(page.Experiments) != 4 || countDestination(t, c) != 4 {
		t.Fatalf("experiments: source %d, destination %d", len(page.Experiments), countDestination(t, c))
	}
	artifactFiles := 0
	for _, e := range page.Experiments {
		de := must(c.GetExperiment(ctx, exps[e.ExperimentID]))
		if de.Name != e.Name || de.LifecycleStage != e.LifecycleStage {
			t.Errorf("experiment %s: %+v, want %+v", e.ExperimentID, de, e)
		}
		eqMap(t, "experiment "+e.Name+" tags", tagMap(e.Tags, func(x tracking.Tag) (string, string) { return x.Key, x.Value }),
			tagMap(de.Tags, func(x mlflowclient.Tag) (string, string) { return x.Key, x.Value }))
		rp := must(s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{e.ExperimentID}, ViewType: tracking.AllViews, MaxResults: 100}))
		dstCount := 0
		check(t, c.EachRun(ctx, []string{de.ExperimentID}, mlflowclient.AllViews, func(mlflowclient.Run) error { dstCount++; return nil }))
		if dstCount != len(rp.Runs) {
			t.Errorf("experiment %s: %d runs at the destination, want %d", e.Name, dstCount, len(rp.Runs))
		}
		for _, r := range rp.Runs {
			id := r.Info.RunID
			newID, ok := runs[id]
			if !ok {
				t.Errorf("run %s is not in the id map", id)
				continue
			}
			dr := must(c.GetRun(ctx, newID))
			di := dr.Info
			if di.ExperimentID != de.ExperimentID || di.RunName != r.Info.RunName || di.Status != r.Info.Status ||
				int64(di.StartTime) != r.Info.StartTime || int64(di.EndTime) != r.Info.EndTime || di.LifecycleStage != r.Info.LifecycleStage {
				t.Errorf("run %s info: %+v, want %+v", r.Info.RunName, di, r.Info)
			}
			eqMap(t, "params of "+r.Info.RunName, tagMap(r.Data.Params, func(x tracking.Param) (string, string) { return x.Key, x.Value }),
				tagMap(dr.Data.Params, func(x mlflowclient.Param) (string, string) { return x.Key, x.Value }))
			wantTags := tagMap(r.Data.Tags, func(x tracking.Tag) (string, string) { return x.Key, x.Value })
			if p, ok := wantTags[tracking.TagParentRunID]; ok {
				wantTags[tracking.TagParentRunID] = runs[p]
			}
			if h, ok := wantTags[tracking.TagLogModelHistory]; ok {
				if !strings.Contains(h, id) {
					t.Fatalf("the seeded model history does not name its run: %s", h)
				}
				wantTags[tracking.TagLogModelHistory] = strings.ReplaceAll(h, id, newID)
			}
			eqMap(t, "tags of "+r.Info.RunName, wantTags, tagMap(dr.Data.Tags, func(x mlflowclient.Tag) (string, string) { return x.Key, x.Value }))
			eqMap(t, "latest metrics of "+r.Info.RunName,
				tagMap(r.Data.Metrics, func(x tracking.Metric) (string, string) {
					return x.Key, fmt.Sprint(fmtValue(x.Value), x.Step, x.Timestamp)
				}),
				tagMap(dr.Data.Metrics, func(x mlflowclient.Metric) (string, string) {
					return x.Key, fmt.Sprint(fmtValue(float64(x.Value)), int64(x.Step), int64(x.Timestamp))
				}))
			for _, m := range r.Data.Metrics {
				var want, got []pointKey
				check(t, s.MetricHistory(ctx, id, m.Key, 1000, func(ps []tracking.Metric) error {
					for _, p := range ps {
						want = append(want, pointKey{p.Step, p.Timestamp, fmtValue(p.Value)})
					}
					return nil
				}))
				check(t, c.EachMetricPage(ctx, newID, m.Key, func(ps []mlflowclient.Metric) error {
					for _, p := range ps {
						got = append(got, pointKey{int64(p.Step), int64(p.Timestamp), fmtValue(float64(p.Value))})
					}
					return nil
				}))
				for _, l := range [][]pointKey{want, got} {
					sort.Slice(l, func(a, b int) bool {
						if l[a].step != l[b].step {
							return l[a].step < l[b].step
						}
						if l[a].ts != l[b].ts {
							return l[a].ts < l[b].ts
						}
						return l[a].val < l[b].val
					})
				}
				if fmt.Sprint(want) != fmt.Sprint(got) {
					t.Errorf("history of %s/%s: %d points, want %d (or values differ)", r.Info.RunName, m.Key, len(got), len(want))
				}
			}
			dsKey := func(name, digest, st, source, schema, profile string, tags map[string]string) string {
				return fmt.Sprint(name, digest, st, source, schema, profile, tags)
			}
			var wantDS, gotDS []string
			for _, in := range r.Inputs.DatasetInputs {
				wantDS = append(wantDS, dsKey(in.Dataset.Name, in.Dataset.Digest, in.Dataset.SourceType, in.Dataset.Source, in.Dataset.Schema, in.Dataset.Profile,
					tagMap(in.Tags, func(x tracking.Tag) (string, string) { return x.Key, x.Value })))
			}
			if dr.Inputs != nil {
				for _, in := range dr.Inputs.DatasetInputs {
					gotDS = append(gotDS, dsKey(in.Dataset.Name, in.Dataset.Digest, in.Dataset.SourceType, in.Dataset.Source, in.Dataset.Schema, in.Dataset.Profile,
						tagMap(in.Tags, func(x mlflowclient.Tag) (string, string) { return x.Key, x.Value })))
				}
			}
			sort.Strings(wantDS)
			sort.Strings(gotDS)
			if fmt.Sprint(wantDS) != fmt.Sprint(gotDS) {
				t.Errorf("datasets of %s: %v, want %v", r.Info.RunName, gotDS, wantDS)
			}
			// Artifacts, by sha256.
			srcRoot, _ := artifact.URIPath(r.Info.ArtifactURI)
			dstRoot, ok := mlflowclient.ProxiedPath(di.ArtifactURI)
			if !ok {
				t.Fatalf("destination artifact URI %q", di.ArtifactURI)
			}
			want := map[string]string{}
			var walk func(p string)
			walk = func(p string) {
				for _, f := range must(arts.List(ctx, p)) {
					if f.IsDir {
						walk(f.Path)
						continue
					}
					o := must(arts.Open(ctx, f.Path))
					want[strings.TrimPrefix(f.Path, srcRoot+"/")] = sha(o)
					o.Close()
				}
			}
			walk(srcRoot)
			artifactFiles += len(want)
			got := map[string]string{}
			check(t, c.WalkRunArtifacts(ctx, newID, func(f mlflowclient.FileInfo) error {
				rc, _, err := c.DownloadProxied(ctx, dstRoot+"/"+f.Path)
				if err != nil {
					return err
				}
				defer rc.Close()
				got[f.Path] = sha(rc)
				return nil
			}))
			eqMap(t, "artifacts of "+r.Info.RunName, want, got)
		}
	}
	if artifactFiles != src.files {
		t.Errorf("compared %d artifact files, wrote %d", artifactFiles, src.files)
	}

	// Registry.
	for _, name := range []string{"m1", "m2 empty"} {
		sm := must(s.GetRegisteredModel(ctx, name))
		dm := must(c.GetRegisteredModel(ctx, name))
		if dm.Description != sm.Description {
			t.Errorf("model %s description %q, want %q", name, dm.Description, sm.Description)
		}
		eqMap(t, "tags of model "+name, tagMap(sm.Tags, func(x tracking.Tag) (string, string) { return x.Key, x.Value }),
			tagMap(dm.Tags, func(x mlflowclient.Tag) (string, string) { return x.Key, x.Value }))
		versions := j.Versions(name)
		wantAliases := map[string]string{}
		for _, a := range sm.Aliases {
			wantAliases[a.Alias] = versions[a.Version]
		}
		eqMap(t, "aliases of "+name, wantAliases, tagMap(dm.Aliases, func(x mlflowclient.RegisteredModelAlias) (string, string) { return x.Alias, x.Version }))
		n := 0
		check(t, c.EachModelVersion(ctx, "name = '"+name+"'", func(mlflowclient.ModelVersion) error { n++; return nil }))
		if n != len(versions) {
			t.Errorf("model %s: %d versions at the destination, %d mapped", name, n, len(versions))
		}
	}
	if want := map[string]string{"1": "1", "2": "2", "4": "3"}; fmt.Sprint(j.Versions("m1")) != fmt.Sprint(want) {
		t.Errorf("version map %v, want %v", j.Versions("m1"), want)
	}
	for oldV, newV := range j.Versions("m1") {
		sv := must(s.GetModelVersion(ctx, "m1", parseInt(oldV)))
		dv := must(c.GetModelVersion(ctx, "m1", newV))
		newRun := runs[sv.RunID]
		wantSource := sv.Source
		if strings.HasPrefix(sv.Source, "runs:/") {
			wantSource = "runs:/" + newRun + "/model"
		} else {
			nr := must(c.GetRun(ctx, newRun))
			wantSource = nr.Info.ArtifactURI + "/model"
		}
		if dv.Source != wantSource || dv.RunID != newRun || dv.CurrentStage != sv.CurrentStage || dv.Description != sv.Description {
			t.Errorf("version %s -> %s: %+v; want source %s run %s stage %s description %q", oldV, newV, dv, wantSource, newRun, sv.CurrentStage, sv.Description)
		}
		eqMap(t, "tags of m1/"+oldV, tagMap(sv.Tags, func(x tracking.Tag) (string, string) { return x.Key, x.Value }),
			tagMap(dv.Tags, func(x mlflowclient.Tag) (string, string) { return x.Key, x.Value }))
	}
}

func parseInt(s string) int64 {
	var n int64
	_, _ = fmt.Sscan(s, &n)
	return n
}

// TestExportSelectedExperiments exports one experiment by name: only its
// runs, and only the registry versions of its runs, reach the
// destination. Wrong credentials stop the export (they are not a problem
// of one record), and an unknown experiment is an error.
func TestExportSelectedExperiments(t *testing.T) {
	dir := t.TempDir()
	src := seed(t, dir)
	d := startDestination(t, dir)
	ctx := context.Background()

	bad := map[string]string{}
	for k, v := range d.env {
		bad[k] = v
	}
	bad[mlflowclient.EnvPassword] = "wrong-password-xyz"
	_, out, err := d.run(t, ctx, src, filepath.Join(dir, "bad.jsonl"), func(c *exportcmd.Config) { c.Lookup = lookup(bad) })
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: %v\n%s", err, out)
	}
	if strings.Contains(out+err.Error(), "wrong-password-xyz") || strings.Contains(out+err.Error(), rootPassword) {
		t.Fatal("a password is in the output")
	}
	if _, _, err := d.run(t, ctx, src, filepath.Join(dir, "none.jsonl"), func(c *exportcmd.Config) { c.Experiments = []string{"nope"} }); err == nil ||
		!strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown experiment: %v", err)
	}

	idMap := filepath.Join(dir, "ids.jsonl")
	rep, out, err := d.run(t, ctx, src, idMap, func(c *exportcmd.Config) { c.Experiments = []string{"vision"} })
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Exported.Experiments != 1 || rep.Exported.Runs != 6 || rep.Exported.ModelVersions != 3 || rep.Exported.RegisteredModels != 1 || len(rep.Problems) != 0 {
		t.Fatalf("report: %+v, problems %v\n%s", rep.Exported, rep.Problems, out)
	}
	names := map[string]bool{}
	check(t, d.client.EachExperiment(ctx, mlflowclient.AllViews, func(e mlflowclient.Experiment) error { names[e.Name] = true; return nil }))
	if len(names) != 2 || !names["vision"] || !names["Default"] {
		t.Fatalf("destination experiments: %v", names)
	}
	if _, err := d.client.GetRegisteredModel(ctx, "m2 empty"); !mlflowclient.IsNotFound(err) {
		t.Fatalf("a model without versions of the selected runs was exported: %v", err)
	}
}

// TestExportFromPostgres exports a PostgreSQL store (the source can be
// served while it is exported) and compares as above.
func TestExportFromPostgres(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	dir := t.TempDir()
	src := seedURI(t, dir, uri)
	d := startDestination(t, dir)
	idMap := filepath.Join(dir, "ids.jsonl")
	rep, out, err := d.run(t, context.Background(), src, idMap, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Problems) != 0 || rep.Exported.Runs != 8 {
		t.Fatalf("report: %+v %v", rep.Exported, rep.Problems)
	}
	compare(t, src, d.client, idMap)
}
