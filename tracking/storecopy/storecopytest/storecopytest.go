// Package storecopytest fills a tracking store with every kind of record
// through the public tracking.Store API, and dumps a store field by field
// through its Get methods, so that tests of store copies (any backend to
// any backend) can compare a source with its copy.
package storecopytest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Fixture names what Fill created.
type Fixture struct {
	ExperimentIDs  []string
	RunIDs         []string
	LoggedModelIDs []string
	// Versions lists each registered model's live version numbers.
	Versions map[string][]int64
	TraceIDs []string
	// HistoryKey is a metric of RunIDs[0] with HistoryLen points.
	HistoryKey string
	HistoryLen int
}

// must panics on an error; Fill and Dump turn the panic into t.Fatal
// (a call returning a value and an error cannot be passed with t).
func must[T any](v T, err error) T {
	if err != nil {
		panic(failure{err})
	}
	return v
}

type failure struct{ err error }

// fatalOnPanic reports a must failure as a test failure.
func fatalOnPanic(t testing.TB) {
	if r := recover(); r != nil {
		if f, ok := r.(failure); ok {
			t.Fatal(f.err)
		}
		panic(r)
	}
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Fill writes a store with every record kind: the Default experiment and
// experiments with tags (one deleted, one with a unicode name), runs in
// every lifecycle stage (deleted by themselves and with their experiment)
// with params, tags, NaN and ±Inf metric values, a history of historyLen
// points, dataset and model inputs and outputs; logged models with params,
// tags and metrics; registered models with tags, aliases, stages, a
// deleted highest version and a prompt; traces with tags, metadata,
// assessments and a linked run.
func Fill(t testing.TB, s tracking.Store, historyLen int) *Fixture {
	t.Helper()
	defer fatalOnPanic(t)
	ctx := context.Background()
	f := &Fixture{Versions: map[string][]int64{}, HistoryKey: "loss", HistoryLen: historyLen}
	check(t, s.EnsureDefaultExperiment(ctx, "file:///artifacts"))
	f.ExperimentIDs = append(f.ExperimentIDs, tracking.DefaultExperimentID)
	alpha := must(s.CreateExperiment(ctx, tracking.CreateExperiment{
		Name: "alpha", DefaultArtifactRoot: "file:///artifacts",
		Tags: []tracking.Tag{{Key: "team", Value: "vision"}, {Key: "mlflow.note.content", Value: "notes\nline 2"}},
	}))
	beta := must(s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "beta", ArtifactLocation: "gs://bucket/beta"}))
	gamma := must(s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "γάμμα ☃", DefaultArtifactRoot: "mlflow-artifacts:/"}))
	f.ExperimentIDs = append(f.ExperimentIDs, alpha, beta, gamma)

	lm := must(s.CreateLoggedModel(ctx, tracking.CreateLoggedModel{
		ExperimentID: alpha, Name: "clf", ModelType: "sklearn",
		Params: []tracking.Param{{Key: "C", Value: "0.5"}}, Tags: []tracking.Tag{{Key: "stage", Value: "dev"}},
	}))
	lmID := lm.Info.ModelID
	must(s.FinalizeLoggedModel(ctx, lmID, tracking.LoggedModelStatusReady))
	lm2 := must(s.CreateLoggedModel(ctx, tracking.CreateLoggedModel{ExperimentID: gamma, Name: "other"}))
	f.LoggedModelIDs = append(f.LoggedModelIDs, lmID, lm2.Info.ModelID)

	newRun := func(exp, name string, start int64) string {
		r := must(s.CreateRun(ctx, tracking.CreateRun{
			ExperimentID: exp, UserID: "alice", RunName: name, StartTime: start,
			Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: name}, {Key: tracking.TagUser, Value: "alice"}},
		}))
		f.RunIDs = append(f.RunIDs, r.Info.RunID)
		return r.Info.RunID
	}
	main := newRun(alpha, "main", 1000)
	check(t, s.LogBatch(ctx, main, tracking.Batch{
		Params: []tracking.Param{{Key: "lr", Value: "0.01"}, {Key: "layers", Value: "3"}},
		Tags:   []tracking.Tag{{Key: "phase", Value: "train"}},
		Metrics: []tracking.Metric{
			{Key: "nan", Value: math.NaN(), Timestamp: 5, Step: 0},
			{Key: "inf", Value: math.Inf(1), Timestamp: 5, Step: 0},
			{Key: "inf", Value: math.Inf(-1), Timestamp: 6, Step: 1},
			{Key: "neg", Value: -0.25, Timestamp: 7, Step: -3},
		},
		ModelMetrics: []tracking.ModelMetric{
			{Key: "auc", Value: 0.91, Timestamp: 8, Step: 1, ModelID: lmID, DatasetName: "val", DatasetDigest: "d1"},
			{Key: "auc", Value: math.NaN(), Timestamp: 9, Step: 2, ModelID: lmID},
		},
	}))
	const chunk = 97
	for start := 0; start < historyLen; start += chunk {
		var ms []tracking.Metric
		for i := start; i < min(start+chunk, historyLen); i++ {
			v := 1 / float64(i+1)
			if i%50 == 7 {
				v = math.NaN()
			}
			ms = append(ms, tracking.Metric{Key: f.HistoryKey, Value: v, Timestamp: int64(10_000 + i/3), Step: int64(i)})
		}
		check(t, s.LogBatch(ctx, main, tracking.Batch{Metrics: ms}))
	}
	check(t, s.LogInputs(ctx, main, []tracking.DatasetInput{
		{Dataset: tracking.Dataset{Name: "train", Digest: "abc", SourceType: "local", Source: `{"uri": "/data/train"}`, Schema: `{"cols": 3}`, Profile: `{"rows": 10}`},
			Tags: []tracking.Tag{{Key: tracking.InputTagContext, Value: "training"}}},
		{Dataset: tracking.Dataset{Name: "val", Digest: "d1", SourceType: "http", Source: `{"url": "https://x/val"}`}},
	}, []tracking.ModelInput{{ModelID: lm2.Info.ModelID}}))
	check(t, s.LogOutputs(ctx, main, []tracking.ModelOutput{{ModelID: lmID, Step: 4}}))
	check(t, s.AppendModelHistory(ctx, main, []byte(`{"run_id": "x", "flavors": {}}`)))
	status, end := tracking.StatusFinished, int64(2000)
	must(s.UpdateRun(ctx, main, tracking.UpdateRun{Status: &status, EndTime: &end}))

	child := newRun(alpha, "child", 1100)
	check(t, s.LogBatch(ctx, child, tracking.Batch{
		Tags:    []tracking.Tag{{Key: tracking.TagParentRunID, Value: main}},
		Metrics: []tracking.Metric{{Key: "acc", Value: 0.5, Timestamp: 1, Step: 1}, {Key: "acc", Value: 0.75, Timestamp: 2, Step: 2}},
	}))
	check(t, s.LogInputs(ctx, child, []tracking.DatasetInput{
		{Dataset: tracking.Dataset{Name: "train", Digest: "abc", SourceType: "local", Source: `{"uri": "/data/train"}`, Schema: `{"cols": 3}`, Profile: `{"rows": 10}`}},
	}, nil))
	gone := newRun(alpha, "gone", 1200)
	check(t, s.LogParam(ctx, gone, tracking.Param{Key: "p", Value: "v"}))
	check(t, s.DeleteRun(ctx, gone))
	for i := range 5 { // more runs than a test page holds
		r := newRun(alpha, fmt.Sprintf("sweep-%d", i), 3000+int64(i%2))
		check(t, s.LogBatch(ctx, r, tracking.Batch{Metrics: []tracking.Metric{{Key: "loss", Value: float64(i), Timestamp: 1, Step: 0}}}))
	}
	betaRun := newRun(beta, "in beta", 500)
	check(t, s.LogParam(ctx, betaRun, tracking.Param{Key: "k", Value: strings.Repeat("v", 600)}))
	check(t, s.DeleteExperiment(ctx, beta))
	newRun(gamma, "", 0)

	// Registry.
	must(s.CreateRegisteredModel(ctx, tracking.CreateRegisteredModel{
		Name: "m1", Description: "the model", Tags: []tracking.Tag{{Key: "owner", Value: "alice"}},
	}))
	for i := 1; i <= 3; i++ {
		must(s.CreateModelVersion(ctx, tracking.CreateModelVersion{
			Name: "m1", Source: fmt.Sprintf("runs:/%s/model", main), RunID: main, UserID: "alice",
			Description: fmt.Sprintf("v%d", i), Tags: []tracking.Tag{{Key: "n", Value: strconv.Itoa(i)}}, ModelID: lmID,
		}))
	}
	must(s.CreateModelVersion(ctx, tracking.CreateModelVersion{
		Name: "m1", Source: "models:/m1/1", StorageLocation: "file:///artifacts/1/" + main + "/artifacts/model",
	}))
	must(s.TransitionModelVersionStage(ctx, "m1", 1, tracking.StageStaging, false))
	must(s.TransitionModelVersionStage(ctx, "m1", 2, tracking.StageProduction, false))
	check(t, s.SetRegisteredModelAlias(ctx, "m1", "champion", 2))
	check(t, s.SetRegisteredModelAlias(ctx, "m1", "old", 4))
	check(t, s.DeleteModelVersion(ctx, "m1", 4)) // the highest: its number must not come back
	check(t, s.SetModelVersionTag(ctx, "m1", 1, tracking.Tag{Key: "validated", Value: "yes"}))
	f.Versions["m1"] = []int64{1, 2, 3}
	must(s.CreateRegisteredModel(ctx, tracking.CreateRegisteredModel{Name: "empty model"}))
	f.Versions["empty model"] = nil
	must(s.CreateRegisteredModel(ctx, tracking.CreateRegisteredModel{
		Name: "prompt1", Tags: []tracking.Tag{{Key: tracking.TagIsPrompt, Value: "true"}},
	}))
	must(s.CreateModelVersion(ctx, tracking.CreateModelVersion{
		Name: "prompt1", Source: "prompt-text", Tags: []tracking.Tag{{Key: tracking.TagIsPrompt, Value: "true"}, {Key: "mlflow.prompt.text", Value: "Hi {{name}}"}},
	}))
	f.Versions["prompt1"] = []int64{1}

	// Traces.
	tr := must(s.StartTrace(ctx, tracking.StartTrace{
		ExperimentID: alpha, TimestampMs: 100,
		RequestMetadata: []tracking.Tag{{Key: tracking.TraceMetadataSourceRun, Value: main}},
		Tags:            []tracking.Tag{{Key: tracking.TraceTagName, Value: "predict"}},
	}))
	must(s.EndTrace(ctx, tracking.EndTrace{RequestID: tr.RequestID, TimestampMs: 150, Status: tracking.TraceStatusOK}))
	check(t, s.SetTraceTag(ctx, tr.RequestID, tracking.Tag{Key: "reviewed", Value: "no"}))
	v3 := must(s.StartTraceV3(ctx, &tracking.TraceInfo{
		RequestID: "tr-0123456789abcdef0123456789abcdef", ExperimentID: alpha, TimestampMs: 200, ExecutionTimeMs: 30,
		Status: tracking.TraceStatusError, ClientRequestID: "client-1", RequestPreview: `{"q": "hi"}`, ResponsePreview: `"hello"`,
		RequestMetadata: []tracking.Tag{{Key: "mlflow.trace_schema.version", Value: "3"}},
	}))
	a := must(s.CreateAssessment(ctx, tracking.Assessment{
		AssessmentName: "correct", TraceID: v3.RequestID, Source: json.RawMessage(`{"source_type":"HUMAN","source_id":"bob"}`),
		Feedback: json.RawMessage(`{"value":true}`), Rationale: "looks right", Metadata: map[string]string{"k": "v"}, Valid: true,
	}))
	must(s.CreateAssessment(ctx, tracking.Assessment{
		AssessmentName: "correct", TraceID: v3.RequestID, Source: json.RawMessage(`{"source_type":"HUMAN","source_id":"carol"}`),
		Expectation: json.RawMessage(`{"value":"hello"}`), Overrides: a.AssessmentID, Valid: true,
	}))
	check(t, s.LinkTracesToRun(ctx, []string{v3.RequestID}, child))
	tg := must(s.StartTrace(ctx, tracking.StartTrace{ExperimentID: gamma, TimestampMs: 300}))
	f.TraceIDs = append(f.TraceIDs, tr.RequestID, v3.RequestID, tg.RequestID)
	return f
}

