package storetest

import (
	"slices"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func traceIDs(t *testing.T, s tracking.Store, q tracking.TraceQuery) []string {
	t.Helper()
	p, err := s.SearchTraces(bg, q)
	ok(t, err)
	var out []string
	for _, tr := range p.Traces {
		out = append(out, tr.RequestID)
	}
	return out
}

func testTraces(t *testing.T, f Factory) {
	t.Run("V2Lifecycle", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "e")
		tr, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: exp, TimestampMs: 100,
			RequestMetadata: []tracking.Tag{{Key: "m", Value: "1"}}, Tags: []tracking.Tag{{Key: "a", Value: "1"}}})
		ok(t, err)
		id := tr.RequestID
		if !hex32.MatchString(id) || tr.Status != tracking.TraceStatusInProgress || tr.ExperimentID != exp || tr.TimestampMs != 100 {
			t.Fatalf("started %+v", tr)
		}
		if loc, _ := tr.Tag(tracking.TraceTagArtifactLocation); loc != "mlflow-artifacts:/"+exp+"/traces/"+id+"/artifacts" {
			t.Fatalf("artifact location %q", loc)
		}
		_, err = s.StartTrace(bg, tracking.StartTrace{ExperimentID: "999"})
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		tr, err = s.EndTrace(bg, tracking.EndTrace{RequestID: id, TimestampMs: 130, Status: tracking.TraceStatusOK,
			RequestMetadata: []tracking.Tag{{Key: "m", Value: "2"}}, Tags: []tracking.Tag{{Key: "b", Value: "2"}}})
		ok(t, err)
		if tr.ExecutionTimeMs != 30 || tr.Status != tracking.TraceStatusOK {
			t.Fatalf("ended %+v", tr)
		}
		got, err := s.GetTraceInfo(bg, id)
		ok(t, err)
		if v, _ := got.Metadata("m"); v != "2" || tagMap(got.Tags)["a"] != "1" || tagMap(got.Tags)["b"] != "2" || got.ExecutionTimeMs != 30 {
			t.Fatalf("got %+v", got)
		}
		_, err = s.EndTrace(bg, tracking.EndTrace{RequestID: "nope", TimestampMs: 1, Status: tracking.TraceStatusOK})
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		_, err = s.GetTraceInfo(bg, "nope")
		wantErr(t, err, tracking.ResourceDoesNotExist, "Trace with request_id 'nope' not found.")

		ok(t, s.SetTraceTag(bg, id, tracking.Tag{Key: "a", Value: "x"}))
		ok(t, s.DeleteTraceTag(bg, id, "b"))
		wantErr(t, s.DeleteTraceTag(bg, id, "b"), tracking.ResourceDoesNotExist, "No trace tag with key 'b' for trace with request_id '"+id+"'")
		wantErr(t, s.SetTraceTag(bg, "nope", tracking.Tag{Key: "a"}), tracking.ResourceDoesNotExist, "")
		got, _ = s.GetTraceInfo(bg, id)
		if tm := tagMap(got.Tags); tm["a"] != "x" || tm["b"] != "" || len(tm) != 2 {
			t.Fatalf("tags %+v", got.Tags)
		}

		// Search: timestamp DESC by default; filters on tags and attributes.
		for i, ts := range []int64{50, 300, 200} {
			tr, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: exp, TimestampMs: ts, Tags: []tracking.Tag{{Key: "i", Value: itoa(i)}}})
			ok(t, err)
			_, err = s.EndTrace(bg, tracking.EndTrace{RequestID: tr.RequestID, TimestampMs: ts + int64(10*i), Status: tracking.TraceStatusError})
			ok(t, err)
		}
		p, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 10})
		ok(t, err)
		var stamps []int64
		for _, tr := range p.Traces {
			stamps = append(stamps, tr.TimestampMs)
		}
		if !slices.Equal(stamps, []int64{300, 200, 100, 50}) {
			t.Fatalf("default order %v", stamps)
		}
		ff, err := search.ParseTraceFilter("tags.i = '01'")
		ok(t, err)
		if p, err = s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: ff, MaxResults: 10}); err != nil || len(p.Traces) != 1 || p.Traces[0].TimestampMs != 300 {
			t.Fatalf("tag filter %+v %v", p.Traces, err)
		}
		ff, err = search.ParseTraceFilter("attributes.status = 'ERROR' AND attributes.execution_time_ms > 5")
		ok(t, err)
		if p, err = s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: ff, MaxResults: 10}); err != nil || len(p.Traces) != 2 {
			t.Fatalf("attribute filter %+v %v", p.Traces, err)
		}
		ob, err := search.ParseTraceOrderBy([]string{"timestamp_ms ASC"})
		ok(t, err)
		p, err = s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, OrderBy: ob, MaxResults: 2})
		ok(t, err)
		if len(p.Traces) != 2 || p.Traces[0].TimestampMs != 50 || p.NextPageToken == "" {
			t.Fatalf("ascending %+v", p)
		}
		_, err = s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 2, PageToken: "bad!"})
		wantBadToken(t, "traces", err)

		// Delete: the oldest up to a timestamp, at most MaxTraces.
		n, err := s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exp, MaxTimestampMillis: 250, MaxTraces: 2})
		ok(t, err)
		if n != 2 {
			t.Fatalf("deleted %d", n)
		}
		p, _ = s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 10})
		stamps = stamps[:0]
		for _, tr := range p.Traces {
			stamps = append(stamps, tr.TimestampMs)
		}
		if !slices.Equal(stamps, []int64{300, 200}) {
			t.Fatalf("after delete %v", stamps)
		}
		// By id, only of the named experiment.
		other := mkExp(t, s, "other")
		o, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: other, TimestampMs: 1})
		ok(t, err)
		n, err = s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exp, RequestIDs: []string{o.RequestID, p.Traces[0].RequestID, "nope"}})
		ok(t, err)
		if n != 1 {
			t.Fatalf("deleted %d", n)
		}
		if _, err := s.GetTraceInfo(bg, o.RequestID); err != nil {
			t.Fatalf("another experiment's trace deleted: %v", err)
		}
		n, err = s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exp, MaxTimestampMillis: 1 << 40})
		ok(t, err)
		if n != 1 {
			t.Fatalf("deleted %d", n)
		}
		if ids := traceIDs(t, s, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 10}); len(ids) != 0 {
			t.Fatalf("left %v", ids)
		}
	})

	t.Run("V3", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "e")
		other := mkExp(t, s, "other")
		id := "tr-aaaa"
		in := &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 10, ExecutionTimeMs: 5,
			Status: tracking.TraceStatusOK, ClientRequestID: "c", RequestPreview: "req",
			Tags:            []tracking.Tag{{Key: "a", Value: "1"}},
			RequestMetadata: []tracking.Tag{{Key: "m", Value: "1"}}}
		got, err := s.StartTraceV3(bg, in)
		ok(t, err)
		if loc, _ := got.Tag(tracking.TraceTagArtifactLocation); loc != "mlflow-artifacts:/"+exp+"/traces/"+id+"/artifacts" || got.ClientRequestID != "c" {
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
		if stored, err := s.GetTraceInfo(bg, id); err != nil || stored.Status != tracking.TraceStatusError || tagMap(stored.Tags)["b"] != "2" {
			t.Fatalf("stored %+v %v", stored, err)
		}
		// ... but not into another experiment.
		_, err = s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: other})
		wantErr(t, err, tracking.InvalidParameterValue,
			"Trace 'tr-aaaa' already exists in experiment "+exp+"; it cannot be started again in experiment "+other+".")
		if ids := traceIDs(t, s, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 10}); len(ids) != 1 {
			t.Fatalf("search %v", ids)
		}
		if ids := traceIDs(t, s, tracking.TraceQuery{ExperimentIDs: []string{other}, MaxResults: 10}); len(ids) != 0 {
			t.Fatalf("search %v", ids)
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
		page, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: f, MaxResults: 10})
		ok(t, err)
		if len(page.Traces) != 1 || len(page.Traces[0].LinkedRunIDs) != 1 || page.Traces[0].LinkedRunIDs[0] != run {
			t.Fatalf("linked search %+v", page.Traces)
		}
		_, err = s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: "tr-src", ExperimentID: exp, TimestampMs: 3,
			RequestMetadata: []tracking.Tag{{Key: tracking.TraceMetadataSourceRun, Value: run}}})
		ok(t, err)
		if ids := traceIDs(t, s, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: f, MaxResults: 10}); !slices.Equal(ids, []string{"tr-aaaa", "tr-src"}) {
			t.Fatalf("run_id search %v", ids)
		}
	})

	t.Run("Assessments", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "e")
		id := "tr-1"
		_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 1})
		ok(t, err)
		within := nowWindow(t)
		a, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: id, AssessmentName: "q", Valid: true})
		ok(t, err)
		if len(a.AssessmentID) != 34 || a.AssessmentID[:2] != "a-" || a.LastUpdateTimeMs != a.CreateTimeMs {
			t.Fatalf("created %+v", a)
		}
		within("create_time_ms", a.CreateTimeMs)
		_, err = s.CreateAssessment(bg, tracking.Assessment{TraceID: "tr-none", AssessmentName: "q"})
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		b, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: id, AssessmentName: "q", Overrides: a.AssessmentID, Valid: true})
		ok(t, err)
		got, err := s.GetAssessment(bg, id, a.AssessmentID)
		ok(t, err)
		if got.Valid {
			t.Fatal("overridden assessment still valid")
		}
		tr, err := s.GetTraceInfo(bg, id)
		ok(t, err)
		if len(tr.Assessments) != 2 {
			t.Fatalf("trace assessments %+v", tr.Assessments)
		}
		Tick()
		up, err := s.UpdateAssessment(bg, id, b.AssessmentID, func(x *tracking.Assessment) error {
			x.Rationale = "r"
			x.AssessmentID = "a-hijack"
			return nil
		})
		ok(t, err)
		if up.Rationale != "r" || up.AssessmentID != b.AssessmentID || up.LastUpdateTimeMs <= b.CreateTimeMs {
			t.Fatalf("updated %+v", up)
		}
		if got, err = s.GetAssessment(bg, id, b.AssessmentID); err != nil || got.Rationale != "r" {
			t.Fatalf("stored %+v %v", got, err)
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
	})
}
