package pgstore

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// TestAssessmentSearchBackfillPG checks that assessments stored before
// migration 004 (search columns NULL) get their search columns when the
// store opens, and are then found by feedback clauses.
func TestAssessmentSearchBackfillPG(t *testing.T) {
	ctx := context.Background()
	uri := pgtest.NewDatabase(t)
	s, err := Open(ctx, uri, pgdb.Options{})
	regOK(t, err)
	exp := regExp(t, s, "e")
	_, err = s.StartTraceV3(ctx, &tracking.TraceInfo{RequestID: "tr-1", ExperimentID: exp, TimestampMs: 1})
	regOK(t, err)
	for i := 0; i < 3; i++ {
		_, err = s.CreateAssessment(ctx, tracking.Assessment{TraceID: "tr-1", AssessmentName: "q", Valid: true,
			Feedback: json.RawMessage(`{"value": 0.5}`)})
		regOK(t, err)
	}
	_, err = s.Pool().Exec(ctx, `UPDATE assessments SET assessment_type = NULL, name = NULL, value = NULL, valid = NULL, session_scoped = NULL`)
	regOK(t, err)
	find := func(s *Store) int {
		clauses, err := search.ParseTraceFilter("feedback.q = '0.5'")
		regOK(t, err)
		page, err := s.SearchTraces(ctx, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: clauses})
		regOK(t, err)
		return len(page.Traces)
	}
	if n := find(s); n != 0 {
		t.Fatalf("found %d traces with the columns cleared", n)
	}
	s.Close()
	s2, err := Open(ctx, uri, pgdb.Options{})
	regOK(t, err)
	t.Cleanup(func() { s2.Close() })
	var missing int
	regOK(t, s2.Pool().QueryRow(ctx, `SELECT count(*) FROM assessments WHERE assessment_type IS NULL OR value <> '0.5' OR NOT valid`).Scan(&missing))
	if missing != 0 {
		t.Fatalf("%d assessments not backfilled", missing)
	}
	if n := find(s2); n != 1 {
		t.Fatalf("found %d traces after the backfill", n)
	}
}