// Dump reads every record Fill created (f names them) from s through its
// Get methods and MetricHistory, and returns them as text keyed by
// record, with every field (the ones the JSON forms leave out included)
// and NaN as "NaN", so that two dumps compare with ==.
func Dump(t testing.TB, s tracking.Store, f *Fixture) map[string]string {
	t.Helper()
	defer fatalOnPanic(t)
	ctx := context.Background()
	out := map[string]string{}
	put := func(key string, v any, extra ...any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("dump %s: %v", key, err)
		}
		out[key] = string(b) + fmt.Sprint(extra...)
	}
	for _, id := range f.ExperimentIDs {
		put("experiment "+id, must(s.GetExperiment(ctx, id)))
	}
	for _, id := range f.RunIDs {
		r := must(s.GetRun(ctx, id))
		put("run "+id, r, " deleted_time=", r.Info.DeletedTime)
		for _, m := range r.Data.Metrics {
			var pts []string
			check(t, s.MetricHistory(ctx, id, m.Key, 1000, func(ms []tracking.Metric) error {
				for _, p := range ms {
					b, _ := p.MarshalJSON()
					pts = append(pts, string(b))
				}
				return nil
			}))
			out["history "+id+" "+m.Key] = strings.Join(pts, "\n")
		}
	}
	for _, id := range f.LoggedModelIDs {
		put("logged model "+id, must(s.GetLoggedModel(ctx, id)))
	}
	for name, versions := range f.Versions {
		m := must(s.GetRegisteredModel(ctx, name))
		storage := make([]string, len(m.LatestVersions))
		for i, v := range m.LatestVersions {
			storage[i] = v.StorageLocation
		}
		put("registered model "+name, m, " storage=", storage)
		for _, v := range versions {
			mv := must(s.GetModelVersion(ctx, name, v))
			put(fmt.Sprintf("model version %s/%d", name, v), mv, " storage=", mv.StorageLocation)
		}
		for _, a := range m.Aliases {
			mv, err := s.GetModelVersionByAlias(ctx, name, a.Alias)
			if err != nil {
				out["alias "+name+" "+a.Alias] = err.Error()
				continue
			}
			put("alias "+name+" "+a.Alias, mv)
		}
	}
	for _, id := range f.TraceIDs {
		put("trace "+id, must(s.GetTraceInfo(ctx, id)))
	}
	return out
}

// Diff returns the keys whose values differ between two dumps, with both
// values, sorted; empty when they are the same.
func Diff(a, b map[string]string) []string {
	var out []string
	for k, va := range a {
		if vb, ok := b[k]; !ok {
			out = append(out, fmt.Sprintf("%s: missing from the second\n  %s", k, clip(va)))
		} else if va != vb {
			out = append(out, fmt.Sprintf("%s:\n  %s\n  %s", k, clip(va), clip(vb)))
		}
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: missing from the first\n  %s", k, clip(vb)))
		}
	}
	sort.Strings(out)
	return out
}

func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}
