package boltstore

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// bucketEntries returns a bucket's keys and values.
func bucketEntries(t testing.TB, s *Store, name []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(name).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	}))
	return out
}

// wantAsmtIndex checks that the assessment, value and session indexes hold
// exactly what the trace records give.
func wantAsmtIndex(t testing.TB, s *Store) {
	t.Helper()
	wantA, wantV, wantS := map[string]string{}, map[string]string{}, map[string]string{}
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTrace).ForEach(func(k, _ []byte) error {
			tr, err := getTrace(tx, string(k))
			if err != nil {
				return err
			}
			byTrace, byValue := asmtEntries(tr)
			for k, v := range byTrace {
				wantA[k] = string(v)
			}
			for k, v := range byValue {
				wantV[k] = string(v)
			}
			if sess := traceSession(tr); sess != "" {
				wantS[string(append(appendStr(nil, sess), tr.RequestID...))] = ""
			}
			return nil
		})
	}))
	if got := bucketEntries(t, s, bTraceAsmt); !maps.Equal(got, wantA) {
		t.Errorf("assessment index %q, want %q", got, wantA)
	}
	if got := bucketEntries(t, s, bTraceAsmtVal); !maps.Equal(got, wantV) {
		t.Errorf("assessment value index %q, want %q", got, wantV)
	}
	wantSS := map[string]string{}
	for k, v := range wantA {
		if v[0]&asmtSessionScoped != 0 {
			wantSS[k] = v
		}
	}
	if got := bucketEntries(t, s, bTraceAsmtSess); !maps.Equal(got, wantSS) {
		t.Errorf("session-scoped assessment index %q, want %q", got, wantSS)
	}
	if got := bucketEntries(t, s, bTraceSession); !maps.Equal(got, wantS) {
		t.Errorf("session index %q, want %q", got, wantS)
	}
}

func findTraces(t testing.TB, s *Store, exp, filter string) []string {
	t.Helper()
	clauses, err := search.ParseTraceFilter(filter)
	ok(t, err)
	page, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: clauses})
	ok(t, err)
	var ids []string
	for _, tr := range page.Traces {
		ids = append(ids, tr.RequestID)
	}
	return ids
}

