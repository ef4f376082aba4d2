package storetest

import (
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// testImport checks the import marks of tracking.ImportTarget: ImportRun
// marks a run "import pending" with the same write, FinishRunImport
// clears the mark, and an imported run is readable whole in between.
func testImport(t *testing.T, f Factory) {
	target := func(t *testing.T) (tracking.Store, tracking.ImportTarget) {
		s := open(t, f)
		im, isTarget := s.(tracking.ImportTarget)
		if !isTarget {
			t.Skip("the backend is not an import target")
		}
		return s, im
	}
	run := func(id string) *tracking.Run {
		return &tracking.Run{
			Info: tracking.RunInfo{RunID: id, RunUUID: id, ExperimentID: "0", RunName: "imported", UserID: "u",
				Status: "FINISHED", StartTime: 1000, EndTime: 2000, ArtifactURI: "mlflow-artifacts:/0/" + id + "/artifacts",
				LifecycleStage: tracking.LifecycleActive},
			Data: tracking.RunData{
				Params:  []tracking.Param{{Key: "p", Value: "1"}},
				Tags:    []tracking.Tag{{Key: tracking.TagRunName, Value: "imported"}},
				Metrics: []tracking.Metric{{Key: "m", Value: 3, Timestamp: 3, Step: 2}},
			},
		}
	}
	const id = "0123456789abcdef0123456789abcdef"

	t.Run("PendingUntilFinished", func(t *testing.T) {
		s, im := target(t)
		pending, err := im.RunImportPending(bg, id)
		ok(t, err)
		if pending {
			t.Fatal("a run that is not there is pending")
		}
		ok(t, im.ImportRun(bg, run(id)))
		if pending, err = im.RunImportPending(bg, id); err != nil || !pending {
			t.Fatalf("after ImportRun: pending %v, %v", pending, err)
		}
		ok(t, im.ImportMetricHistory(bg, id, []tracking.Metric{{Key: "m", Value: 1, Timestamp: 1, Step: 0}}))
		ok(t, im.ImportMetricHistory(bg, id, []tracking.Metric{{Key: "m", Value: 2, Timestamp: 2, Step: 1}, {Key: "m", Value: 3, Timestamp: 3, Step: 2}}))
		if pending, err = im.RunImportPending(bg, id); err != nil || !pending {
			t.Fatalf("before FinishRunImport: pending %v, %v", pending, err)
		}
		ok(t, im.FinishRunImport(bg, id))
		if pending, err = im.RunImportPending(bg, id); err != nil || pending {
			t.Fatalf("after FinishRunImport: pending %v, %v", pending, err)
		}
		if h := history(t, s, id, "m"); len(h) != 3 {
			t.Fatalf("history: %+v", h)
		}
		got, err := s.GetRun(bg, id)
		ok(t, err)
		if got.Info.RunName != "imported" || got.Info.EndTime != 2000 || len(got.Data.Params) != 1 || len(got.Data.Metrics) != 1 {
			t.Fatalf("run: %+v", got)
		}
	})

	t.Run("ReimportMarksAgain", func(t *testing.T) {
		s, im := target(t)
		ok(t, im.ImportRun(bg, run(id)))
		ok(t, im.ImportMetricHistory(bg, id, []tracking.Metric{{Key: "m", Value: 1, Timestamp: 1, Step: 0}}))
		ok(t, im.FinishRunImport(bg, id))
		// Written again: pending again, the old history dropped.
		ok(t, im.ImportRun(bg, run(id)))
		if pending, err := im.RunImportPending(bg, id); err != nil || !pending {
			t.Fatalf("after the second ImportRun: pending %v, %v", pending, err)
		}
		if h := history(t, s, id, "m"); len(h) != 0 {
			t.Fatalf("history kept: %+v", h)
		}
		ok(t, im.FinishRunImport(bg, id))
		// Finishing twice is fine.
		ok(t, im.FinishRunImport(bg, id))
	})

	t.Run("FinishMissingRun", func(t *testing.T) {
		_, im := target(t)
		wantErr(t, im.FinishRunImport(bg, id), tracking.ResourceDoesNotExist, "")
	})

	t.Run("CreatedRunNotPending", func(t *testing.T) {
		s, im := target(t)
		rid := mkRun(t, s, "0", "made", 1)
		if pending, err := im.RunImportPending(bg, rid); err != nil || pending {
			t.Fatalf("a created run: pending %v, %v", pending, err)
		}
	})
}
