// Package search implements MLflow's search grammar for runs and
// experiments: filter strings, order_by clauses, in-memory matching and
// ordering, and page tokens (keyset tokens, see keyset.go; MLflow's offset
// tokens are still read).
//
// The behaviour follows mlflow/utils/search_utils.py together with the SQL
// tracking store (the reference server runs on SQLite), which is what real
// clients observe:
//
//   - A filter is a list of comparisons joined by AND (case-insensitive).
//     There is no OR, no NOT (other than NOT IN) and no parentheses. Like
//     MLflow (whose sqlparse-based parser only rejects tokens that are
//     neither comparisons nor AND), stray ANDs and comparisons written
//     next to each other without AND are accepted.
//   - An identifier is [entity "."] key, split at the first '.', so
//     tags.mlflow.runName has key "mlflow.runName". Keys may be quoted with
//     backticks or double quotes; the entity may be backticked.
//   - String values are single- or double-quoted and taken verbatim between
//     the quotes (MLflow does not unescape doubled quotes or backslash
//     escapes either). Numbers are unquoted, with optional '-' and
//     exponent.
//   - LIKE is case-sensitive, ILIKE is not; '%' and '_' are the only
//     wildcards and there is no escape character.
//   - Metric clauses compare the latest value; a NaN latest value compares
//     as 0 (MLflow stores NaN as 0 plus a flag). A clause on a metric, param
//     or tag only matches runs that have that key, so != excludes runs
//     without it; IS NULL / IS NOT NULL test presence (params and tags).
//
// Deviations from MLflow, all deliberate:
//
//   - Every error is a *Error (HTTP 400 INVALID_PARAMETER_VALUE), including
//     cases where MLflow answers 500 (invalid comparators on tags and
//     string attributes, a duplicate order_by key, non-dict page tokens).
//   - run_id IN (...) drops values that contain an upper-case letter, as
//     MLflow does (run ids are lower-case hex, so such values can never
//     match). MLflow's test is Python's str.islower(), which also drops
//     values with no letters at all (e.g. all-digit ids); we keep those.
//     MLflow applies the same filter to datasets.name/digest/context IN
//     lists, which makes datasets such as 'MNIST' unmatchable; we keep
//     every value for datasets.
//   - ILIKE folds case with Unicode rules (SQLite's lower() folds ASCII
//     only; PostgreSQL folds Unicode).
//   - A negative page-token offset is refused (MLflow would slice from the
//     end of the result list).
//   - Page tokens issued here are keyset tokens, not offsets (see
//     keyset.go): paging is stable under concurrent inserts and deletes,
//     and a token of another query is refused.
//   - Unquoted keys that happen to be SQL keywords sqlparse mis-groups
//     (e.g. params.in) are accepted; MLflow refuses some of them.
//   - Values inside IN lists are taken verbatim between their single quotes;
//     MLflow evaluates the list as a Python literal (so escapes inside list
//     items differ).
//   - IS [NOT] NULL (MLflow 3.7+) keywords are matched case-insensitively,
//     for experiment tags too.
package search
