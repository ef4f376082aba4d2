package storetest

import (
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// RunGC checks the tracking.GarbageCollector contract (what `caddy mlflow
// gc` relies on) on stores of f, which must implement it: listing of
// deleted runs and experiments, refusal of active ones, and what a hard
// delete takes with it and what it leaves (other runs and experiments,
// model versions naming the run).
func RunGC(t *testing.T, f Factory) {
	gcOpen := func(t *testing.T) (tracking.Store, tracking.GarbageCollector) {
		s := open(t, f)
		gc, isGC := s.(tracking.GarbageCollector)
		if !isGC {
			t.Fatalf("storetest: %T does not implement tracking.GarbageCollector", s)
		}
		return s, gc
	}
	fill := func(t *testing.T, s tracking.Store, exp, id string) string {
		t.Helper()
		ok(t, s.LogBatch(bg, id, tracking.Batch{
			Metrics: []tracking.Metric{{Key: "m", Value: 1, Timestamp: 1, Step: 0}, {Key: "m", Value: 2, Timestamp: 2, Step: 1}},
			Params:  []tracking.Param{{Key: "p", Value: "v"}}, Tags: []tracking.Tag{{Key: "t", Value: "v"}}}))
		m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "lm", SourceRunID: id})
		ok(t, err)
		ok(t, s.LogInputs(bg, id, []tracking.DatasetInput{{Dataset: tracking.Dataset{Name: "ds", Digest: "d", SourceType: "local", Source: "{}"}}},
			[]tracking.ModelInput{{ModelID: m.Info.ModelID}}))
		ok(t, s.LogOutputs(bg, id, []tracking.ModelOutput{{ModelID: m.Info.ModelID, Step: 1}}))
		return m.Info.ModelID
	}

	t.Run("HardDeleteRun", func(t *testing.T) {
		s, gc := gcOpen(t)
		exp := mkExp(t, s, "e")
		alive, dead := mkRun(t, s, exp, "alive", 1), mkRun(t, s, exp, "dead", 2)
		fill(t, s, exp, alive)
		fill(t, s, exp, dead)
		mkModel(t, s, "reg")
		_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "reg", Source: "runs:/" + dead + "/model", RunID: dead})
		ok(t, err)

		wantErr(t, gc.HardDeleteRun(bg, alive), tracking.InvalidParameterValue,
			"Run "+alive+" is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can be deleted.")
		wantErr(t, gc.HardDeleteRun(bg, "0123456789abcdef0123456789abcdef"), tracking.ResourceDoesNotExist, "")
		if runs, err := gc.DeletedRuns(bg); err != nil || len(runs) != 0 {
			t.Fatalf("DeletedRuns before any delete = %v, %v", runs, err)
		}
		ok(t, s.DeleteRun(bg, dead))
		runs, err := gc.DeletedRuns(bg)
		ok(t, err)
		if len(runs) != 1 || runs[0].RunID != dead || runs[0].ExperimentID != exp || runs[0].DeletedTime == 0 ||
			runs[0].ArtifactURI != ArtifactRoot+exp+"/"+dead+"/artifacts" || runs[0].LifecycleStage != tracking.LifecycleDeleted {
			t.Fatalf("DeletedRuns = %+v", runs)
		}
		one, err := gc.GCRun(bg, alive)
		ok(t, err)
		if one.LifecycleStage != tracking.LifecycleActive || one.DeletedTime != 0 {
			t.Fatalf("GCRun(alive) = %+v", one)
		}
		ok(t, gc.HardDeleteRun(bg, dead))
		_, err = s.GetRun(bg, dead)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		_, err = gc.GCRun(bg, dead)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		wantErr(t, gc.HardDeleteRun(bg, dead), tracking.ResourceDoesNotExist, "")
		r, err := s.GetRun(bg, alive)
		ok(t, err)
		if len(r.Data.Metrics) != 1 || len(r.Data.Params) != 1 || len(r.Inputs.DatasetInputs) != 1 || len(r.Inputs.ModelInputs) != 1 ||
			r.Outputs == nil || len(r.Outputs.ModelOutputs) != 1 {
			t.Fatalf("the active run changed: %+v %+v %+v", r.Data, r.Inputs, r.Outputs)
		}
		if h := history(t, s, alive, "m"); len(h) != 2 {
			t.Fatalf("active history %v", h)
		}
		// The model version keeps naming the run, as in MLflow.
		mv, err := s.GetModelVersion(bg, "reg", 1)
		ok(t, err)
		if mv.RunID != dead {
			t.Fatalf("model version run_id = %q", mv.RunID)
		}
		// The experiment still takes new runs.
		mkRun(t, s, exp, "after", 3)
	})

	t.Run("HardDeleteExperiment", func(t *testing.T) {
		s, gc := gcOpen(t)
		doomed, kept := mkExp(t, s, "doomed"), mkExp(t, s, "kept")
		d1, d2, k1 := mkRun(t, s, doomed, "a", 1), mkRun(t, s, doomed, "b", 2), mkRun(t, s, kept, "c", 3)
		dm := fill(t, s, doomed, d1)
		fill(t, s, doomed, d2)
		km := fill(t, s, kept, k1)
		ok(t, s.SetExperimentTag(bg, doomed, tracking.Tag{Key: "k", Value: "v"}))
		dt, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: doomed, TimestampMs: 1})
		ok(t, err)
		kt, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: kept, TimestampMs: 1})
		ok(t, err)
		const spanned = "tr-0123456789abcdef0123456789abcdef"
		_, err = s.LogSpans(bg, doomed, []tracking.SpanBatch{{TraceID: spanned, StartMs: 1,
			Spans: []tracking.Span{mkSpan(spanned, "0000000000000001", "", 1e6, 0)}}})
		ok(t, err)

		wantErr(t, gc.HardDeleteExperiment(bg, doomed), tracking.InvalidParameterValue,
			"Experiments ['"+doomed+"'] are not in the deleted lifecycle stage. Only experiments in the deleted lifecycle stage can be hard-deleted.")
		wantErr(t, gc.HardDeleteExperiment(bg, "12345"), tracking.ResourceDoesNotExist, "")
		ok(t, s.DeleteExperiment(bg, doomed))
		ok(t, s.RestoreRun(bg, d2)) // an active run in a deleted experiment goes too (MLflow cascades all runs)
		exps, err := gc.DeletedExperiments(bg)
		ok(t, err)
		if len(exps) != 1 || exps[0].ExperimentID != doomed || exps[0].LastUpdateTime == 0 || exps[0].LifecycleStage != tracking.LifecycleDeleted {
			t.Fatalf("DeletedExperiments = %+v", exps)
		}
		runs, err := gc.ExperimentRuns(bg, doomed)
		ok(t, err)
		if len(runs) != 2 {
			t.Fatalf("ExperimentRuns = %+v", runs)
		}
		_, err = gc.ExperimentRuns(bg, "12345")
		wantErr(t, err, tracking.ResourceDoesNotExist, "")

		ok(t, gc.HardDeleteExperiment(bg, doomed))
		for _, id := range []string{d1, d2} {
			_, err := s.GetRun(bg, id)
			wantErr(t, err, tracking.ResourceDoesNotExist, "")
		}
		_, err = s.GetExperiment(bg, doomed)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		_, err = gc.GCExperiment(bg, doomed)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		if _, err := s.GetLoggedModel(bg, dm); err == nil {
			t.Fatal("a logged model of the hard-deleted experiment survived")
		}
		if _, err := s.GetTraceInfo(bg, dt.RequestID); err == nil {
			t.Fatal("a trace of the hard-deleted experiment survived")
		}
		if ids, _ := readSpans(t, s, spanned, 10); len(ids) != 0 {
			t.Fatalf("spans of the hard-deleted experiment survived: %v", ids)
		}
		// The name is free; the other experiment is untouched.
		mkExp(t, s, "doomed")
		if _, err := s.GetRun(bg, k1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetLoggedModel(bg, km); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTraceInfo(bg, kt.RequestID); err != nil {
			t.Fatal(err)
		}
		if exps, err := gc.DeletedExperiments(bg); err != nil || len(exps) != 0 {
			t.Fatalf("DeletedExperiments after = %+v, %v", exps, err)
		}
	})
}
