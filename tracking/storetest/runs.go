package storetest

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func testRuns(t *testing.T, f Factory) {
	t.Run("Lifecycle", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "runs")
		r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, UserID: "alice", RunName: "first", StartTime: 1700000000000,
			Tags: []tracking.Tag{{Key: "team", Value: "go"}}})
		ok(t, err)
		id := r.Info.RunID
		if !hex32.MatchString(id) || r.Info.RunUUID != id {
			t.Fatalf("run id %q", id)
		}
		if r.Info.ArtifactURI != "mlflow-artifacts:/"+exp+"/"+id+"/artifacts" || r.Info.Status != "RUNNING" ||
			r.Info.LifecycleStage != "active" || r.Info.UserID != "alice" || r.Info.ExperimentID != exp || r.Info.RunName != "first" ||
			r.Info.StartTime != 1700000000000 || r.Info.EndTime != 0 {
			t.Fatalf("%+v", r.Info)
		}
		if m := tagMap(r.Data.Tags); m["mlflow.runName"] != "first" || m["team"] != "go" || len(m) != 2 {
			t.Fatalf("%+v", r.Data.Tags)
		}
		got, err := s.GetRun(bg, id)
		ok(t, err)
		if got.Info != r.Info {
			t.Fatalf("get %+v, created %+v", got.Info, r.Info)
		}
		// Run name from the tag alone.
		r2, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: "from-tag"}}})
		ok(t, err)
		if r2.Info.RunName != "from-tag" {
			t.Fatal(r2.Info)
		}
		// Default experiment via empty id.
		r3, err := s.CreateRun(bg, tracking.CreateRun{RunName: "d"})
		ok(t, err)
		if r3.Info.ExperimentID != "0" || !strings.HasPrefix(r3.Info.ArtifactURI, "mlflow-artifacts:/0/") {
			t.Fatal(r3.Info)
		}

		_, err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: "999"})
		wantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=999 exists")
		_, err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: "abc"})
		wantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=abc exists")
		_, err = s.GetRun(bg, missingRun)
		wantErr(t, err, tracking.ResourceDoesNotExist, "Run with id="+missingRun+" not found")
		_, err = s.GetRun(bg, "not-a-run")
		wantErr(t, err, tracking.ResourceDoesNotExist, "Run with id=not-a-run not found")

		// Update.
		st, et, nm := "FINISHED", int64(-5), "renamed"
		info, err := s.UpdateRun(bg, id, tracking.UpdateRun{Status: &st, EndTime: &et, RunName: &nm})
		ok(t, err)
		if info.Status != "FINISHED" || info.EndTime != -5 || info.RunName != "renamed" {
			t.Fatal(info)
		}
		empty := ""
		info, err = s.UpdateRun(bg, id, tracking.UpdateRun{RunName: &empty})
		ok(t, err)
		if info.RunName != "renamed" {
			t.Fatal(info)
		}
		got, _ = s.GetRun(bg, id)
		if tagMap(got.Data.Tags)["mlflow.runName"] != "renamed" || got.Info.EndTime != -5 || got.Info.Status != "FINISHED" {
			t.Fatal(got)
		}
		_, err = s.UpdateRun(bg, missingRun, tracking.UpdateRun{Status: &st})
		wantErr(t, err, tracking.ResourceDoesNotExist, "")

		// mlflow.runName tag renames the run; an empty value is ignored.
		ok(t, s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "mlflow.runName", Value: "by-tag"}}}))
		ok(t, s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "mlflow.runName", Value: ""}}}))
		got, _ = s.GetRun(bg, id)
		if got.Info.RunName != "by-tag" || tagMap(got.Data.Tags)["mlflow.runName"] != "by-tag" {
			t.Fatal(got.Info, got.Data.Tags)
		}

		// Tags: upsert and delete.
		ok(t, s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "team", Value: "platform"}, {Key: "k", Value: "1"}, {Key: "k", Value: "2"}}}))
		got, _ = s.GetRun(bg, id)
		if m := tagMap(got.Data.Tags); m["team"] != "platform" || m["k"] != "2" {
			t.Fatal(m)
		}
		ok(t, s.DeleteTag(bg, id, "k"))
		wantErr(t, s.DeleteTag(bg, id, "k"), tracking.ResourceDoesNotExist, "No tag with name: k in run with id "+id)
		wantErr(t, s.DeleteTag(bg, missingRun, "k"), tracking.ResourceDoesNotExist, "Run with id="+missingRun+" not found")

		// Delete (twice) and writes to a deleted run.
		within := nowWindow(t)
		ok(t, s.DeleteRun(bg, id))
		ok(t, s.DeleteRun(bg, id))
		notActive := "The run " + id + " must be in the 'active' state. Current state is deleted."
		wantErr(t, s.LogParam(bg, id, tracking.Param{Key: "p", Value: "v"}), tracking.InvalidParameterValue, notActive)
		wantErr(t, s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "a"}}}), tracking.InvalidParameterValue, notActive)
		wantErr(t, s.LogBatch(bg, id, tracking.Batch{}), tracking.InvalidParameterValue, notActive)
		_, err = s.UpdateRun(bg, id, tracking.UpdateRun{Status: &st})
		wantErr(t, err, tracking.InvalidParameterValue, notActive)
		wantErr(t, s.DeleteTag(bg, id, "team"), tracking.InvalidParameterValue, notActive)
		wantErr(t, s.LogInputs(bg, id, nil, nil), tracking.InvalidParameterValue, notActive)
		wantErr(t, s.AppendModelHistory(bg, id, []byte(`{}`)), tracking.InvalidParameterValue, notActive)
		got, err = s.GetRun(bg, id)
		ok(t, err)
		if got.Info.LifecycleStage != "deleted" {
			t.Fatal(got.Info)
		}
		within("deleted_time", got.Info.DeletedTime)
		ok(t, s.RestoreRun(bg, id))
		ok(t, s.RestoreRun(bg, id)) // restoring an active run is fine
		got, _ = s.GetRun(bg, id)
		if got.Info.LifecycleStage != "active" || got.Info.DeletedTime != 0 {
			t.Fatal(got.Info)
		}
		wantErr(t, s.DeleteRun(bg, missingRun), tracking.ResourceDoesNotExist, "")
		wantErr(t, s.RestoreRun(bg, missingRun), tracking.ResourceDoesNotExist, "")

		// Runs cannot be created in a deleted experiment.
		ok(t, s.DeleteExperiment(bg, exp))
		_, err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp})
		wantErr(t, err, tracking.InvalidParameterValue, "The experiment "+exp+" must be in the 'active' state. Current state is deleted.")
	})

	t.Run("InputsAndModelHistory", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "in")
		a, b := mkRun(t, s, exp, "a", 0), mkRun(t, s, exp, "b", 1)
		train := tracking.Dataset{Name: "train", Digest: "abc123", SourceType: "s3", Source: `{"uri": "s3://b/train.csv"}`, Schema: "{}", Profile: "{}"}
		ok(t, s.LogInputs(bg, a, []tracking.DatasetInput{
			{Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: "training"}}, Dataset: train},
			{Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: "dup"}}, Dataset: train},
			{Dataset: tracking.Dataset{Name: "eval", Digest: "e1", SourceType: "code", Source: "{}"}},
		}, []tracking.ModelInput{{ModelID: "m-1"}, {ModelID: "m-1"}}))
		ok(t, s.LogInputs(bg, a, []tracking.DatasetInput{{Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: "again"}}, Dataset: train}}, nil))
		changed := train
		changed.Source = "other"
		ok(t, s.LogInputs(bg, b, []tracking.DatasetInput{{Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: "testing"}}, Dataset: changed}}, nil))
		ok(t, s.LogInputs(bg, b, nil, nil))
		wantErr(t, s.LogInputs(bg, missingRun, nil, nil), tracking.ResourceDoesNotExist, "")

		ra, _ := s.GetRun(bg, a)
		if len(ra.Inputs.DatasetInputs) != 2 || len(ra.Inputs.ModelInputs) != 1 || ra.Inputs.ModelInputs[0].ModelID != "m-1" {
			t.Fatalf("%+v", ra.Inputs)
		}
		for _, in := range ra.Inputs.DatasetInputs {
			if in.Dataset.Name == "train" && (tagMap(in.Tags)["mlflow.data.context"] != "training" || in.Dataset != train) {
				t.Fatalf("%+v", in)
			}
			if in.Dataset.Name == "eval" && len(in.Tags) != 0 {
				t.Fatalf("%+v", in)
			}
		}
		rb, _ := s.GetRun(bg, b)
		// A dataset is stored once per experiment (name, digest): the
		// second run's changed source does not replace the first.
		if len(rb.Inputs.DatasetInputs) != 1 || rb.Inputs.DatasetInputs[0].Dataset.Source != train.Source ||
			tagMap(rb.Inputs.DatasetInputs[0].Tags)["mlflow.data.context"] != "testing" {
			t.Fatalf("%+v", rb.Inputs)
		}
		// datasets.* filters see name, digest and context.
		f, err := search.ParseRunFilter("datasets.context = 'testing' AND datasets.name = 'train'")
		ok(t, err)
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f}); strings.Join(ids, ",") != "b" {
			t.Fatal(ids)
		}
		f, err = search.ParseRunFilter("datasets.digest = 'e1'")
		ok(t, err)
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f}); strings.Join(ids, ",") != "a" {
			t.Fatal(ids)
		}

		// Model history.
		m1 := `{"run_id": "x", "artifact_path": "model"}`
		m2 := `{"run_id": "x", "artifact_path": "raw-model"}`
		ok(t, s.AppendModelHistory(bg, a, []byte(m1)))
		ok(t, s.AppendModelHistory(bg, a, []byte(m2)))
		ra, _ = s.GetRun(bg, a)
		if v := tagMap(ra.Data.Tags)["mlflow.log-model.history"]; v != "["+m1+", "+m2+"]" {
			t.Fatalf("history tag %q", v)
		}
		wantErr(t, s.AppendModelHistory(bg, a, []byte("not json")), tracking.InvalidParameterValue, "")
		ok(t, s.LogBatch(bg, b, tracking.Batch{Tags: []tracking.Tag{{Key: "mlflow.log-model.history", Value: "[]"}}}))
		ok(t, s.AppendModelHistory(bg, b, []byte(m1)))
		ok(t, s.LogBatch(bg, a, tracking.Batch{Tags: []tracking.Tag{{Key: "mlflow.log-model.history", Value: "garbage"}}}))
		wantErr(t, s.AppendModelHistory(bg, a, []byte(m1)), tracking.InvalidParameterValue, "")
		rb, _ = s.GetRun(bg, b)
		if v := tagMap(rb.Data.Tags)["mlflow.log-model.history"]; v != "["+m1+"]" {
			t.Fatalf("history tag %q", v)
		}
		wantErr(t, s.AppendModelHistory(bg, missingRun, []byte(m1)), tracking.ResourceDoesNotExist, "")
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := open(t, f)
		ctx, cancel := context.WithCancel(bg)
		cancel()
		if _, err := s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "x"}); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if _, err := s.GetExperimentByName(bg, "x"); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			t.Fatalf("a canceled create wrote: %v", err)
		}
		if _, err := s.GetExperiment(ctx, "0"); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if err := s.MetricHistory(ctx, "r", "k", 1, func([]tracking.Metric) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	})

	// Odd inputs must produce errors or empty results, never panics.
	t.Run("OddInputs", func(t *testing.T) {
		s := open(t, f)
		long := strings.Repeat("a", 1000)
		for _, id := range []string{"", long, "\x00", "-1", "18446744073709551616", "+1"} {
			if _, err := s.GetRun(bg, id); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				t.Fatalf("GetRun(%q): %v", id, err)
			}
			if id != "" {
				if _, err := s.GetExperiment(bg, id); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
					t.Fatalf("GetExperiment(%q): %v", id, err)
				}
			}
			_ = s.LogBatch(bg, id, tracking.Batch{Metrics: []tracking.Metric{{Key: long}}})
			_ = s.MetricHistory(bg, id, long, -5, func([]tracking.Metric) error { return nil })
			_, _ = s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{id}, MaxResults: -1})
		}
		// Empty keys and values and extreme numbers round-trip.
		run := mkRun(t, s, "0", "r", math.MinInt64)
		ok(t, s.LogBatch(bg, run, tracking.Batch{
			Metrics: []tracking.Metric{{Key: "", Value: math.NaN(), Timestamp: math.MinInt64, Step: math.MaxInt64}},
			Params:  []tracking.Param{{Key: "", Value: ""}},
			Tags:    []tracking.Tag{{Key: "", Value: ""}},
		}))
		r, err := s.GetRun(bg, run)
		ok(t, err)
		if len(r.Data.Metrics) != 1 || r.Data.Metrics[0].Step != math.MaxInt64 || r.Data.Metrics[0].Timestamp != math.MinInt64 ||
			!math.IsNaN(r.Data.Metrics[0].Value) || r.Info.StartTime != math.MinInt64 {
			t.Fatal(r.Data.Metrics, r.Info)
		}
		if len(r.Data.Params) != 1 || r.Data.Params[0] != (tracking.Param{}) {
			t.Fatal(r.Data.Params)
		}
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{"0"}}); len(ids) != 1 {
			t.Fatal(ids)
		}
		// Text with quotes, backslashes, % and _ is stored as is.
		odd := `it's "50%" _x_ \ ü ` + "\t"
		ok(t, s.LogBatch(bg, run, tracking.Batch{Params: []tracking.Param{{Key: "odd", Value: odd}}, Tags: []tracking.Tag{{Key: "odd", Value: odd}}}))
		r, err = s.GetRun(bg, run)
		ok(t, err)
		if tagMap(r.Data.Tags)["odd"] != odd {
			t.Fatalf("tag %q", tagMap(r.Data.Tags)["odd"])
		}
	})
}
