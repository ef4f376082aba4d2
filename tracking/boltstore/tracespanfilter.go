package boltstore

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// traceSpansMatch reports whether one stored span of the trace satisfies
// every span clause (true when there are none), as MLflow's SQL store
// applies a filter's span clauses to the same span.
func traceSpansMatch(tx *bolt.Tx, traceID string, clauses []search.Clause) (bool, error) {
	if len(clauses) == 0 {
		return true, nil
	}
	prefix := appendStr(nil, traceID)
	c := tx.Bucket(bSpan).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		sp, err := decodeSpan(traceID, v)
		if err != nil {
			return false, fmt.Errorf("trace %s span %x: %w", traceID, k, err)
		}
		if search.MatchSpan(clauses, search.SpanFields{Name: sp.Name, Type: sp.Type, Status: sp.Status,
			Content: func() string { return string(sp.Content) }}) {
			return true, nil
		}
	}
	return false, nil
}
