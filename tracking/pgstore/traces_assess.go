package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Assessment and prompt clauses of search_traces (migration
// 004_trace_search.sql): the assessments table's search columns are
// written with the body by putAssessment and the trace import.

// assessmentColumns are an assessment's search columns (NULL name when no
// stored text can hold it).
type assessmentColumns struct {
	typ, value    string
	name          *string
	valid, scoped bool
}

func searchColumns(a *tracking.Assessment) assessmentColumns {
	f := a.SearchFields()
	c := assessmentColumns{typ: f.Type, value: f.Value, valid: f.Valid, scoped: f.SessionScoped}
	if storable(f.Name) {
		name := f.Name
		c.name = &name
	}
	return c
}

// assessmentClause compiles a feedback, expectation or issue clause as
// SqlAlchemyStore does: a valid assessment of the kind and name whose
// value matches, on the trace itself or, when session-scoped, on a trace
// of its session (mlflow.trace.session metadata). sessions are the
// sessions the clause's session-scoped matches cover
// (assessmentSessions): the query then has a branch for them, and
// otherwise stays one semi-join (or anti-join) the planner estimates
// well, read through assessments_search.
func assessmentClause(a *sqlArgs, c *search.Clause, sessions []string) (string, error) {
	if c.Entity == search.EntityIssue {
		return fmt.Sprintf("ti.request_id IN (SELECT x.request_id FROM assessments x WHERE x.assessment_type = %s AND x.name = %s)",
			a.add(search.AssessmentType(c)), a.key(c.Str)), nil
	}
	match, err := assessmentMatch(a, c)
	if err != nil {
		return "", err
	}
	cond := fmt.Sprintf("ti.request_id IN (SELECT x.request_id FROM assessments x WHERE %s)", match)
	if len(sessions) > 0 {
		cond = fmt.Sprintf("(%s OR ti.request_id IN (SELECT ms.request_id FROM trace_request_metadata ms WHERE ms.key = %s AND ms.value = ANY(%s::text[])))",
			cond, a.add(search.TraceMetadataSession), a.add(sessions))
	}
	if c.Op == search.OpIsNull {
		return "NOT " + cond, nil
	}
	return cond, nil
}

// assessmentMatch is the condition on an assessments row x for a
// feedback or expectation clause.
func assessmentMatch(a *sqlArgs, c *search.Clause) (string, error) {
	var valueCond string
	switch c.Op {
	case search.OpIsNull, search.OpIsNotNull:
		valueCond = "TRUE"
	case search.OpEq, search.OpNe:
		vals := listOf(c.List)
		if c.Op == search.OpNe {
			valueCond = fmt.Sprintf("NOT (x.value = ANY(%s::text[]))", a.add(vals))
			break
		}
		prefixes := make([]string, len(vals))
		for i, v := range vals {
			prefixes[i] = firstRunes(v, assessmentValuePrefix)
		}
		valueCond = fmt.Sprintf("left(x.value, %d) = ANY(%s::text[]) AND x.value = ANY(%s::text[])",
			assessmentValuePrefix, a.add(prefixes), a.add(vals))
	default:
		m, err := stringMatch(a, "x.value", c)
		if err != nil {
			return "", err
		}
		valueCond = m
	}
	return fmt.Sprintf("x.assessment_type = %s AND x.name = %s AND x.valid AND %s",
		a.add(search.AssessmentType(c)), a.key(c.Key), valueCond), nil
}

// assessmentSessions returns, per filter clause index, the sessions the
// feedback and expectation clauses' session-scoped matches cover: the
// sessions of the traces holding them.
func (s *Store) assessmentSessions(ctx context.Context, clauses []search.Clause) (map[int][]string, error) {
	out := map[int][]string{}
	for i := range clauses {
		c := &clauses[i]
		if c.Entity != search.EntityFeedback && c.Entity != search.EntityExpectation {
			continue
		}
		a := &sqlArgs{fold: s.foldCollation}
		match, err := assessmentMatch(a, c)
		if err != nil {
			return nil, err
		}
		sql := fmt.Sprintf(`SELECT DISTINCT m.value FROM assessments x JOIN trace_request_metadata m
			ON m.request_id = x.request_id AND m.key = %s WHERE %s AND x.session_scoped`, a.add(search.TraceMetadataSession), match)
		err = s.readOnly(ctx, "search traces", func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, sql, a.args...)
			if err != nil {
				return err
			}
			sessions, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if len(sessions) > 0 {
				out[i] = sessions
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// assessmentValuePrefix is how many characters of an assessment's value
// the assessments_search index holds (values may be longer than an index
// row can be).
const assessmentValuePrefix = 200

func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// promptClause compiles prompt = 'name/version'.
func promptClause(a *sqlArgs, c *search.Clause) string {
	name, version, _ := cutLast(c.Str)
	return fmt.Sprintf("EXISTS (SELECT 1 FROM trace_tags t WHERE t.request_id = ti.request_id AND t.key = %s AND mlflow_links_prompt(t.value, %s, %s))",
		a.key(c.Key), a.key(name), a.key(version))
}

func cutLast(s string) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// backfillAssessmentSearch fills the search columns of assessments written
// before migration 004, a batch per transaction.
func (s *Store) backfillAssessmentSearch(ctx context.Context) error {
	for {
		n := 0
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
			n = 0
			rows, err := tx.Query(ctx, `SELECT request_id, assessment_id, body::text FROM assessments
				WHERE assessment_type IS NULL LIMIT 1000 FOR UPDATE`)
			if err != nil {
				return err
			}
			type row struct{ req, id, body string }
			var batch []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.req, &r.id, &r.body); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range batch {
				var a tracking.Assessment
				if err := json.Unmarshal([]byte(r.body), &a); err != nil {
					return fmt.Errorf("decode assessment %s of trace %s: %w", r.id, r.req, err)
				}
				f := searchColumns(&a)
				if _, err := tx.Exec(ctx, `UPDATE assessments SET assessment_type = $3, name = $4, value = $5, valid = $6,
					session_scoped = $7 WHERE request_id = $1 AND assessment_id = $2`,
					r.req, r.id, f.typ, f.name, f.value, f.valid, f.scoped); err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return wrapErr("backfill assessment search columns", err)
		}
		if n < 1000 {
			return nil
		}
	}
}
