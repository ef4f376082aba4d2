package pgstore

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Searches are compiled into one parameterized SELECT each. Every value a
// client wrote (keys, operands, patterns, list items, cursor values) is a
// $n parameter; the SQL text is assembled only from the fixed fragments in
// this file (column names, operators from sqlOps, table aliases numbered
// by position), so no client text ever becomes SQL.
//
// Semantics are those of tracking/search's in-memory matcher and
// comparators (MLflow's SQL store): a clause on a metric, param or tag
// only matches runs that have the key; a NaN latest metric compares as 0
// in filters; in orderings a missing value sorts last in both directions
// and a NaN metric sorts after every number and before missing values;
// the tie-breakers are start_time DESC (unless ordered explicitly) then
// run id ASC. Page tokens are the keyset tokens of tracking/search; the
// "after the cursor" test is compiled into the WHERE clause, so a page is
// an index range, not an offset.

// Bounds applied when a query carries no (or an absurd) max_results, as
// in the bbolt store. The handlers validate the limits.
const (
	defaultMaxResults = 1000
	maxMaxResults     = 1 << 20
)

func pageLimit(maxResults int) int {
	limit := maxResults
	if limit <= 0 {
		limit = defaultMaxResults
	}
	return min(limit, maxMaxResults)
}

// decodeCursor decodes a page token for the query fp; a bad one is
// INVALID_PARAMETER_VALUE with MLflow's message.
func decodeCursor(token string, fp *search.Fingerprint) (*search.Cursor, error) {
	cur, err := search.DecodeCursor(token, fp)
	if err != nil {
		if se, ok := err.(*search.Error); ok {
			return nil, tracking.Errorf(tracking.InvalidParameterValue, "%s", se.Message)
		}
		return nil, tracking.Errorf(tracking.InvalidParameterValue, "%s", err.Error())
	}
	return cur, nil
}

// expIDsFingerprint adds experiment ids to fp in a canonical order, as the
// bbolt store does (so tokens are interchangeable between the backends).
func expIDsFingerprint(fp *search.Fingerprint, ids []int64) *search.Fingerprint {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	fp.AddInt(int64(len(sorted)))
	for _, id := range sorted {
		fp.AddInt(id)
	}
	return fp
}

// sqlb accumulates a query's parameters.
type sqlb struct {
	args []any
	fold string // collation for ILIKE case folding (quoted identifier)
}

// arg adds a parameter and returns its placeholder.
func (b *sqlb) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// sqlOps maps the comparison operators of parsed clauses to SQL.
var sqlOps = map[string]string{
	search.OpEq: "=", search.OpNe: "<>", search.OpGt: ">", search.OpGe: ">=", search.OpLt: "<", search.OpLe: "<=",
}

// numCmp compiles a numeric comparison of col (a float8 expression) with
// the clause's number; an operator numbers do not have never matches, as
// in the in-memory matcher.
func (b *sqlb) numCmp(col string, c *search.Clause) string {
	op, ok := sqlOps[c.Op]
	if !ok {
		return "FALSE"
	}
	return col + " " + op + " " + b.arg(c.Num)
}

// strMatch compiles a string comparison of col (a text expression) with
// the clause. LIKE has no escape character, as in MLflow.
func (b *sqlb) strMatch(col string, c *search.Clause) string {
	switch c.Op {
	case search.OpEq:
		return col + " = " + b.arg(c.Str)
	case search.OpNe:
		return col + " <> " + b.arg(c.Str)
	case search.OpLike:
		return col + " LIKE " + b.arg(c.Str) + " ESCAPE ''"
	case search.OpILike:
		return "(" + col + " COLLATE " + b.fold + ") ILIKE " + b.arg(c.Str) + " ESCAPE ''"
	case search.OpIn:
		return col + " = ANY(" + b.arg(inList(c)) + "::text[])"
	case search.OpNotIn:
		return "NOT (" + col + " = ANY(" + b.arg(inList(c)) + "::text[]))"
	}
	return "FALSE"
}

func inList(c *search.Clause) []string {
	if c.List == nil {
		return []string{}
	}
	return c.List
}

