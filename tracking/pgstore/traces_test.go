package pgstore

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func TestTracesV2PG(t *testing.T) {
	s := openTest(t)
	exp := regExp(t, s, "e")
	tr, err := s.StartTrace(regCtx, tracking.StartTrace{ExperimentID: exp, TimestampMs: 100,
		RequestMetadata: []tracking.Tag{{Key: "m1", Value: "a"}},
		Tags:            []tracking.Tag{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}}})
	regOK(t, err)
	id := tr.RequestID
	if len(id) != 32 || tr.Status != tracking.TraceStatusInProgress || tr.ExperimentID != exp || tr.TimestampMs != 100 {
		t.Fatalf("started %+v", tr)
	}
	if fmt.Sprint(tr.Tags) != "[{b 1} {a 2} {mlflow.artifactLocation mlflow-artifacts:/e/traces/"+id+"/artifacts}]" {
		t.Fatalf("tags %v", tr.Tags)
	}
	_, err = s.StartTrace(regCtx, tracking.StartTrace{ExperimentID: "77"})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=77 exists")

	tr, err = s.EndTrace(regCtx, tracking.EndTrace{RequestID: id, TimestampMs: 130, Status: tracking.TraceStatusOK,
		RequestMetadata: []tracking.Tag{{Key: "m2", Value: "b"}, {Key: "m1", Value: "c"}},
		Tags:            []tracking.Tag{{Key: "b", Value: "9"}}})
	regOK(t, err)
	if tr.ExecutionTimeMs != 30 || tr.Status != tracking.TraceStatusOK || fmt.Sprint(tr.RequestMetadata) != "[{m1 c} {m2 b}]" ||
		tr.Tags[0] != (tracking.Tag{Key: "b", Value: "9"}) {
		t.Fatalf("ended %+v", tr)
	}
	_, err = s.EndTrace(regCtx, tracking.EndTrace{RequestID: "nope"})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Trace with request_id 'nope' not found.")

	regOK(t, s.SetTraceTag(regCtx, id, tracking.Tag{Key: "c", Value: "3"}))
	regOK(t, s.DeleteTraceTag(regCtx, id, "a"))
	regWantErr(t, s.DeleteTraceTag(regCtx, id, "a"), tracking.ResourceDoesNotExist,
		"No trace tag with key 'a' for trace with request_id '"+id+"'")
	regWantErr(t, s.SetTraceTag(regCtx, "nope", tracking.Tag{Key: "c"}), tracking.ResourceDoesNotExist, "Trace with request_id 'nope' not found.")
	got, err := s.GetTraceInfo(regCtx, id)
	regOK(t, err)
	if v, _ := got.Tag("c"); v != "3" || len(got.Tags) != 3 {
		t.Fatalf("got %+v", got)
	}
	_, err = s.GetTraceInfo(regCtx, "nope")
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Trace with request_id 'nope' not found.")
}

func TestTracesV3PG(t *testing.T) {
	s := openTest(t)
	exp := regExp(t, s, "e")
	other := regExp(t, s, "other")
	id := "tr-aaaa"
	in := &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 10, ExecutionTimeMs: 5,
		Status: tracking.TraceStatusOK, ClientRequestID: "c", RequestPreview: "req",
		Tags:            []tracking.Tag{{Key: "a", Value: "1"}},
		RequestMetadata: []tracking.Tag{{Key: "m", Value: "1"}},
		Assessments:     []tracking.Assessment{{AssessmentID: "a-1", AssessmentName: "x", Valid: true, Feedback: json.RawMessage(`{"value":  1}`)}}}
	got, err := s.StartTraceV3(regCtx, in)
	regOK(t, err)
	if loc, _ := got.Tag(tracking.TraceTagArtifactLocation); loc == "" || got.ClientRequestID != "c" || len(got.Assessments) != 1 ||
		got.Assessments[0].TraceID != id || string(got.Assessments[0].Feedback) != `{"value":1}` {
		t.Fatalf("started %+v", got)
	}

	// Upsert: old tags, metadata, previews and assessments kept.
	got, err = s.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 10,
		Status: tracking.TraceStatusError, Tags: []tracking.Tag{{Key: "b", Value: "2"}}})
	regOK(t, err)
	if fmt.Sprint(got.Tags) != "[{b 2} {a 1} {mlflow.artifactLocation mlflow-artifacts:/e/traces/tr-aaaa/artifacts}]" ||
		got.RequestPreview != "req" || got.Status != tracking.TraceStatusError || len(got.Assessments) != 1 {
		t.Fatalf("upserted %+v", got)
	}
	if _, has := got.Metadata("m"); !has {
		t.Fatalf("metadata lost: %+v", got)
	}
	// ... but not into another experiment.
	_, err = s.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: id, ExperimentID: other})
	regWantErr(t, err, tracking.InvalidParameterValue,
		"Trace 'tr-aaaa' already exists in experiment "+exp+"; it cannot be started again in experiment "+other+".")
	_, err = s.StartTraceV3(regCtx, &tracking.TraceInfo{ExperimentID: other})
	regWantErr(t, err, tracking.InvalidParameterValue, "Missing value for required parameter 'trace.trace_info.trace_id'.")

	// A deleted experiment refuses new traces.
	regSetExpStage(t, s, exp, tracking.LifecycleDeleted)
	_, err = s.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: "tr-b", ExperimentID: exp})
	regWantErr(t, err, tracking.InvalidParameterValue, "The experiment "+exp+" must be in the 'active' state. Current state is deleted.")
	regSetExpStage(t, s, exp, tracking.LifecycleActive)

	// Link to a run; run_id filters match links and metadata.
	run := regRun(t, s, other)
	regOK(t, s.LinkTracesToRun(regCtx, []string{id, "tr-unknown", id}, run))
	regWantErr(t, s.LinkTracesToRun(regCtx, []string{id}, "nope"), tracking.ResourceDoesNotExist, "Run with id=nope not found")
	f, err := search.ParseTraceFilter("run_id = '" + run + "'")
	regOK(t, err)
	page, err := s.SearchTraces(regCtx, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: f, MaxResults: 10})
	regOK(t, err)
	if len(page.Traces) != 1 || len(page.Traces[0].LinkedRunIDs) != 1 {
		t.Fatalf("linked search %+v", page.Traces)
	}
	// A V3 upsert keeps the links.
	got, err = s.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 10})
	regOK(t, err)
	if len(got.LinkedRunIDs) != 1 || got.LinkedRunIDs[0] != run {
		t.Fatalf("links after upsert %+v", got.LinkedRunIDs)
	}
}

