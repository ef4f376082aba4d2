package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Registry searches compiled to SQL: the parsed filter becomes EXISTS
// subqueries on the tag tables and comparisons on columns, the order keys
// an ORDER BY ending in the comparator's unique tie-breakers
// (search.CompareRegisteredModels, search.CompareModelVersions), and a
// keyset page token a WHERE clause on those sort columns, so that rows
// inserted or deleted between two pages never shift the next page.

// promptTag is MLflow's IS_PROMPT_TAG_KEY.
const promptTag = tracking.TagIsPrompt

// mentionsPrompt reports whether a registry filter has a clause on the
// prompt tag (prompts are left out of searches otherwise).
func mentionsPrompt(clauses []search.Clause) bool {
	for i := range clauses {
		if clauses[i].Entity == search.EntityTag && clauses[i].Key == promptTag {
			return true
		}
	}
	return false
}

// registryTagClause compiles a tag clause on the tag table tbl (whose rows
// belong to the searched row when join holds): the tag exists and its
// value matches; "!=" on the prompt tag also matches an absent tag.
func registryTagClause(a *sqlArgs, tbl, join string, c *search.Clause) (string, error) {
	k := a.key(c.Key)
	m, err := stringMatch(a, "t.value", c)
	if err != nil {
		return "", err
	}
	has := fmt.Sprintf("EXISTS (SELECT 1 FROM %s t WHERE %s AND t.key = %s AND %s)", tbl, join, k, m)
	if c.Key == promptTag && c.Op == search.OpNe {
		return fmt.Sprintf("(%s OR NOT EXISTS (SELECT 1 FROM %s t WHERE %s AND t.key = %s))", has, tbl, join, k), nil
	}
	return has, nil
}

