package pgstore

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// search_logged_models compiled to SQL with the semantics of
// search.MatchLoggedModel and search.CompareLoggedModels (the bbolt
// store's, after MLflow's SqlAlchemyStore.search_logged_models): a metric
// clause holds when any point of the metric (on one of the datasets, when
// given) satisfies it; ordering by a metric uses its latest point (the
// greatest (timestamp, step), first in point order among equals) on the
// order's dataset, models without one last; empty string attributes sort
// last; tie-breakers creation time newest first, then model id.

// lmFilterColumns maps filter attributes to columns.
var lmFilterColumns = map[string]string{
	"name": "lm.name", "model_id": "lm.model_id", "model_type": "lm.model_type", "status": "lm.status",
	"source_run_id": "lm.source_run_id", "creation_timestamp": "lm.creation_timestamp",
	"last_updated_timestamp": "lm.last_updated_timestamp",
}

// lmOrderColumns maps order attributes (LoggedModelAttr keys) to columns;
// lmNumericOrder lists the numeric ones.
var (
	lmOrderColumns = map[string]string{
		"name": "lm.name", "model_id": "lm.model_id", "model_type": "lm.model_type", "status_number": "lm.status_number",
		"source_run_id": "lm.source_run_id", "experiment_id": `(lm.experiment_id::text COLLATE "C")`,
		"artifact_location": "lm.artifact_location", "status_message": "lm.status_message",
		"creation_timestamp": "lm.creation_timestamp", "last_updated_timestamp": "lm.last_updated_timestamp",
	}
	lmNumericOrder = map[string]bool{"status_number": true, "creation_timestamp": true, "last_updated_timestamp": true}
)

// datasetCond is the condition that metric point p is on one of ds.
func datasetCond(a *sqlArgs, ds []search.DatasetRef) string {
	names, digests := make([]string, len(ds)), make([]string, len(ds))
	for i, d := range ds {
		names[i], digests[i] = d.Name, d.Digest
	}
	return fmt.Sprintf("EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[]) AS d(n, g) "+
		"WHERE p.dataset_name = d.n AND (d.g = '' OR p.dataset_digest = d.g))", a.add(names), a.add(digests))
}

// metricValueMatch compares point p's value as compareNum does, NaN
// (stored as 0 plus is_nan) matching only "!=".
func metricValueMatch(a *sqlArgs, c *search.Clause) (string, error) {
	op, ok := cmpSQL[c.Op]
	if !ok {
		return "", tracking.Errorf(tracking.InvalidParameterValue, "Invalid comparator '%s'", c.Op)
	}
	if c.Op == search.OpNe {
		return fmt.Sprintf("(p.is_nan OR p.value <> %s::float8)", a.add(c.Num)), nil
	}
	return fmt.Sprintf("(NOT p.is_nan AND p.value %s %s::float8)", op, a.add(c.Num)), nil
}