func TestAssessmentsPG(t *testing.T) {
	s := openTest(t)
	exp := regExp(t, s, "e")
	id := "tr-1"
	_, err := s.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 1})
	regOK(t, err)
	a, err := s.CreateAssessment(regCtx, tracking.Assessment{TraceID: id, AssessmentName: "q", Valid: true,
		Metadata: map[string]string{"k": "v"}})
	regOK(t, err)
	if len(a.AssessmentID) != 34 || a.CreateTimeMs == 0 || a.LastUpdateTimeMs != a.CreateTimeMs {
		t.Fatalf("created %+v", a)
	}
	_, err = s.CreateAssessment(regCtx, tracking.Assessment{TraceID: id, AssessmentID: a.AssessmentID})
	regWantErr(t, err, tracking.ResourceAlreadyExists, "Assessment with ID '"+a.AssessmentID+"' already exists for trace 'tr-1'")
	_, err = s.CreateAssessment(regCtx, tracking.Assessment{TraceID: "tr-none", AssessmentName: "q"})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Trace with request_id 'tr-none' not found.")
	_, err = s.CreateAssessment(regCtx, tracking.Assessment{TraceID: id, Overrides: "a-none"})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Assessment with ID 'a-none' not found for trace 'tr-1'")
	b, err := s.CreateAssessment(regCtx, tracking.Assessment{TraceID: id, AssessmentName: "q", Overrides: a.AssessmentID, Valid: true})
	regOK(t, err)
	got, err := s.GetAssessment(regCtx, id, a.AssessmentID)
	regOK(t, err)
	if got.Valid || got.Metadata["k"] != "v" {
		t.Fatalf("overridden assessment %+v", got)
	}
	up, err := s.UpdateAssessment(regCtx, id, b.AssessmentID, func(x *tracking.Assessment) error {
		x.Rationale = "r"
		x.AssessmentID = "a-hijack"
		return nil
	})
	regOK(t, err)
	if up.Rationale != "r" || up.AssessmentID != b.AssessmentID {
		t.Fatalf("updated %+v", up)
	}
	_, err = s.UpdateAssessment(regCtx, id, "a-none", func(*tracking.Assessment) error { return nil })
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Assessment with ID 'a-none' not found for trace 'tr-1'")
	tr, err := s.GetTraceInfo(regCtx, id)
	regOK(t, err)
	if len(tr.Assessments) != 2 || tr.Assessments[0].AssessmentID != a.AssessmentID || tr.Assessments[1].Rationale != "r" {
		t.Fatalf("trace assessments %+v", tr.Assessments)
	}
	regOK(t, s.DeleteAssessment(regCtx, id, b.AssessmentID))
	regOK(t, s.DeleteAssessment(regCtx, id, b.AssessmentID)) // a missing one is fine
	got, err = s.GetAssessment(regCtx, id, a.AssessmentID)
	regOK(t, err)
	if !got.Valid {
		t.Fatal("override deleted but the original stays invalid")
	}
	_, err = s.GetAssessment(regCtx, id, b.AssessmentID)
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Assessment with ID '"+b.AssessmentID+"' not found for trace 'tr-1'")
	_, err = s.GetAssessment(regCtx, "tr-none", b.AssessmentID)
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Trace with request_id 'tr-none' not found.")
}

