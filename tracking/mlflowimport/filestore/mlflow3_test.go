package filestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// The ids of the hand-made MLflow 3 fixture
// (testdata/mlflow-fixtures/handmade-mlflow3, see its README).
const (
	hmRun      = "5f0c3e6a1d2b4c8e9f7a6b5c4d3e2f10"
	hmModel    = "m-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	hmDeleted  = "m-ffffffffffffffffffffffffffffffff"
	hmTraceV3  = "tr-1f2e3d4c5b6a79880716253443526170"
	hmTraceV2  = "0e1d2c3b4a5968778695a4b3c2d1e0f0"
	hmFixture  = "handmade-mlflow3"
	hmModelURI = "mlflow-artifacts:/1/models/" + hmModel + "/artifacts"
)

func copyHandmade(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "mlruns")
	out, err := exec.Command("cp", "-a", filepath.Join(importtest.Dir(t), hmFixture, "mlruns"), dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// checkHandmade compares dst with what the hand-made fixture holds.
func checkHandmade(t *testing.T, dst tracking.Store, root, arts string) {
	t.Helper()
	ctx := context.Background()
	m, err := dst.GetLoggedModel(ctx, hmModel)
	if err != nil {
		t.Fatalf("logged model: %v", err)
	}
	i := m.Info
	if i.ExperimentID != "1" || i.Name != "handmade-model" || i.ArtifactURI != hmModelURI || i.CreationTimestampMs != 1700000000500 ||
		i.LastUpdatedTimestampMs != 1700000003000 || i.Status != tracking.LoggedModelStatusReady || i.ModelType != "sklearn" ||
		i.SourceRunID != hmRun || i.StatusMessage != "" {
		t.Errorf("logged model info: %+v", i)
	}
	if tagMap(i.Tags)["mlflow.user"] != "alice" || len(m.Data.Params) != 1 || m.Data.Params[0] != (tracking.Param{Key: "alpha", Value: "0.5"}) {
		t.Errorf("logged model tags/params: %+v %+v", i.Tags, m.Data.Params)
	}
	var withDataset, plain bool
	for _, x := range m.Data.Metrics {
		withDataset = withDataset || (x.Key == "accuracy" && x.Value == 0.93 && x.Step == 2 && x.Timestamp == 1700000002500 &&
			x.RunID == hmRun && x.DatasetName == "eval_ds" && x.DatasetDigest == "1a2b3c4d")
		plain = plain || (x.Key == "accuracy" && x.Value == 0.95 && x.Step == 3 && x.RunID == hmRun && x.DatasetName == "")
	}
	if len(m.Data.Metrics) != 2 || !withDataset || !plain {
		t.Errorf("logged model metrics: %+v", m.Data.Metrics)
	}
	if _, err := dst.GetLoggedModel(ctx, hmDeleted); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		t.Errorf("the deleted logged model: %v", err)
	}

	r, err := dst.GetRun(ctx, hmRun)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(r.Inputs.ModelInputs) != 1 || r.Inputs.ModelInputs[0].ModelID != hmModel ||
		r.Outputs == nil || len(r.Outputs.ModelOutputs) != 1 || r.Outputs.ModelOutputs[0] != (tracking.ModelOutput{ModelID: hmModel, Step: 2}) {
		t.Errorf("run model inputs/outputs: %+v %+v", r.Inputs, r.Outputs)
	}
	if len(r.Data.Metrics) != 1 || !math.IsNaN(r.Data.Metrics[0].Value) || r.Data.Metrics[0].Step != 2 {
		t.Errorf("latest metrics: %+v", r.Data.Metrics)
	}
	var n int
	if err := dst.MetricHistory(ctx, hmRun, "loss", 100, func(ms []tracking.Metric) error { n += len(ms); return nil }); err != nil || n != 3 {
		t.Errorf("history: %d points, %v", n, err)
	}

	tr, err := dst.GetTraceInfo(ctx, hmTraceV3)
	if err != nil {
		t.Fatalf("trace: %v", err)
	}
	if tr.ExperimentID != "1" || tr.TimestampMs != 1700000000250 || tr.ExecutionTimeMs != 1250 || tr.Status != tracking.TraceStatusOK ||
		tr.ClientRequestID != "client-42" || tr.RequestPreview != `{"q": "hi"}` || tr.ResponsePreview != `"hello"` {
		t.Errorf("trace: %+v", tr)
	}
	tags, md := tagMap(tr.Tags), tagMap(tr.RequestMetadata)
	wantLoc := "mlflow-artifacts:/1/traces/" + hmTraceV3 + "/artifacts"
	if tags["mlflow.traceName"] != "chat" || tags[tracking.TraceTagArtifactLocation] != wantLoc ||
		md["mlflow.sourceRun"] != hmRun || md["mlflow.trace_schema.version"] != "3" {
		t.Errorf("trace tags %v metadata %v", tags, md)
	}
	if len(tr.Assessments) != 1 {
		t.Fatalf("assessments: %+v", tr.Assessments)
	}
	a := tr.Assessments[0]
	var fb, src map[string]any
	_ = json.Unmarshal(a.Feedback, &fb)
	_ = json.Unmarshal(a.Source, &src)
	if a.AssessmentID != "a-0123456789abcdef0123456789abcdef" || a.AssessmentName != "correctness" || a.TraceID != hmTraceV3 ||
		a.CreateTimeMs != 1700000005000 || a.LastUpdateTimeMs != 1700000006500 || a.Rationale != "looks right" || !a.Valid ||
		a.Metadata["reviewer"] != "alice" || fb["value"] != true || src["source_type"] != "HUMAN" || src["source_id"] != "alice" {
		t.Errorf("assessment: %+v feedback %s source %s", a, a.Feedback, a.Source)
	}
	t2, err := dst.GetTraceInfo(ctx, hmTraceV2)
	if err != nil || t2.Status != tracking.TraceStatusError || t2.TimestampMs != 1700000005000 || t2.ExecutionTimeMs != 300 ||
		tagMap(t2.Tags)["mlflow.traceName"] != "legacy" {
		t.Errorf("2.x trace: %+v %v", t2, err)
	}

	if arts == "" {
		return
	}
	same := func(from, to string) {
		t.Helper()
		a, err1 := os.ReadFile(filepath.Join(root, "1", from))
		b, err2 := os.ReadFile(filepath.Join(arts, "1", to))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("artifact %s -> %s: %v %v", from, to, err1, err2)
		}
	}
	same(hmRun+"/artifacts/notes.txt", hmRun+"/artifacts/notes.txt")
	same(hmRun+"/artifacts/sub/data.csv", hmRun+"/artifacts/sub/data.csv")
	same("models/"+hmModel+"/artifacts/MLmodel", "models/"+hmModel+"/artifacts/MLmodel")
	same("models/"+hmModel+"/artifacts/model.pkl", "models/"+hmModel+"/artifacts/model.pkl")
	same("traces/"+hmTraceV3+"/artifacts/traces.json", "traces/"+hmTraceV3+"/artifacts/traces.json")
	same("traces/"+hmTraceV2+"/artifacts/traces.json", "traces/"+hmTraceV2+"/artifacts/traces.json")
}