// notPrompt is the condition that leaves prompts out.
func notPrompt(a *sqlArgs, tbl, join string) string {
	return fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM %s t WHERE %s AND t.key = %s AND lower(t.value COLLATE %s) = 'true')`,
		tbl, join, a.add(promptTag), a.fold)
}

// pageBounds turns a registry query's max results and cursor into LIMIT
// and OFFSET (max ≤ 0 means every row, as the bbolt store does).
func pageBounds(a *sqlArgs, maxResults int, cur *search.Cursor) string {
	out := ""
	if maxResults > 0 {
		out += " LIMIT " + a.add(int64(maxResults)+1)
	}
	if off := cur.Offset(); off > 0 {
		out += " OFFSET " + a.add(int64(off))
	}
	return out
}

// rmRow is a registered model found by a search, also its
// search.RegisteredModelView for page tokens.
type rmRow struct{ m *tracking.RegisteredModel }

func (r rmRow) Name() string                { return r.m.Name }
func (r rmRow) LastUpdatedTimestamp() int64 { return r.m.LastUpdatedTimestamp }
func (r rmRow) Tag(key string) (string, bool) {
	for _, t := range r.m.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// rmOrderColumns maps registered model order keys to columns.
var rmOrderColumns = map[string]string{"name": "m.name", "last_updated_timestamp": "m.last_updated_time"}

// SearchRegisteredModels implements tracking.RegistryStore.
func (s *Store) SearchRegisteredModels(ctx context.Context, q tracking.RegisteredModelQuery) (tracking.RegisteredModelPage, error) {
	var page tracking.RegisteredModelPage
	fp := search.NewFingerprint("registered models").AddClauses(q.Filter).AddOrderKeys(q.OrderBy)
	cur, err := search.DecodeCursor(q.PageToken, fp) // a *search.Error, as the bbolt store returns it
	if err != nil {
		return page, err
	}
	a := &sqlArgs{fold: s.foldCollation}
	const join = "t.name = m.name"
	var where []string
	if !mentionsPrompt(q.Filter) {
		where = append(where, notPrompt(a, "registered_model_tags", join))
	}
	for i := range q.Filter {
		c := &q.Filter[i]
		var cond string
		var err error
		if c.Entity == search.EntityTag {
			cond, err = registryTagClause(a, "registered_model_tags", join, c)
		} else {
			cond, err = stringMatch(a, "m.name", c)
		}
		if err != nil {
			return page, err
		}
		where = append(where, cond)
	}
	var terms []seekTerm
	for _, k := range q.OrderBy {
		col, ok := rmOrderColumns[k.Key]
		if !ok {
			return page, tracking.Errorf(tracking.InvalidParameterValue, "Invalid order by key '%s' specified.", k.Key)
		}
		terms = append(terms, seekTerm{expr: col, asc: k.Asc})
	}
	terms = append(terms, seekTerm{expr: "m.name", asc: true})
	if cur.Keyset() {
		for i := range terms {
			switch terms[i].expr {
			case "m.name":
				v, _ := cur.Value("name")
				terms[i].val = v.Str
			default:
				v, _ := cur.Value("last_updated_timestamp")
				terms[i].val = v.Int
			}
		}
		where = append(where, afterSQL(a, terms))
	}
	sql := "SELECT m.name, m.creation_time, m.last_updated_time, m.description FROM registered_models m"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + orderSQL(terms) + pageBounds(a, q.MaxResults, cur)
	err = s.readOnly(ctx, "search registered models", func(tx pgx.Tx) error {
		page = tracking.RegisteredModelPage{}
		rows, err := tx.Query(ctx, sql, a.args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			m := &tracking.RegisteredModel{}
			if err := rows.Scan(&m.Name, &m.CreationTimestamp, &m.LastUpdatedTimestamp, &m.Description); err != nil {
				rows.Close()
				return err
			}
			page.Models = append(page.Models, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if q.MaxResults > 0 && len(page.Models) > q.MaxResults {
			page.Models = page.Models[:q.MaxResults]
			page.NextPageToken = search.RegisteredModelPageToken(fp, q.OrderBy, rmRow{page.Models[q.MaxResults-1]})
		}
		return fillModels(ctx, tx, page.Models)
	})
	return page, err
}

// mvRow is a model version found by a search, also its
// search.ModelVersionView for page tokens.
type mvRow struct {
	mv      *tracking.ModelVersion
	version int64
}

func (r mvRow) Name() string                { return r.mv.Name }
func (r mvRow) Version() int64              { return r.version }
func (r mvRow) RunID() string               { return r.mv.RunID }
func (r mvRow) Source() string              { return r.mv.Source }
func (r mvRow) CreationTimestamp() int64    { return r.mv.CreationTimestamp }
func (r mvRow) LastUpdatedTimestamp() int64 { return r.mv.LastUpdatedTimestamp }
func (r mvRow) Tag(key string) (string, bool) {
	for _, t := range r.mv.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// mvFilterColumns and mvOrderColumns map model version filter attributes
// and order keys to columns; mvOrderCursor names the cursor value of each
// column.
var (
	mvFilterColumns = map[string]string{"name": "v.name", "run_id": "v.run_id", "source_path": "v.source", "version_number": "v.version"}
	mvOrderColumns  = map[string]string{
		"name": "v.name", "version_number": "v.version",
		"creation_timestamp": "v.creation_time", "last_updated_timestamp": "v.last_updated_time",
	}
	mvOrderCursor = map[string]string{
		"v.name": "name", "v.version": "version", "v.creation_time": "creation_timestamp", "v.last_updated_time": "last_updated_timestamp",
	}
)

// SearchModelVersions implements tracking.RegistryStore.
func (s *Store) SearchModelVersions(ctx context.Context, q tracking.ModelVersionQuery) (tracking.ModelVersionPage, error) {
	var page tracking.ModelVersionPage
	fp := search.NewFingerprint("model versions").AddClauses(q.Filter).AddOrderKeys(q.OrderBy)
	cur, err := search.DecodeCursor(q.PageToken, fp) // a *search.Error, as the bbolt store returns it
	if err != nil {
		return page, err
	}
	a := &sqlArgs{fold: s.foldCollation}
	const join = "t.name = v.name AND t.version = v.version"
	var where []string
	if !mentionsPrompt(q.Filter) {
		where = append(where, notPrompt(a, "model_version_tags", join))
	}
	for i := range q.Filter {
		c := &q.Filter[i]
		var cond string
		var err error
		switch {
		case c.Entity == search.EntityTag:
			cond, err = registryTagClause(a, "model_version_tags", join, c)
		case c.Key == "version_number":
			cond, err = numMatch(a, "v.version", c)
		default:
			col, ok := mvFilterColumns[c.Key]
			if !ok {
				return page, tracking.Errorf(tracking.InvalidParameterValue, "Invalid attribute key '%s' specified.", c.Key)
			}
			cond, err = stringMatch(a, col, c)
		}
		if err != nil {
			return page, err
		}
		where = append(where, cond)
	}
	keys := q.OrderBy
	if len(keys) == 0 {
		keys = []search.OrderKey{{Entity: search.EntityAttribute, Key: "last_updated_timestamp"}}
	}
	var terms []seekTerm
	for _, k := range keys {
		col, ok := mvOrderColumns[k.Key]
		if !ok {
			return page, tracking.Errorf(tracking.InvalidParameterValue, "Invalid order by key '%s' specified.", k.Key)
		}
		terms = append(terms, seekTerm{expr: col, asc: k.Asc})
	}
	terms = append(terms, seekTerm{expr: "v.name", asc: true}, seekTerm{expr: "v.version", asc: false})
	if cur.Keyset() {
		for i := range terms {
			v, _ := cur.Value(mvOrderCursor[terms[i].expr])
			if terms[i].expr == "v.name" {
				terms[i].val = v.Str
			} else {
				terms[i].val = v.Int
			}
		}
		where = append(where, afterSQL(a, terms))
	}
	sql := "SELECT " + mvColumns + " FROM model_versions v"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + orderSQL(terms) + pageBounds(a, q.MaxResults, cur)
	err = s.readOnly(ctx, "search model versions", func(tx pgx.Tx) error {
		mvs, err := queryVersions(ctx, tx, sql, a.args...)
		if err != nil {
			return err
		}
		page = tracking.ModelVersionPage{Versions: mvs}
		if q.MaxResults > 0 && len(mvs) > q.MaxResults {
			page.Versions = mvs[:q.MaxResults]
		}
		if err := fillVersionTags(ctx, tx, page.Versions, false); err != nil {
			return err
		}
		if len(page.Versions) < len(mvs) {
			last := page.Versions[len(page.Versions)-1]
			var n int64
			fmt.Sscan(last.Version, &n)
			page.NextPageToken = search.ModelVersionPageToken(fp, q.OrderBy, mvRow{last, n})
		}
		return nil
	})
	return page, err
}
