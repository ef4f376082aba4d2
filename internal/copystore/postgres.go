package copystore

import (
	"context"
	"fmt"

	"github.com/caddy-mlflow/caddy-mlflow/authstore/pgauth"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// openPostgres opens (and migrates) a PostgreSQL store and the gateway's
// state in the same database.
func openPostgres(ctx context.Context, uri, role string) (*endpoint, error) {
	s, err := pgstore.Open(ctx, uri, pgdb.Options{ApplicationName: "caddy-mlflow copy-store", MaxConns: 8})
	if err != nil {
		return nil, fmt.Errorf("opening the %s store %s: %w", role, pgdb.Redact(uri), err)
	}
	auth, err := pgauth.New(ctx, s.Pool())
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("opening the %s store's users %s: %w", role, pgdb.Redact(uri), err)
	}
	return &endpoint{name: pgdb.Redact(uri), store: s, auth: authStream{auth}, close: s.Close}, nil
}
