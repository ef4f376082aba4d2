package pgauth

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
)

// CountThrottle counts the stored throttle buckets of s.
func CountThrottle(t *testing.T, s authstore.Store) int {
	t.Helper()
	n, err := s.(*Store).throttle.Len(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// WithPool returns a copy of s that queries through p.
func WithPool(s authstore.Store, p *pgxpool.Pool) authstore.Store {
	c := *s.(*Store)
	c.pool = p
	c.throttle = &throttle{pool: p}
	return &c
}
