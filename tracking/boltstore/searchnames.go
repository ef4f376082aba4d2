package boltstore

import (
	"bytes"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Name lookups for search_experiments, search_registered_models and
// search_model_versions: the buckets keyed by name (expname, the
// registered models, the model versions) are already indexes on the name,
// so a filter with "name = 'x'" (or, where the key is the bare name,
// "name LIKE 'prefix%'") walks only the keys that can match instead of
// every entity. The range is a superset; every entity in it still goes
// through the filter's matcher.

// nameRange returns the bare-name key range [from, to) that holds every
// entity a name clause of the filter can match; ok is false when no
// clause narrows it. prefixOK allows LIKE with a literal prefix.
func nameRange(clauses []search.Clause, prefixOK bool) (from, to []byte, ok bool) {
	for i := range clauses {
		c := &clauses[i]
		if c.Entity != search.EntityAttribute || c.Key != "name" {
			continue
		}
		lit := ""
		switch {
		case c.Op == search.OpEq:
			lit = c.Str
			from = []byte(lit)
			return from, append(bytes.Clone(from), 0), true
		case c.Op == search.OpLike && prefixOK:
			lit = c.Str
			if i := strings.IndexAny(lit, "%_"); i >= 0 {
				lit = lit[:i]
			}
		}
		if lit != "" {
			from = []byte(lit)
			return from, prefixEnd(from), true
		}
	}
	return nil, nil, false
}

// forRange calls fn for every key of b in [from, to) (all keys when ok is
// false).
func forRange(b *bolt.Bucket, from, to []byte, ok bool, fn func(k, v []byte) error) error {
	c := b.Cursor()
	var k, v []byte
	if ok {
		k, v = c.Seek(from)
	} else {
		k, v = c.First()
	}
	for ; k != nil; k, v = c.Next() {
		if ok && to != nil && bytes.Compare(k, to) >= 0 {
			return nil
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}