func regTraceIDs(p tracking.TracePage) string {
	var out []string
	for _, t := range p.Traces {
		out = append(out, t.RequestID)
	}
	return strings.Join(out, ",")
}

func TestTraceSearchPG(t *testing.T) {
	s := openTest(t)
	exp := regExp(t, s, "e")
	other := regExp(t, s, "other")
	mk := func(id, expID string, ts, dur int64, status string, tags, md []tracking.Tag) {
		t.Helper()
		_, err := s.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: id, ExperimentID: expID, TimestampMs: ts, ExecutionTimeMs: dur,
			Status: status, Tags: tags, RequestMetadata: md, ClientRequestID: "c-" + id})
		regOK(t, err)
	}
	tag := func(kv ...string) []tracking.Tag {
		var out []tracking.Tag
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, tracking.Tag{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	mk("t1", exp, 100, 10, tracking.TraceStatusOK, tag("mlflow.traceName", "alpha", "env", "prod"), tag("mlflow.sourceRun", "r1"))
	mk("t2", exp, 200, 50, tracking.TraceStatusError, tag("mlflow.traceName", "beta"), tag("user", "Bob"))
	mk("t3", exp, 200, 5, tracking.TraceStatusOK, tag("env", "dev"), nil)
	mk("t4", other, 300, 1, tracking.TraceStatusInProgress, nil, nil)
	mk("t5", exp, 50, 1, tracking.TraceStatusUnspecified, nil, nil)

	q := func(filter string, order []string, exps ...string) string {
		t.Helper()
		f, err := search.ParseTraceFilter(filter)
		regOK(t, err)
		o, err := search.ParseTraceOrderBy(order)
		regOK(t, err)
		if exps == nil {
			exps = []string{exp}
		}
		p, err := s.SearchTraces(regCtx, tracking.TraceQuery{ExperimentIDs: exps, Filter: f, OrderBy: o, MaxResults: 100})
		regOK(t, err)
		return regTraceIDs(p)
	}
	for _, tc := range []struct {
		filter string
		order  []string
		exps   []string
		want   string
	}{
		{"", nil, nil, "t2,t3,t1,t5"},
		{"", nil, []string{exp, other, "nope", "12345"}, "t4,t2,t3,t1,t5"},
		{"name = 'alpha'", nil, nil, "t1"},
		{"tags.env IS NULL", nil, nil, "t2,t5"},
		{"tags.env IS NOT NULL", nil, nil, "t3,t1"},
		{"tags.env != 'prod'", nil, nil, "t3"},
		{"metadata.user ILIKE 'bob'", nil, nil, "t2"},
		{"metadata.user LIKE 'bob'", nil, nil, ""},
		{"run_id = 'r1'", nil, nil, "t1"},
		{"status = 'OK'", nil, nil, "t3,t1"},
		{"status IN ('ERROR', 'STATE_UNSPECIFIED')", nil, nil, "t2,t5"},
		{"status NOT IN ('ERROR')", nil, nil, "t3,t1,t5"},
		{"attributes.status RLIKE '^(OK|ERR)'", nil, nil, "t2,t3,t1"},
		{"timestamp_ms >= 100", nil, nil, "t2,t3,t1"},
		{"execution_time > 5", nil, nil, "t2,t1"},
		{"end_time_ms = 205", nil, nil, "t3"},
		{"client_request_id = 'c-t3'", nil, nil, "t3"},
		{"", []string{"timestamp_ms ASC"}, nil, "t5,t1,t2,t3"},
		{"", []string{"execution_time_ms DESC"}, nil, "t2,t1,t3,t5"},
		{"", []string{"tags.env ASC"}, nil, "t3,t1,t2,t5"},
		{"", []string{"tags.env DESC"}, nil, "t1,t3,t2,t5"},
		{"", []string{"name DESC"}, nil, "t2,t1,t3,t5"},
		{"", []string{"status ASC", "request_id DESC"}, nil, "t2,t3,t1,t5"},
		{"", []string{"experiment_id ASC"}, []string{exp, other}, "t2,t3,t1,t5,t4"},
	} {
		if got := q(tc.filter, tc.order, tc.exps...); got != tc.want {
			t.Errorf("%q %v %v: %s, want %s", tc.filter, tc.order, tc.exps, got, tc.want)
		}
	}

	// Delete by ids (only of the experiment) and by age.
	n, err := s.DeleteTraces(regCtx, tracking.DeleteTraces{ExperimentID: exp, RequestIDs: []string{"t4", "t5", "nope"}})
	regOK(t, err)
	if n != 1 {
		t.Fatalf("deleted %d by id", n)
	}
	n, err = s.DeleteTraces(regCtx, tracking.DeleteTraces{ExperimentID: exp, MaxTimestampMillis: 200, MaxTraces: 2})
	regOK(t, err)
	if n != 2 || q("", nil) != "t3" {
		t.Fatalf("deleted %d by age, left %s", n, q("", nil))
	}
	n, err = s.DeleteTraces(regCtx, tracking.DeleteTraces{ExperimentID: "x", MaxTimestampMillis: 1000})
	regOK(t, err)
	if n != 0 {
		t.Fatalf("deleted %d of a bad experiment id", n)
	}
	var left int
	regOK(t, s.Pool().QueryRow(regCtx, "SELECT count(*) FROM trace_tags WHERE request_id IN ('t1', 't2', 't5')").Scan(&left))
	if left != 0 {
		t.Fatalf("%d tags of deleted traces left", left)
	}
}

// TestTraceKeysetPagesPG pages through traces (ordered by a tag, with
// missing values, and in the default order) while two replicas add
// traces between pages: every trace present from the start is seen once.
func TestTraceKeysetPagesPG(t *testing.T) {
	s1, s2 := regTwoStores(t)
	exp := regExp(t, s1, "e")
	var want []string
	mk := func(s *Store, id string, ts int64, env string) {
		var tags []tracking.Tag
		if env != "" {
			tags = []tracking.Tag{{Key: "env", Value: env}}
		}
		_, err := s.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: ts, Tags: tags})
		regOK(t, err)
	}
	for i := 0; i < 17; i++ {
		id := fmt.Sprintf("t%02d", i)
		want = append(want, id)
		mk(s1, id, int64(i%5), []string{"", "a", "b"}[i%3])
	}
	for _, order := range [][]string{nil, {"tags.env ASC"}, {"tags.env DESC", "timestamp ASC"}} {
		o, err := search.ParseTraceOrderBy(order)
		regOK(t, err)
		seen := map[string]int{}
		tok := ""
		for page := 0; ; page++ {
			p, err := []*Store{s1, s2}[page%2].SearchTraces(regCtx, tracking.TraceQuery{ExperimentIDs: []string{exp}, OrderBy: o,
				MaxResults: 4, PageToken: tok})
			regOK(t, err)
			for _, tr := range p.Traces {
				seen[tr.RequestID]++
			}
			if page < 3 {
				var wg sync.WaitGroup
				for j, env := range []string{"", "a", "z"} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						mk([]*Store{s1, s2}[j%2], fmt.Sprintf("new-%v-%d-%d", order, page, j), int64(j*2), env)
					}()
				}
				wg.Wait()
			}
			if tok = p.NextPageToken; tok == "" {
				break
			}
		}
		for _, id := range want {
			if seen[id] != 1 {
				var ids []string
				for k := range seen {
					ids = append(ids, k)
				}
				sort.Strings(ids)
				t.Fatalf("order %v: %s seen %d times (%v)", order, id, seen[id], ids)
			}
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("order %v: %s seen %d times", order, id, c)
			}
		}
	}
}

