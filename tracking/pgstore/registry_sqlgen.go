package pgstore

import (
	"crypto/rand"
	"encoding/hex"
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

// sqlArgs collects the arguments of one statement.
type sqlArgs struct{ args []any }

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
// case under the database's default collation (Unicode on a UTF-8
// database), RLIKE is PostgreSQL's regular expression match, as MLflow's
// SQL store runs it on PostgreSQL.
func stringMatch(a *sqlArgs, expr string, c *search.Clause) (string, error) {
	switch c.Op {
	case search.OpEq, search.OpNe:
		return fmt.Sprintf("%s %s %s", expr, cmpSQL[c.Op], a.add(c.Str)), nil
	case search.OpLike:
		return fmt.Sprintf("%s LIKE %s ESCAPE ''", expr, a.add(c.Str)), nil
	case search.OpILike:
		return fmt.Sprintf(`(%s COLLATE "default") ILIKE %s ESCAPE ''`, expr, a.add(c.Str)), nil
	case search.OpRLike:
		return fmt.Sprintf("%s ~ %s", expr, a.add(c.Str)), nil
	case search.OpIn:
		return fmt.Sprintf("%s = ANY(%s::text[])", expr, a.add(listOf(c.List))), nil
	case search.OpNotIn:
		return fmt.Sprintf("NOT (%s = ANY(%s::text[]))", expr, a.add(listOf(c.List))), nil
	}
	return "", tracking.Errorf(tracking.InvalidParameterValue, "Invalid comparator '%s'", c.Op)
}

func listOf(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
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

// newHexID returns 32 random lower-hex characters (a version 4 UUID
// without dashes, as MLflow's uuid4().hex).
func newHexID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:]), nil
}

// expIDNumber parses an experiment id as the bbolt store does ("" is the
// default experiment 0); ok is false for anything that cannot be one.
func expIDNumber(id string) (int64, bool) {
	if id == "" {
		return 0, true
	}
	if len(id) > 20 || id[0] == '+' || id[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 10, 63)
	return int64(n), err == nil
}

// appendURIPath appends path segments to an artifact URI as MLflow's
// append_to_uri_path does for the common cases.
func appendURIPath(root string, parts ...string) string {
	out := root
	for _, p := range parts {
		p = strings.TrimLeft(p, "/")
		switch {
		case out == "":
			out = p
		case strings.HasSuffix(out, "/"):
			out += p
		default:
			out += "/" + p
		}
	}
	return out
}

// expIDsForSearch parses and dedupes a search's experiment ids (ids that
// cannot exist are dropped: they match nothing) and adds them to fp in
// sorted order.
func expIDsForSearch(fp *search.Fingerprint, ids []string) []int64 {
	var out []int64
	for _, s := range ids {
		n, ok := expIDNumber(s)
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
