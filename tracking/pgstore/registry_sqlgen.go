package pgstore

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// SQL generation for the registry, logged model and trace searches.
//
// Every user-supplied value travels as a placeholder ($n); the SQL text is
// built only from this file's own fragments, column expressions chosen
// from fixed whitelists by the callers, and operators from cmpSQL. Text
// columns use the "C" collation, so comparisons and ORDER BY are bytewise
// like the bbolt store's strings.Compare.

// sqlArgs collects the arguments of one statement; fold is the collation
// ILIKE folds case under (Store.foldCollation).
type sqlArgs struct {
	args []any
	fold string
}

// add appends v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	a.args = append(a.args, v)
	return "$" + strconv.Itoa(len(a.args))
}

// cmpSQL maps the parsed comparators to SQL operators (the only operators
// that reach the SQL text).
var cmpSQL = map[string]string{
	search.OpEq: "=", search.OpNe: "<>", search.OpGt: ">", search.OpGe: ">=", search.OpLt: "<", search.OpLe: "<=",
}

// stringMatch compiles the string comparison of clause c on expr (a
// trusted SQL expression of a non-NULL text value) as MLflow's SQL store
// does it: LIKE is case-sensitive with no escape character, ILIKE folds
// case under a.fold (ICU's root locale where the server has it, as
// pgcore's searches), RLIKE is PostgreSQL's regular expression match, as MLflow's
// SQL store runs it on PostgreSQL.
func stringMatch(a *sqlArgs, expr string, c *search.Clause) (string, error) {
	if !storable(c.Str) {
		// No stored text holds NUL or invalid UTF-8: nothing equals or
		// matches such an operand.
		switch c.Op {
		case search.OpNe:
			return "TRUE", nil
		case search.OpEq, search.OpLike, search.OpILike, search.OpRLike:
			return "FALSE", nil
		}
	}
	switch c.Op {
	case search.OpEq, search.OpNe:
		return fmt.Sprintf("%s %s %s", expr, cmpSQL[c.Op], a.add(c.Str)), nil
	case search.OpLike:
		return fmt.Sprintf("%s LIKE %s ESCAPE ''", expr, a.add(c.Str)), nil
	case search.OpILike:
		return fmt.Sprintf(`(%s COLLATE %s) ILIKE %s ESCAPE ''`, expr, a.fold, a.add(c.Str)), nil
	case search.OpRLike:
		return fmt.Sprintf("%s ~ %s", expr, a.add(c.Str)), nil
	case search.OpIn:
		return fmt.Sprintf("%s = ANY(%s::text[])", expr, a.add(listOf(c.List))), nil
	case search.OpNotIn:
		return fmt.Sprintf("NOT (%s = ANY(%s::text[]))", expr, a.add(listOf(c.List))), nil
	}
	return "", tracking.Errorf(tracking.InvalidParameterValue, "Invalid comparator '%s'", c.Op)
}

// listOf returns l without the strings no stored text can equal, never
// nil.
func listOf(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		if storable(s) {
			out = append(out, s)
		}
	}
	return out
}

// key returns the placeholder of a tag, param, metric or metadata key;
// a key no stored text can equal becomes NULL, which equals nothing.
func (a *sqlArgs) key(k string) string {
	if !storable(k) {
		return "NULL::text"
	}
	return a.add(k)
}

// numMatch compiles a numeric comparison of expr (an integer column)
// against the clause's number, compared as float64 like compareNum.
func numMatch(a *sqlArgs, expr string, c *search.Clause) (string, error) {
	op, ok := cmpSQL[c.Op]
	if !ok {
		return "", tracking.Errorf(tracking.InvalidParameterValue, "Invalid comparator '%s'", c.Op)
	}
	return fmt.Sprintf("%s::float8 %s %s::float8", expr, op, a.add(c.Num)), nil
}

// seekTerm is one column of a keyset order: a trusted non-NULL SQL
// expression, its direction and the cursor's value of it.
type seekTerm struct {
	expr string
	asc  bool
	val  any
}

// orderSQL renders the ORDER BY list of terms.
func orderSQL(terms []seekTerm) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		dir := "DESC"
		if t.asc {
			dir = "ASC"
		}
		parts[i] = t.expr + " " + dir
	}
	return strings.Join(parts, ", ")
}

// afterSQL renders "the row sorts after the cursor" for terms: the
// lexicographic comparison (t1 > v1) OR (t1 = v1 AND t2 > v2) ..., with
// < for descending terms. The last term must be unique, so equality on
// every term is the cursor's own row, which is excluded.
func afterSQL(a *sqlArgs, terms []seekTerm) string {
	var ors []string
	eqs := make([]string, 0, len(terms))
	for _, t := range terms {
		p := a.add(t.val)
		op := "<"
		if t.asc {
			op = ">"
		}
		and := append(append([]string(nil), eqs...), fmt.Sprintf("%s %s %s", t.expr, op, p))
		ors = append(ors, "("+strings.Join(and, " AND ")+")")
		eqs = append(eqs, fmt.Sprintf("%s = %s", t.expr, p))
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// searchCursor decodes a page token for the query fp; its errors are
// MLflow's INVALID_PARAMETER_VALUE.
func searchCursor(token string, fp *search.Fingerprint) (*search.Cursor, error) {
	cur, err := search.DecodeCursor(token, fp)
	if err != nil {
		if se, ok := err.(*search.Error); ok {
			return nil, tracking.Errorf(tracking.InvalidParameterValue, "%s", se.Message)
		}
		return nil, tracking.Errorf(tracking.InvalidParameterValue, "%s", err.Error())
	}
	return cur, nil
}

// expIDsForSearch parses and dedupes a search's experiment ids (ids that
// cannot exist are dropped: they match nothing) and adds them to fp in
// sorted order.
func expIDsForSearch(fp *search.Fingerprint, ids []string) []int64 {
	var out []int64
	for _, s := range ids {
		n, ok := parseExpID(s)
		if !ok || s == "" {
			continue
		}
		dup := false
		for _, x := range out {
			dup = dup || x == n
		}
		if !dup {
			out = append(out, n)
		}
	}
	sorted := append([]int64(nil), out...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	fp.AddInt(int64(len(sorted)))
	for _, id := range sorted {
		fp.AddInt(id)
	}
	return out
}

// experimentCond restricts col to the experiments ids. One id is an
// equality, so that the (experiment_id, sort columns) indexes deliver rows
// in order and a LIMIT stops early.
func experimentCond(a *sqlArgs, col string, ids []int64) string {
	if len(ids) == 1 {
		return col + " = " + a.add(ids[0])
	}
	return col + " = ANY(" + a.add(ids) + "::bigint[])"
}
