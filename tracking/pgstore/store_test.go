package pgstore

import (
	"context"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

// openTest returns a store on a fresh database of its own.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.NewDatabase(t), pgdb.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenMigratesAndReopens(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	s, err := Open(ctx, uri, pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, uri, pgdb.Options{})
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s.Close()
	v, err := pgdb.SchemaVersion(ctx, s.Pool(), Component)
	if err != nil || v < 1 {
		t.Fatalf("schema version %d, %v", v, err)
	}
}
