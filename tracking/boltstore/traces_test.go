package boltstore

import (
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func TestTracesV3Store(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "e")
	other := mkExp(t, s, "other")
	id := "tr-aaaa"
	in := &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 10, ExecutionTimeMs: 5,
		Status: tracking.TraceStatusOK, ClientRequestID: "c", RequestPreview: "req",
		Tags:            []tracking.Tag{{Key: "a", Value: "1"}},
		RequestMetadata: []tracking.Tag{{Key: "m", Value: "1"}}}
	got, err := s.StartTraceV3(bg, in)
	ok(t, err)
	if loc, _ := got.Tag(tracking.TraceTagArtifactLocation); loc == "" || got.ClientRequestID != "c" {
		t.Fatalf("started %+v", got)
	}

	// Upsert: old tags, metadata and previews kept.
	got, err = s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 10,
		Status: tracking.TraceStatusError, Tags: []tracking.Tag{{Key: "b", Value: "2"}}})
	ok(t, err)
	if _, has := got.Tag("a"); !has || got.RequestPreview != "req" || got.Status != tracking.TraceStatusError {
		t.Fatalf("upserted %+v", got)
	}
	if _, has := got.Metadata("m"); !has {
		t.Fatalf("metadata lost: %+v", got)
	}
	// ... but not into another experiment.
	_, err = s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: other})
	wantErr(t, err, tracking.InvalidParameterValue,
		"Trace 'tr-aaaa' already exists in experiment "+exp+"; it cannot be started again in experiment "+other+".")
	page, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 10})
	ok(t, err)
	if len(page.Traces) != 1 {
		t.Fatalf("search %+v", page.Traces)
	}

	// A deleted experiment refuses new traces.
	ok(t, s.DeleteExperiment(bg, exp))
	_, err = s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: "tr-b", ExperimentID: exp})
	wantErr(t, err, tracking.InvalidParameterValue, "The experiment "+exp+" must be in the 'active' state. Current state is deleted.")

	// Link to a run; run_id filters match links and metadata.
	run := mkRun(t, s, other, "r", 1)
	ok(t, s.RestoreExperiment(bg, exp))
	ok(t, s.LinkTracesToRun(bg, []string{id, "tr-unknown", id}, run))
	err = s.LinkTracesToRun(bg, []string{id}, "nope")
	wantErr(t, err, tracking.ResourceDoesNotExist, "")
	f, err := search.ParseTraceFilter("run_id = '" + run + "'")
	ok(t, err)
	page, err = s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: f, MaxResults: 10})
	ok(t, err)
	if len(page.Traces) != 1 || len(page.Traces[0].LinkedRunIDs) != 1 {
		t.Fatalf("linked search %+v", page.Traces)
	}
}

func TestAssessmentsStore(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "e")
	id := "tr-1"
	_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 1})
	ok(t, err)
	a, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: id, AssessmentName: "q", Valid: true})
	ok(t, err)
	if len(a.AssessmentID) != 34 || a.CreateTimeMs == 0 || a.LastUpdateTimeMs != a.CreateTimeMs {
		t.Fatalf("created %+v", a)
	}
	_, err = s.CreateAssessment(bg, tracking.Assessment{TraceID: "tr-none", AssessmentName: "q"})
	wantErr(t, err, tracking.ResourceDoesNotExist, "")
	b, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: id, AssessmentName: "q", Overrides: a.AssessmentID, Valid: true})
	ok(t, err)
	got, err := s.GetAssessment(bg, id, a.AssessmentID)
	ok(t, err)
	if got.Valid {
		t.Fatal("overridden assessment still valid")
	}
	up, err := s.UpdateAssessment(bg, id, b.AssessmentID, func(x *tracking.Assessment) error {
		x.Rationale = "r"
		x.AssessmentID = "a-hijack"
		return nil
	})
	ok(t, err)
	if up.Rationale != "r" || up.AssessmentID != b.AssessmentID {
		t.Fatalf("updated %+v", up)
	}
	ok(t, s.DeleteAssessment(bg, id, b.AssessmentID))
	ok(t, s.DeleteAssessment(bg, id, b.AssessmentID)) // a missing one is fine
	got, err = s.GetAssessment(bg, id, a.AssessmentID)
	ok(t, err)
	if !got.Valid {
		t.Fatal("override deleted but the original stays invalid")
	}
	_, err = s.GetAssessment(bg, id, b.AssessmentID)
	wantErr(t, err, tracking.ResourceDoesNotExist, "Assessment with ID '"+b.AssessmentID+"' not found for trace 'tr-1'")
}