// keyed compiles a clause on a key/value table (params, tags, experiment
// tags): IS [NOT] NULL test the key's presence, anything else needs the
// key and a matching value. owner is the correlation condition.
func (b *sqlb) keyed(table, owner string, c *search.Clause) string {
	has := "SELECT 1 FROM " + table + " x WHERE " + owner + " AND x.key = " + b.arg(c.Key)
	switch c.Op {
	case search.OpIsNull:
		return "NOT EXISTS (" + has + ")"
	case search.OpIsNotNull:
		return "EXISTS (" + has + ")"
	}
	return "EXISTS (" + has + " AND " + b.strMatch("x.value", c) + ")"
}

// runClause compiles one search_runs filter clause on runs r.
func (b *sqlb) runClause(c *search.Clause) string {
	switch c.Entity {
	case search.EntityMetric:
		if _, ok := sqlOps[c.Op]; !ok {
			return "FALSE"
		}
		// NaN is stored as 0, which is how MLflow compares it.
		return "EXISTS (SELECT 1 FROM latest_metrics x WHERE x.run_uuid = r.run_uuid AND x.key = " +
			b.arg(c.Key) + " AND " + b.numCmp("x.value", c) + ")"
	case search.EntityParam:
		return b.keyed("params", "x.run_uuid = r.run_uuid", c)
	case search.EntityTag:
		return b.keyed("tags", "x.run_uuid = r.run_uuid", c)
	case search.EntityAttribute:
		switch c.Key {
		case "start_time", "created", "Created":
			return b.numCmp("r.start_time::float8", c)
		case "end_time":
			return b.numCmp("r.end_time::float8", c) // NULL (unset) never matches
		case "run_id":
			return b.strMatch("r.run_uuid", c)
		case "run_name":
			// MLflow matches run_name against the mlflow.runName tag.
			return "EXISTS (SELECT 1 FROM tags x WHERE x.run_uuid = r.run_uuid AND x.key = " +
				b.arg(tracking.TagRunName) + " AND " + b.strMatch("x.value", c) + ")"
		case "user_id":
			return b.strMatch("r.user_id", c)
		case "status":
			return b.strMatch("r.status", c)
		case "artifact_uri":
			return b.strMatch("r.artifact_uri", c)
		}
		return "FALSE"
	case search.EntityDataset:
		// Some dataset input of the run matches.
		var cond string
		switch c.Key {
		case "name":
			cond = b.strMatch("x.name", c)
		case "digest":
			cond = b.strMatch("x.digest", c)
		case "context":
			// Inputs without a context tag are skipped.
			cond = "x.context <> '' AND " + b.strMatch("x.context", c)
		default:
			return "FALSE"
		}
		return "EXISTS (SELECT 1 FROM run_dataset_inputs x WHERE x.run_uuid = r.run_uuid AND " + cond + ")"
	}
	return "FALSE"
}

// sortTerm is one column of an ORDER BY with its keyset comparison
// against the cursor.
type sortTerm struct {
	order  string // ORDER BY item(s)
	gt, eq string // the row sorts after / level with the cursor on this term
	// bound is implied by "after the cursor" when this is the first
	// term ("col >= cursor" in its direction); spelled out, it lets an
	// index scan start at the cursor.
	bound string
}

