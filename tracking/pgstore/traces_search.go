package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// search_traces compiled to SQL with the semantics of search.MatchTrace
// and search.CompareTraces (the bbolt store's, after MLflow's
// SqlAlchemyStore.search_traces): tags and request metadata through
// EXISTS subqueries (run_id = '<id>' also matches a link made with
// link-to-run), order keys on tags or metadata through LEFT JOINs with
// missing values last, tie-breakers timestamp_ms DESC then request_id
// ASC. Pages are keyset positions; a full page always has a next token,
// as MLflow's search_traces answers.

const (
	defaultTraceResults = 1000
	maxTraceResults     = 1 << 20
)

// traceNumeric and traceStrings map trace attributes to columns.
var (
	traceNumeric = map[string]string{
		"timestamp_ms": "ti.timestamp_ms", "execution_time_ms": "ti.execution_time_ms",
		"end_time_ms": "(ti.timestamp_ms + ti.execution_time_ms)",
	}
	traceStrings = map[string]string{
		"request_id": "ti.request_id", "status": "ti.status", "client_request_id": "ti.client_request_id",
		"experiment_id": `(ti.experiment_id::text COLLATE "C")`,
	}
)

// traceKVTable is the table of tag or request metadata clauses and keys.
func traceKVTable(e search.Entity) string {
	if e == search.EntityTag {
		return "trace_tags"
	}
	return "trace_request_metadata"
}

// traceClause compiles one filter clause.
func traceClause(a *sqlArgs, c *search.Clause) (string, error) {
	switch {
	case c.Entity == search.EntityPrompt:
		return promptClause(a, c), nil
	case c.Entity == search.EntityTag || c.Entity == search.EntityRequestMetadata:
		tbl := traceKVTable(c.Entity)
		k := a.key(c.Key)
		exists := fmt.Sprintf("EXISTS (SELECT 1 FROM %s t WHERE t.request_id = ti.request_id AND t.key = %s", tbl, k)
		var cond string
		switch c.Op {
		case search.OpIsNull:
			return "NOT " + exists + ")", nil
		case search.OpIsNotNull:
			return exists + ")", nil
		default:
			m, err := stringMatch(a, "t.value", c)
			if err != nil {
				return "", err
			}
			cond = exists + " AND " + m + ")"
		}
		if c.Entity == search.EntityRequestMetadata && c.Key == tracking.TraceMetadataSourceRun && c.Op == search.OpEq && storable(c.Str) {
			cond = fmt.Sprintf("(%s OR EXISTS (SELECT 1 FROM trace_run_links l WHERE l.request_id = ti.request_id AND l.run_id = %s))",
				cond, a.add(c.Str))
		}
		return cond, nil
	case traceNumeric[c.Key] != "":
		return numMatch(a, traceNumeric[c.Key], c)
	case traceStrings[c.Key] != "":
		return stringMatch(a, traceStrings[c.Key], c)
	}
	return "", tracking.Errorf(tracking.InvalidParameterValue, "Invalid attribute key '%s' specified.", c.Key)
}