// TestTraceAssessmentIndex checks the assessment and session indexes
// through every writer (create, override, update, delete, span logging,
// trace deletion, experiment GC), and that a database written before them
// gets them built on open while searches read the records meanwhile.
func TestTraceAssessmentIndex(t *testing.T) {
	autoIndex = false
	t.Cleanup(func() { autoIndex = true })
	s, path := openTest(t)
	exp := mkExp(t, s, "a")
	fb := func(trace, name, value string, meta map[string]string) *tracking.Assessment {
		a, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: trace, AssessmentName: name, Valid: true,
			Feedback: json.RawMessage(`{"value": ` + value + `}`), Metadata: meta})
		ok(t, err)
		return a
	}
	for _, id := range []string{"tr-1", "tr-2", "tr-3"} {
		_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 100, Status: tracking.TraceStatusOK,
			RequestMetadata: []tracking.Tag{{Key: search.TraceMetadataSession, Value: "sess"}}})
		ok(t, err)
	}
	a := fb("tr-1", "q", `"good"`, nil)
	fb("tr-1", "q", `"bad"`, nil)
	fb("tr-2", "s", `1`, map[string]string{search.TraceMetadataSession: "sess"})
	_, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: "tr-1", AssessmentName: "q", Valid: true,
		Feedback: json.RawMessage(`{"value": "fixed"}`), Overrides: a.AssessmentID})
	ok(t, err)
	_, err = s.UpdateAssessment(bg, "tr-2", bucketAsmtID(t, s, "tr-2"), func(a *tracking.Assessment) error {
		a.Feedback = json.RawMessage(`{"value": 2}`)
		return nil
	})
	ok(t, err)
	// Spans with an earlier start move the trace's order entry too.
	_, err = s.LogSpans(bg, exp, []tracking.SpanBatch{{TraceID: "tr-3", StartMs: 50, EndMs: 60,
		Spans: []tracking.Span{{TraceID: "tr-3", SpanID: "0000000000000001", Name: "r", Status: "OK", StartTimeNs: 50e6, EndTimeNs: 60e6, Content: json.RawMessage(`{}`)}}}})
	ok(t, err)
	checkTraceIndex(t, s)
	wantAsmtIndex(t, s)
	if got := findTraces(t, s, exp, "feedback.s = '2.0'"); !slices.Equal(got, []string{"tr-1", "tr-2", "tr-3"}) {
		t.Fatalf("session-scoped feedback: %v", got)
	}
	if got := findTraces(t, s, exp, "feedback.q = 'fixed'"); !slices.Equal(got, []string{"tr-1"}) {
		t.Fatalf("overriding feedback: %v", got)
	}

	// A database from before the indexes: they are built on open.
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bTraceAsmt); err != nil {
			return err
		}
		return tx.DeleteBucket(bTraceSession) // the session-scoped entries stay: a partial set
	}))
	ok(t, s.Close())
	s2, err := Open(path, Options{})
	ok(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	if len(bucketEntries(t, s2, bTraceAsmt)) != 0 {
		t.Fatal("assessment index present before the build")
	}
	if got := findTraces(t, s2, exp, "feedback.q = 'bad' AND feedback.s IS NOT NULL"); !slices.Equal(got, []string{"tr-1"}) {
		t.Fatalf("search before the build: %v", got)
	}
	ok(t, s2.buildTraceIndex(bg, -1))
	wantAsmtIndex(t, s2)
	if got := findTraces(t, s2, exp, "feedback.q = 'bad' AND feedback.s IS NOT NULL"); !slices.Equal(got, []string{"tr-1"}) {
		t.Fatalf("search after the build: %v", got)
	}
	_, err = s2.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exp, RequestIDs: []string{"tr-2"}})
	ok(t, err)
	wantAsmtIndex(t, s2)
	if got := findTraces(t, s2, exp, "feedback.s IS NOT NULL"); got != nil {
		t.Fatalf("deleted trace's session feedback still found: %v", got)
	}
	ok(t, s2.DeleteExperiment(bg, exp))
	ok(t, s2.HardDeleteExperiment(bg, exp))
	if n := len(bucketEntries(t, s2, bTraceAsmt)) + len(bucketEntries(t, s2, bTraceAsmtSess)) + len(bucketEntries(t, s2, bTraceAsmtVal)) + len(bucketEntries(t, s2, bTraceSession)); n != 0 {
		t.Fatalf("gc left %d assessment or session entries", n)
	}
}

// bucketAsmtID returns the id of a trace's only assessment.
func bucketAsmtID(t testing.TB, s *Store, trace string) string {
	t.Helper()
	tr, err := s.GetTraceInfo(bg, trace)
	ok(t, err)
	if len(tr.Assessments) != 1 {
		t.Fatalf("trace %s has %d assessments", trace, len(tr.Assessments))
	}
	return tr.Assessments[0].AssessmentID
}

// TestCompareEntries checks the entry comparator against
// search.CompareTraces for every key entryOrder accepts.
func TestCompareEntries(t *testing.T) {
	var ents []*tracking.TraceInfo
	for i := 0; i < 12; i++ {
		ents = append(ents, &tracking.TraceInfo{RequestID: []string{"tr-a", "tr-b", "tr-c"}[i%3], ExperimentID: []string{"1", "10", "2"}[i%3],
			TimestampMs: int64(i % 4), ExecutionTimeMs: int64(i % 5), Status: []string{"OK", "ERROR"}[i%2]})
	}
	keys := []string{"timestamp_ms", "execution_time_ms", "end_time_ms", "status", "request_id", "experiment_id"}
	for _, k1 := range keys {
		for _, k2 := range keys {
			for _, asc := range []bool{false, true} {
				order := []search.OrderKey{{Entity: search.EntityAttribute, Key: k1, Asc: asc}, {Entity: search.EntityAttribute, Key: k2, Asc: !asc}}
				if !entryOrder(order) {
					t.Fatalf("entryOrder(%v) false", order)
				}
				for _, a := range ents {
					for _, b := range ents {
						if got, want := compareEntries(order, a, b), search.CompareTraces(order, a, b); (got < 0) != (want < 0) || (got > 0) != (want > 0) {
							t.Fatalf("%v: compare(%+v, %+v) = %d, CompareTraces %d", order, a, b, got, want)
						}
					}
				}
			}
		}
	}
}