// after compiles "the row sorts after the cursor" for terms compared
// lexicographically: (t1 > c1) OR (t1 = c1 AND t2 > c2) OR ...
func after(terms []sortTerm) string {
	var ors []string
	for i, t := range terms {
		parts := make([]string, 0, i+1)
		for _, p := range terms[:i] {
			parts = append(parts, p.eq)
		}
		parts = append(parts, t.gt)
		ors = append(ors, "("+strings.Join(parts, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

func dir(asc bool) (order, gt string) {
	if asc {
		return "ASC", ">"
	}
	return "DESC", "<"
}

// presentTerm is a term over a nullable column whose NULLs (missing
// values) sort last in both directions. cur is the cursor's value (nil
// without a cursor), ok whether the cursor has one.
func (b *sqlb) presentTerm(col string, asc bool, cur any, ok, keyset bool) sortTerm {
	o, gt := dir(asc)
	t := sortTerm{order: col + " " + o + " NULLS LAST"}
	if !keyset {
		return t
	}
	if !ok {
		t.gt, t.eq = "FALSE", col+" IS NULL"
		return t
	}
	p := b.arg(cur)
	t.gt = "(" + col + " IS NULL OR " + col + " " + gt + " " + p + ")"
	t.eq = col + " = " + p
	return t
}

// plainTerm is a term over a NOT NULL column.
func (b *sqlb) plainTerm(col string, asc bool, cur any, keyset bool) sortTerm {
	o, gt := dir(asc)
	t := sortTerm{order: col + " " + o}
	if keyset {
		p := b.arg(cur)
		t.gt, t.eq, t.bound = col+" "+gt+" "+p, col+" = "+p, col+" "+gt+"= "+p
	}
	return t
}

// runOrder compiles order keys into joins and sort terms; cv is the
// cursor's position (nil for none).
//
// A metric in inner (filtered by a clause that needs the metric to be
// present) is joined with an inner join: no missing values, and the filter
// applies to the same row the order reads.
func (b *sqlb) runOrder(keys []search.OrderKey, cv search.RunView, inner map[string]bool) (joins []string, terms []sortTerm) {
	keyset := cv != nil
	startExplicit := false
	for i := range keys {
		k := &keys[i]
		alias := "o" + strconv.Itoa(i)
		switch k.Entity {
		case search.EntityMetric:
			join := "LEFT JOIN"
			if inner[k.Key] {
				join = "JOIN"
			}
			joins = append(joins, join+" latest_metrics "+alias+" ON "+alias+".run_uuid = r.run_uuid AND "+
				alias+".key = "+b.arg(k.Key))
			o, gt := dir(k.Asc)
			// Rank: a number (is_nan false), NaN (true), missing (NULL).
			t := sortTerm{order: alias + ".is_nan ASC NULLS LAST, " + alias + ".value " + o}
			if keyset {
				v, ok := cv.LatestMetric(k.Key)
				switch {
				case !ok:
					t.gt, t.eq = "FALSE", alias+".run_uuid IS NULL"
				case math.IsNaN(v):
					t.gt, t.eq = alias+".run_uuid IS NULL", alias+".is_nan"
				default:
					p := b.arg(v)
					t.gt = "(" + alias + ".run_uuid IS NULL OR " + alias + ".is_nan OR " + alias + ".value " + gt + " " + p + ")"
					t.eq = "(NOT " + alias + ".is_nan AND " + alias + ".value = " + p + ")"
				}
			}
			terms = append(terms, t)
		case search.EntityParam, search.EntityTag:
			table := "params"
			var v string
			var ok bool
			if k.Entity == search.EntityTag {
				table = "tags"
			}
			if keyset {
				if k.Entity == search.EntityTag {
					v, ok = cv.Tag(k.Key)
				} else {
					v, ok = cv.Param(k.Key)
				}
			}
			joins = append(joins, "LEFT JOIN "+table+" "+alias+" ON "+alias+".run_uuid = r.run_uuid AND "+
				alias+".key = "+b.arg(k.Key))
			terms = append(terms, b.presentTerm(alias+".value", k.Asc, v, ok, keyset))
		case search.EntityAttribute:
			var cur any
			switch k.Key {
			case "start_time", "created", "Created":
				startExplicit = true
				if keyset {
					cur = cv.StartTime()
				}
				terms = append(terms, b.plainTerm("r.start_time", k.Asc, cur, keyset))
			case "end_time":
				var v int64
				var ok bool
				if keyset {
					v, ok = cv.EndTime()
				}
				terms = append(terms, b.presentTerm("r.end_time", k.Asc, v, ok, keyset))
			default:
				col, get := runStringAttr(k.Key)
				if col == "" {
					continue
				}
				if keyset {
					cur = get(cv)
				}
				terms = append(terms, b.plainTerm(col, k.Asc, cur, keyset))
				if k.Key == "run_id" {
					// Unique: nothing after it ever decides.
					return joins, terms
				}
			}
		}
	}
	var start, id any
	if keyset {
		start, id = cv.StartTime(), cv.RunID()
	}
	if !startExplicit {
		terms = append(terms, b.plainTerm("r.start_time", false, start, keyset))
	}
	terms = append(terms, b.plainTerm("r.run_uuid", true, id, keyset))
	return joins, terms
}

// runStringAttr maps a string run attribute to its column and accessor.
func runStringAttr(key string) (string, func(search.RunView) string) {
	switch key {
	case "run_id":
		return "r.run_uuid", search.RunView.RunID
	case "run_name":
		return "r.name", search.RunView.RunName
	case "user_id":
		return "r.user_id", search.RunView.UserID
	case "status":
		return "r.status", search.RunView.Status
	case "artifact_uri":
		return "r.artifact_uri", search.RunView.ArtifactURI
	}
	return "", nil
}

func orderBy(terms []sortTerm) string {
	items := make([]string, len(terms))
	for i, t := range terms {
		items[i] = t.order
	}
	return strings.Join(items, ", ")
}

func lifecycleCond(col string, v tracking.ViewType) string {
	switch v {
	case tracking.DeletedOnly:
		return col + " = 'deleted'"
	case tracking.AllViews:
		return "TRUE"
	}
	return col + " = 'active'"
}

func normViewType(v tracking.ViewType) tracking.ViewType {
	if v != tracking.DeletedOnly && v != tracking.AllViews {
		return tracking.ActiveOnly
	}
	return v
}

// runSearchSQL compiles a run search into one SELECT of runColumns (on
// alias r) and its parameters.
func (s *Store) runSearchSQL(expIDs []int64, viewType tracking.ViewType, filter []search.Clause,
	keys []search.OrderKey, cur *search.Cursor, limit int) (string, []any) {
	b := &sqlb{fold: s.foldCollation}
	// One experiment is an equality, so that the default order can be
	// read from the runs_experiment_start index.
	var expCond string
	if len(expIDs) == 1 {
		expCond = "r.experiment_id = " + b.arg(expIDs[0])
	} else {
		expCond = "r.experiment_id = ANY(" + b.arg(expIDs) + "::bigint[])"
	}
	where := []string{expCond, lifecycleCond("r.lifecycle_stage", viewType)}
	// Filters on a metric that is also an order key test the joined row.
	metricAlias := map[string]string{}
	for i, k := range keys {
		if k.Entity == search.EntityMetric {
			metricAlias[k.Key] = "o" + strconv.Itoa(i)
		}
	}
	inner := map[string]bool{}
	for i := range filter {
		c := &filter[i]
		if _, numeric := sqlOps[c.Op]; c.Entity == search.EntityMetric && numeric && metricAlias[c.Key] != "" {
			inner[c.Key] = true
			where = append(where, b.numCmp(metricAlias[c.Key]+".value", c))
			continue
		}
		where = append(where, b.runClause(c))
	}
	cv, _ := cur.AfterRunView()
	joins, terms := b.runOrder(keys, cv, inner)
	if cv != nil {
		where = append(where, after(terms))
		if terms[0].bound != "" {
			where = append(where, terms[0].bound)
		}
	}
	sql := "SELECT " + prefixed("r.", runColumns) + " FROM runs r " + strings.Join(joins, " ") +
		" WHERE " + strings.Join(where, " AND ") + " ORDER BY " + orderBy(terms) +
		" LIMIT " + b.arg(limit) + " OFFSET " + b.arg(cur.Offset())
	return sql, b.args
}

// SearchRuns implements tracking.Store. Unknown experiment ids contribute
// nothing, as in MLflow; deleted experiments contribute their runs. As in
// MLflow, every full page has a next token.
func (s *Store) SearchRuns(ctx context.Context, q tracking.RunQuery) (tracking.RunPage, error) {
	var page tracking.RunPage
	limit := pageLimit(q.MaxResults)
	var expIDs []int64
	for _, idStr := range q.ExperimentIDs {
		if idStr == "" {
			continue
		}
		id, ok := parseExpID(idStr)
		if ok && !slices.Contains(expIDs, id) {
			expIDs = append(expIDs, id)
		}
	}
	viewType := normViewType(q.ViewType)
	fp := expIDsFingerprint(search.NewFingerprint("runs"), expIDs).AddInt(int64(viewType)).
		AddClauses(q.Filter).AddOrderKeys(q.OrderBy)
	cur, err := decodeCursor(q.PageToken, fp)
	if err != nil {
		return page, err
	}
	if len(expIDs) == 0 {
		return page, nil
	}
	sql, args := s.runSearchSQL(expIDs, viewType, q.Filter, q.OrderBy, cur, limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return page, wrapErr("search runs", err)
	}
	var views []*pageRun
	for rows.Next() {
		v := &pageRun{}
		var exp int64
		var end, deleted *int64
		ri := &v.run.Info
		if err := rows.Scan(&ri.RunUUID, &exp, &ri.RunName, &ri.UserID, &ri.Status, &ri.StartTime, &end,
			&ri.ArtifactURI, &ri.LifecycleStage, &deleted); err != nil {
			rows.Close()
			return page, wrapErr("search runs", err)
		}
		ri.RunID, ri.ExperimentID = ri.RunUUID, fmtExpID(exp)
		if end != nil {
			ri.EndTime, v.endOK = *end, true
		}
		if deleted != nil {
			ri.DeletedTime = *deleted
		}
		views = append(views, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, wrapErr("search runs", err)
	}
	page.Runs = make([]*tracking.Run, len(views))
	for i, v := range views {
		page.Runs[i] = &v.run
	}
	if err := s.loadRunData(ctx, page.Runs); err != nil {
		return tracking.RunPage{}, wrapErr("search runs", err)
	}
	if len(views) == limit {
		page.NextPageToken = search.RunPageToken(fp, q.OrderBy, views[len(views)-1])
	}
	return page, nil
}

func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = alias + c
	}
	return strings.Join(cols, ", ")
}

// pageRun is a loaded run as a search.RunView, to record the page token.
type pageRun struct {
	run   tracking.Run
	endOK bool
}

var _ search.RunView = (*pageRun)(nil)

func (v *pageRun) RunID() string       { return v.run.Info.RunID }
func (v *pageRun) RunName() string     { return v.run.Info.RunName }
func (v *pageRun) UserID() string      { return v.run.Info.UserID }
func (v *pageRun) Status() string      { return v.run.Info.Status }
func (v *pageRun) ArtifactURI() string { return v.run.Info.ArtifactURI }
func (v *pageRun) StartTime() int64    { return v.run.Info.StartTime }
func (v *pageRun) EndTime() (int64, bool) {
	return v.run.Info.EndTime, v.endOK
}

func (v *pageRun) LatestMetric(key string) (float64, bool) {
	for _, m := range v.run.Data.Metrics {
		if m.Key == key {
			return m.Value, true
		}
	}
	return 0, false
}

func (v *pageRun) Param(key string) (string, bool) {
	for _, p := range v.run.Data.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

func (v *pageRun) Tag(key string) (string, bool) {
	for _, t := range v.run.Data.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

func (v *pageRun) Datasets() []search.Dataset { return nil } // not an order key

// ---------------------------------------------------------------------------
// Experiments.

// expClause compiles one search_experiments filter clause on experiments e.
func (b *sqlb) expClause(c *search.Clause) string {
	switch c.Entity {
	case search.EntityTag:
		return b.keyed("experiment_tags", "x.experiment_id = e.experiment_id", c)
	case search.EntityAttribute:
		switch c.Key {
		case "name":
			return b.strMatch("e.name", c)
		case "creation_time":
			return b.numCmp("e.creation_time::float8", c)
		case "last_update_time":
			return b.numCmp("e.last_update_time::float8", c)
		}
	}
	return "FALSE"
}

var defaultExperimentOrder = []search.OrderKey{
	{Entity: search.EntityAttribute, Key: "creation_time", Asc: false},
	{Entity: search.EntityAttribute, Key: "experiment_id", Asc: true},
}

// expOrder compiles experiment order keys as search.CompareExperiments
// orders: the default is creation_time DESC, experiment_id ASC, and keys
// without experiment_id end with experiment_id DESC.
func (b *sqlb) expOrder(keys []search.OrderKey, cv search.ExperimentView) ([]sortTerm, error) {
	if len(keys) == 0 {
		keys = defaultExperimentOrder
	}
	keyset := cv != nil
	var curID int64
	if keyset {
		var err error
		if curID, err = strconv.ParseInt(cv.ExperimentID(), 10, 64); err != nil {
			return nil, tracking.Errorf(tracking.InvalidParameterValue, "Invalid page token")
		}
	}
	var terms []sortTerm
	hasID := false
	for _, k := range keys {
		var cur any
		var col string
		switch k.Key {
		case "name":
			col = "e.name"
			if keyset {
				cur = cv.Name()
			}
		case "experiment_id":
			hasID = true
			col, cur = "e.experiment_id", curID
		case "creation_time":
			col = "e.creation_time"
			if keyset {
				cur = cv.CreationTime()
			}
		case "last_update_time":
			col = "e.last_update_time"
			if keyset {
				cur = cv.LastUpdateTime()
			}
		default:
			continue
		}
		terms = append(terms, b.plainTerm(col, k.Asc, cur, keyset))
		if k.Key == "name" || k.Key == "experiment_id" {
			// Unique: later keys and the tie-breaker never decide, and
			// leaving them out lets the unique index give the order.
			hasID = true
			break
		}
	}
	if !hasID {
		terms = append(terms, b.plainTerm("e.experiment_id", false, curID, keyset))
	}
	return terms, nil
}

// SearchExperiments implements tracking.Store. As the bbolt store, it
// gives a next token only when more experiments follow.
func (s *Store) SearchExperiments(ctx context.Context, q tracking.ExperimentQuery) (tracking.ExperimentPage, error) {
	var page tracking.ExperimentPage
	limit := pageLimit(q.MaxResults)
	viewType := normViewType(q.ViewType)
	fp := search.NewFingerprint("experiments").AddInt(int64(viewType)).AddClauses(q.Filter).AddOrderKeys(q.OrderBy)
	cur, err := decodeCursor(q.PageToken, fp)
	if err != nil {
		return page, err
	}
	b := &sqlb{fold: s.foldCollation}
	where := []string{lifecycleCond("e.lifecycle_stage", viewType)}
	for i := range q.Filter {
		where = append(where, b.expClause(&q.Filter[i]))
	}
	cv, _ := cur.AfterExperimentView()
	terms, err := b.expOrder(q.OrderBy, cv)
	if err != nil {
		return page, err
	}
	if cv != nil {
		where = append(where, after(terms))
		if terms[0].bound != "" {
			where = append(where, terms[0].bound)
		}
	}
	// One round trip: the page, then each of its experiments' tags (the
	// page is materialized first, so tags are read for its rows only, and
	// ordered again by the same terms, which name only its columns).
	sql := "WITH page AS MATERIALIZED (SELECT " + prefixed("e.", expColumns) + " FROM experiments e WHERE " +
		strings.Join(where, " AND ") + " ORDER BY " + orderBy(terms) + " LIMIT " + b.arg(limit+1) +
		" OFFSET " + b.arg(cur.Offset()) + ") SELECT " + prefixed("e.", expColumns) + ", tg.keys, tg.vals FROM page e" +
		" LEFT JOIN LATERAL (SELECT array_agg(t.key ORDER BY t.key) AS keys, array_agg(t.value ORDER BY t.key) AS vals" +
		" FROM experiment_tags t WHERE t.experiment_id = e.experiment_id) tg ON true ORDER BY " + orderBy(terms)
	rows, err := s.pool.Query(ctx, sql, b.args...)
	if err != nil {
		return page, wrapErr("search experiments", err)
	}
	for rows.Next() {
		var e tracking.Experiment
		var id int64
		var keys, vals []string
		if err := rows.Scan(&id, &e.Name, &e.ArtifactLocation, &e.LifecycleStage, &e.CreationTime, &e.LastUpdateTime,
			&keys, &vals); err != nil {
			rows.Close()
			return page, wrapErr("search experiments", err)
		}
		e.ExperimentID = fmtExpID(id)
		for i := range keys {
			e.Tags = append(e.Tags, tracking.Tag{Key: keys[i], Value: vals[i]})
		}
		page.Experiments = append(page.Experiments, &e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, wrapErr("search experiments", err)
	}
	if len(page.Experiments) > limit {
		page.Experiments = page.Experiments[:limit]
		page.NextPageToken = search.ExperimentPageToken(fp, q.OrderBy, expView{page.Experiments[limit-1]})
	}
	return page, nil
}

// expView is a loaded experiment as a search.ExperimentView (tags are not
// order keys).
type expView struct{ e *tracking.Experiment }

func (v expView) ExperimentID() string      { return v.e.ExperimentID }
func (v expView) Name() string              { return v.e.Name }
func (v expView) CreationTime() int64       { return v.e.CreationTime }
func (v expView) LastUpdateTime() int64     { return v.e.LastUpdateTime }
func (v expView) Tag(string) (string, bool) { return "", false }