// SearchLoggedModels implements tracking.LoggedModelStore.
func (s *Store) SearchLoggedModels(ctx context.Context, q tracking.LoggedModelQuery) (tracking.LoggedModelPage, error) {
	var page tracking.LoggedModelPage
	fp := search.NewFingerprint("logged models")
	expIDs := expIDsForSearch(fp, q.ExperimentIDs)
	fp.AddClauses(q.Filter).AddDatasetRefs(q.Datasets).AddLoggedModelOrders(q.OrderBy)
	cur, err := searchCursor(q.After, fp)
	if err != nil {
		return page, err
	}
	a := &sqlArgs{fold: s.foldCollation}
	where := []string{experimentCond(a, "lm.experiment_id", expIDs)}
	hasMetricClause := false
	for i := range q.Filter {
		c := &q.Filter[i]
		var cond string
		var err error
		switch c.Entity {
		case search.EntityTag, search.EntityParam:
			tbl := "logged_model_tags"
			if c.Entity == search.EntityParam {
				tbl = "logged_model_params"
			}
			var m string
			if m, err = stringMatch(a, "t.value", c); err == nil {
				cond = fmt.Sprintf("EXISTS (SELECT 1 FROM %s t WHERE t.model_id = lm.model_id AND t.key = %s AND %s)", tbl, a.key(c.Key), m)
			}
		case search.EntityMetric:
			hasMetricClause = true
			var m string
			if m, err = metricValueMatch(a, c); err == nil {
				ds := ""
				if len(q.Datasets) > 0 {
					ds = " AND " + datasetCond(a, q.Datasets)
				}
				cond = fmt.Sprintf("EXISTS (SELECT 1 FROM logged_model_metrics p WHERE p.model_id = lm.model_id AND p.key = %s%s AND %s)",
					a.key(c.Key), ds, m)
			}
		default:
			col, ok := lmFilterColumns[c.Key]
			switch {
			case !ok:
				err = tracking.Errorf(tracking.InvalidParameterValue, "Invalid attribute key '%s' specified.", c.Key)
			case c.Key == "creation_timestamp" || c.Key == "last_updated_timestamp":
				cond, err = numMatch(a, col, c)
			default:
				cond, err = stringMatch(a, col, c)
			}
		}
		if err != nil {
			return page, err
		}
		where = append(where, cond)
	}
	if len(q.Datasets) > 0 && !hasMetricClause {
		where = append(where, "EXISTS (SELECT 1 FROM logged_model_metrics p WHERE p.model_id = lm.model_id AND "+datasetCond(a, q.Datasets)+")")
	}

	// Sort terms, with the cursor's values when paging by keyset.
	var joins []string
	var terms []seekTerm
	hasCreation := false
	for i := range q.OrderBy {
		o := &q.OrderBy[i]
		if key := o.Metric(); key != "" {
			alias := fmt.Sprintf("o%d", i)
			cond := "p.key = " + a.key(key)
			if o.DatasetName != "" {
				cond += " AND p.dataset_name = " + a.add(o.DatasetName)
			}
			if o.DatasetDigest != "" {
				cond += " AND p.dataset_digest = " + a.add(o.DatasetDigest)
			}
			joins = append(joins, fmt.Sprintf(`LEFT JOIN LATERAL (SELECT p.value, p.is_nan FROM logged_model_metrics p
				WHERE p.model_id = lm.model_id AND %s
				ORDER BY p.timestamp DESC, p.step DESC, p.run_id, p.dataset_name, p.dataset_digest, p.value, p.is_nan
				LIMIT 1) %s ON true`, cond, alias))
			absent := seekTerm{expr: fmt.Sprintf("(%s.value IS NULL)", alias), asc: true}
			rank := seekTerm{expr: fmt.Sprintf("(CASE WHEN %s.is_nan THEN 0 ELSE 1 END)", alias), asc: o.Ascending}
			val := seekTerm{expr: fmt.Sprintf("coalesce(%s.value, 0)", alias), asc: o.Ascending}
			if v, present, ok := cur.LatestLoggedModelMetric(o); ok {
				absent.val, rank.val, val.val = !present, 1, 0.0
				switch {
				case !present:
					rank.val = 1
				case math.IsNaN(v):
					rank.val = 0
				default:
					val.val = v
				}
			}
			terms = append(terms, absent, rank, val)
			continue
		}
		attr := o.Attr()
		col, ok := lmOrderColumns[attr]
		if !ok {
			return page, tracking.Errorf(tracking.InvalidParameterValue, "Invalid order by field name: %s", o.FieldName)
		}
		hasCreation = hasCreation || attr == "creation_timestamp"
		cv, ok := cur.Value("a." + attr)
		if lmNumericOrder[attr] {
			t := seekTerm{expr: col, asc: o.Ascending}
			if ok {
				t.val = cv.Int
			}
			terms = append(terms, t)
			continue
		}
		empty := seekTerm{expr: fmt.Sprintf("(%s = '')", col), asc: true}
		t := seekTerm{expr: col, asc: o.Ascending}
		if ok {
			empty.val, t.val = cv.Str == "", cv.Str
		}
		terms = append(terms, empty, t)
	}
	if !hasCreation {
		t := seekTerm{expr: "lm.creation_timestamp", asc: false}
		if cv, ok := cur.Value("a.creation_timestamp"); ok {
			t.val = cv.Int
		}
		terms = append(terms, t)
	}
	idTerm := seekTerm{expr: "lm.model_id", asc: true}
	if cv, ok := cur.Value("a.model_id"); ok {
		idTerm.val = cv.Str
	}
	terms = append(terms, idTerm)
	if cur.Keyset() {
		where = append(where, afterSQL(a, terms))
	}
	limit, offset := max(q.MaxResults, 0), max(q.Offset, 0)
	var sql string
	if len(expIDs) <= 1 || len(joins) > 0 || hasOrderKeysBeyondCreation(q.OrderBy) {
		sql = "SELECT " + lmColumns + " FROM logged_models lm " + strings.Join(joins, " ") +
			" WHERE " + strings.Join(where, " AND ") + " ORDER BY " + orderSQL(terms) +
			" LIMIT " + a.add(int64(limit)+1) + " OFFSET " + a.add(int64(offset))
	} else {
		// In the order of logged_models_experiment_created, "experiment_id
		// = ANY(...)" makes PostgreSQL read and sort every model of the
		// experiments; reading each experiment's first offset+limit+1 from
		// the index and merging those reads only what the page needs.
		// where[0] is experimentCond's "lm.experiment_id = ANY($n::bigint[])".
		ids := strings.TrimSuffix(strings.TrimPrefix(where[0], "lm.experiment_id = ANY("), ")")
		where[0] = "lm.experiment_id = e.id"
		sql = "SELECT " + lmColumns + " FROM unnest(" + ids + ") AS e(id) CROSS JOIN LATERAL " +
			"(SELECT lm.* FROM logged_models lm WHERE " + strings.Join(where, " AND ") + " ORDER BY " + orderSQL(terms) +
			" LIMIT " + a.add(int64(offset+limit)+1) + ") lm ORDER BY " + orderSQL(terms) +
			" LIMIT " + a.add(int64(limit)+1) + " OFFSET " + a.add(int64(offset))
	}
	err = s.readOnly(ctx, "search logged models", func(tx pgx.Tx) error {
		page = tracking.LoggedModelPage{}
		rows, err := tx.Query(ctx, sql, a.args...)
		if err != nil {
			return err
		}
		var models []*tracking.LoggedModel
		for rows.Next() {
			m, err := scanLoggedModel(rows)
			if err != nil {
				rows.Close()
				return err
			}
			models = append(models, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		page.More = len(models) > limit
		page.Models = models[:min(limit, len(models))]
		if err := fillLoggedModels(ctx, tx, page.Models); err != nil {
			return err
		}
		if page.More && len(page.Models) > 0 {
			page.Next = search.LoggedModelPageToken(fp, q.OrderBy, page.Models[len(page.Models)-1])
		}
		return nil
	})
	return page, err
}

// hasOrderKeysBeyondCreation reports whether keys order by something
// other than creation time newest first (the order of the
// logged_models_experiment_created index, with the model id tie-breaker).
func hasOrderKeysBeyondCreation(keys []search.LoggedModelOrder) bool {
	switch len(keys) {
	case 0:
		return false
	case 1:
		return keys[0].Attr() != "creation_timestamp" || keys[0].Metric() != "" || keys[0].Ascending
	}
	return true
}
