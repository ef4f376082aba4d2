package pgstore

import (
	"context"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storetest"
)

// TestGCSuite runs the backend-independent tracking.GarbageCollector
// contract on PostgreSQL.
func TestGCSuite(t *testing.T) {
	storetest.RunGC(t, storetest.Factory{
		Open: func(t *testing.T) tracking.Store {
			s, err := Open(context.Background(), pgtest.NewDatabase(t), pgdb.Options{MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}
