package copystore

import (
	"context"
	"fmt"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
)

// openPostgres opens a PostgreSQL store.
func openPostgres(ctx context.Context, uri, role string) (*endpoint, error) {
	return nil, fmt.Errorf("the %s %s: PostgreSQL stores are not supported by this build yet", role, pgdb.Redact(uri))
}