func tagMap(ts []tracking.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

// testHandmade imports the hand-made MLflow 3 store twice into dst: the
// second import writes nothing.
func testHandmade(t *testing.T, dst mlflowimport.Destination) {
	ctx := context.Background()
	root := copyHandmade(t)
	arts := t.TempDir()
	rep, err := importInto(t, ctx, root, dst, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Imported.Runs != 1 || rep.Imported.LoggedModels != 1 || rep.Imported.Traces != 2 || rep.Imported.MetricPoints != 3 ||
		rep.ArtifactFiles != 6 {
		t.Fatalf("imported %+v, %d artifact files", rep.Imported, rep.ArtifactFiles)
	}
	checkHandmade(t, dst, root, arts)

	before, err := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = importInto(t, ctx, root, dst, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported.Runs != 0 || rep.Imported.LoggedModels != 0 || rep.Imported.Traces != 0 || rep.Imported.MetricPoints != 0 ||
		rep.SkippedRuns != 1 || rep.SkippedLoggedModels != 1 || rep.SkippedTraces != 2 || rep.ArtifactFiles != 0 ||
		rep.ArtifactsSkipped != 6 || len(rep.Problems) != 0 {
		t.Fatalf("second import: %+v", rep)
	}
	after, err := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Fatalf("second import changed the store: %+v -> %+v", before, after)
	}
	checkHandmade(t, dst, root, arts)
}

func TestImportMLflow3FileStore(t *testing.T) { testHandmade(t, openBolt(t)) }

func TestImportMLflow3FileStorePostgres(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	s, err := pgstore.Open(ctx, uri, pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.EnsureDefaultExperiment(ctx, "mlflow-artifacts:/"); err != nil {
		t.Fatal(err)
	}
	testHandmade(t, s)
}

// TestImportMLflow3Corrupt: a logged model or a trace whose file is
// broken is a problem, skipped; the rest comes in.
func TestImportMLflow3Corrupt(t *testing.T) {
	root := copyHandmade(t)
	for _, p := range []string{
		filepath.Join(root, "1", "models", hmModel, "meta.yaml"),
		filepath.Join(root, "1", "traces", hmTraceV2, "trace_info.yaml"),
	} {
		if err := os.WriteFile(p, []byte("name: [unclosed\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dst := openBolt(t)
	rep, err := importInto(t, context.Background(), root, dst, mlflowimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, p := range rep.Problems {
		kinds[p.Kind] = p.ID
	}
	if len(rep.Problems) != 2 || kinds["logged model"] != hmModel || kinds["trace"] != hmTraceV2 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Imported.Runs != 1 || rep.Imported.Traces != 1 || rep.Imported.LoggedModels != 0 {
		t.Fatalf("imported: %+v", rep.Imported)
	}
}
