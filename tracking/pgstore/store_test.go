package pgstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
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

func TestStatementTimeoutIsRetryable(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	s, err := Open(context.Background(), uri, pgdb.Options{StatementTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.inTx(context.Background(), "sleeping", func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), "SELECT pg_sleep(1)")
		return err
	})
	var te *tracking.Error
	if !errors.As(err, &te) || te.Code != tracking.TemporarilyUnavailable || te.Code.HTTPStatus() != 503 {
		t.Fatalf("statement timeout gave %v, want TEMPORARILY_UNAVAILABLE (503)", err)
	}
}