// TestAssessmentOverridesConcurrentPG races overrides of one assessment
// on two replicas: each override sees a consistent trace, and deleting
// all overrides leaves the original valid.
func TestAssessmentOverridesConcurrentPG(t *testing.T) {
	s1, s2 := regTwoStores(t)
	exp := regExp(t, s1, "e")
	_, err := s1.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: "tr", ExperimentID: exp})
	regOK(t, err)
	orig, err := s1.CreateAssessment(regCtx, tracking.Assessment{TraceID: "tr", AssessmentName: "q", Valid: true})
	regOK(t, err)
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := []*Store{s1, s2}[i%2].CreateAssessment(regCtx, tracking.Assessment{TraceID: "tr", AssessmentName: "q",
				Overrides: orig.AssessmentID, Valid: true})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = a.AssessmentID
		}()
	}
	wg.Wait()
	tr, err := s2.GetTraceInfo(regCtx, "tr")
	regOK(t, err)
	if len(tr.Assessments) != 11 || tr.Assessments[0].Valid {
		t.Fatalf("%d assessments, original valid=%v", len(tr.Assessments), tr.Assessments[0].Valid)
	}
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := []*Store{s1, s2}[i%2].DeleteAssessment(regCtx, "tr", id); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s1.GetAssessment(regCtx, "tr", orig.AssessmentID)
	regOK(t, err)
	if !got.Valid {
		t.Fatal("original invalid after deleting every override")
	}
}
