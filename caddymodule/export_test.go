package caddymodule

// DBReferences exposes the pool's reference count to the external tests.
var DBReferences = dbReferences

// The tests hash passwords at bcrypt's minimum cost: the authorization
// matrix sends hundreds of wrong passwords, each a full bcrypt comparison.
func init() { bcryptCost = 4 }

// PGReferences exposes the PostgreSQL pool's reference count of uri with
// the settings p to the external tests.
func PGReferences(uri string, p *PostgresConfig) int { return pgReferences(pgKey(uri, p.options())) }

// PGPool returns the pooled PostgreSQL connection pool of uri with the
// settings p (nil when none is open), so that tests can tell a reused pool
// from a new one.
func PGPool(uri string, p *PostgresConfig) any {
	key := pgKey(uri, p.options())
	var found any
	pgPool.Range(func(k, v any) bool {
		if k == key {
			found = v.(*sharedPG).pool
			return false
		}
		return true
	})
	return found
}