// SearchTraces implements tracking.TraceStore. Unknown experiment ids
// match nothing, as in MLflow's SQL store.
func (s *Store) SearchTraces(ctx context.Context, q tracking.TraceQuery) (tracking.TracePage, error) {
	limit := q.MaxResults
	if limit <= 0 {
		limit = defaultTraceResults
	}
	limit = min(limit, maxTraceResults)
	fp := search.NewFingerprint("traces")
	expIDs := expIDsForSearch(fp, q.ExperimentIDs)
	fp.AddClauses(q.Filter).AddOrderKeys(q.OrderBy)
	cur, err := searchCursor(q.PageToken, fp)
	if err != nil {
		return tracking.TracePage{}, err
	}
	// The sessions session-scoped assessments cover, read first (a
	// separate snapshot) so that the search is a plain semi-join when
	// there are none.
	sessions, err := s.assessmentSessions(ctx, q.Filter)
	if err != nil {
		return tracking.TracePage{}, err
	}
	a := &sqlArgs{fold: s.foldCollation}
	where := []string{experimentCond(a, "ti.experiment_id", expIDs)}
	for i := range q.Filter {
		if q.Filter[i].Entity == search.EntitySpan {
			continue // traceSpanCond
		}
		var cond string
		var err error
		if search.IsAssessmentClause(&q.Filter[i]) {
			cond, err = assessmentClause(a, &q.Filter[i], sessions[i])
		} else {
			cond, err = traceClause(a, &q.Filter[i])
		}
		if err != nil {
			return tracking.TracePage{}, err
		}
		where = append(where, cond)
	}
	if cond, err := traceSpanCond(a, q.Filter); err != nil {
		return tracking.TracePage{}, err
	} else if cond != "" {
		where = append(where, cond)
	}
	var joins []string
	var terms []seekTerm
	hasTS, hasID := false, false
	attrTerm := func(key string, asc bool) (seekTerm, error) {
		cv, ok := cur.Value("a." + key)
		if col := traceNumeric[key]; col != "" {
			t := seekTerm{expr: col, asc: asc}
			if ok {
				t.val = cv.Int
			}
			return t, nil
		}
		col := traceStrings[key]
		if col == "" {
			return seekTerm{}, tracking.Errorf(tracking.InvalidParameterValue, "Invalid order by key '%s' specified.", key)
		}
		t := seekTerm{expr: col, asc: asc}
		if ok {
			t.val = cv.Str
		}
		return t, nil
	}
	for i, k := range q.OrderBy {
		if k.Entity == search.EntityTag || k.Entity == search.EntityRequestMetadata {
			alias := fmt.Sprintf("o%d", i)
			joins = append(joins, fmt.Sprintf("LEFT JOIN %s %s ON %s.request_id = ti.request_id AND %s.key = %s",
				traceKVTable(k.Entity), alias, alias, alias, a.key(k.Key)))
			absent := seekTerm{expr: fmt.Sprintf("(%s.value IS NULL)", alias), asc: true}
			val := seekTerm{expr: fmt.Sprintf("coalesce(%s.value, '')", alias), asc: k.Asc}
			prefix := "t."
			if k.Entity == search.EntityRequestMetadata {
				prefix = "md."
			}
			if cv, ok := cur.Value(prefix + k.Key); ok {
				absent.val, val.val = !cv.Present, cv.Str
			}
			terms = append(terms, absent, val)
			continue
		}
		hasTS = hasTS || k.Key == "timestamp_ms"
		hasID = hasID || k.Key == "request_id"
		t, err := attrTerm(k.Key, k.Asc)
		if err != nil {
			return tracking.TracePage{}, err
		}
		terms = append(terms, t)
	}
	if !hasTS {
		t, _ := attrTerm("timestamp_ms", false)
		terms = append(terms, t)
	}
	if !hasID {
		t, _ := attrTerm("request_id", true)
		terms = append(terms, t)
	}
	if cur.Keyset() {
		where = append(where, afterSQL(a, terms))
	}
	sql := "SELECT " + traceColumns + " FROM trace_info ti " + strings.Join(joins, " ") +
		" WHERE " + strings.Join(where, " AND ") + " ORDER BY " + orderSQL(terms) +
		" LIMIT " + a.add(int64(limit)) + " OFFSET " + a.add(int64(cur.Offset()))
	var page tracking.TracePage
	err = s.readOnly(ctx, "search traces", func(tx pgx.Tx) error {
		var err error
		page.Traces, err = queryTraces(ctx, tx, sql, a.args...)
		return err
	})
	if err != nil {
		return tracking.TracePage{}, err
	}
	if len(page.Traces) == limit {
		page.NextPageToken = search.TracePageToken(fp, q.OrderBy, page.Traces[limit-1])
	}
	return page, nil
}
