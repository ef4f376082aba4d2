package boltstore

import (
	"bytes"
	"errors"
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
		f, content, err := spanMatchFields(v)
		if err != nil {
			return false, fmt.Errorf("trace %s span %x: %w", traceID, k, err)
		}
		f.Content = func() string { return string(content) }
		if search.MatchSpan(clauses, f) {
			return true, nil
		}
	}
	return false, nil
}

// spanMatchFields reads what span clauses compare of a stored span (see
// encodeSpan) without copying its content, which stays valid only in the
// transaction.
func spanMatchFields(v []byte) (search.SpanFields, []byte, error) {
	var f search.SpanFields
	if len(v) == 0 || v[0] != spanFormat {
		return f, nil, errors.New("unknown span format")
	}
	rest := v[1:]
	var skip string
	for _, dst := range []*string{&skip, &skip, &f.Name, &f.Type, &f.Status} {
		var ok bool
		if *dst, rest, ok = readStr(rest); !ok {
			return f, nil, errors.New("truncated span")
		}
	}
	if len(rest) < 16 {
		return f, nil, errors.New("truncated span")
	}
	return f, rest[16:], nil
}
