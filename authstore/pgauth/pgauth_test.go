package pgauth_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/authstoretest"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/pgauth"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

func pool(t *testing.T, uri string) *pgxpool.Pool {
	t.Helper()
	p, err := pgdb.Open(context.Background(), uri, pgdb.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// open gives two stores on two pools of one fresh database: two replicas.
func open(t *testing.T) (authstore.Store, authstore.Store) {
	t.Helper()
	uri := pgtest.NewDatabase(t)
	a, err := pgauth.New(context.Background(), pool(t, uri))
	if err != nil {
		t.Fatal(err)
	}
	b, err := pgauth.New(context.Background(), pool(t, uri))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestSuite(t *testing.T) {
	authstoretest.Run(t, open, authstoretest.Options{})
}
