package pgdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// Migrate brings the schema of one component (e.g. "mlflow", "gateway") up
// to the newest migration in migrations: files named NNN_name.sql at the
// root of the FS, applied in order, each in its own transaction, recorded
// in the table <component>_schema_version. Migrations are forward-only.
//
// Replicas starting at once do not race: tern holds a PostgreSQL advisory
// lock for the whole run, so one migrates and the others then find the
// schema current. A database whose schema is newer than the binary's
// migrations is refused with a message saying so.
func Migrate(ctx context.Context, pool *pgxpool.Pool, component string, migrations fs.FS) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrating %s schema: %w", component, err)
	}
	defer conn.Release()
	// Migrations (an index build on a big table) and the wait for the
	// advisory lock another replica holds while it migrates may take
	// longer than the pool's statement_timeout, which is for requests:
	// this session has none while it migrates.
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0"); err != nil {
		return fmt.Errorf("migrating %s schema: lifting the statement timeout: %w", component, err)
	}
	defer func() {
		// Back to the pool's setting; a connection that cannot be reset
		// is closed rather than handed out without a timeout.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(rctx, "RESET statement_timeout"); err != nil {
			_ = conn.Conn().Close(rctx)
		}
	}()
	table := component + "_schema_version"
	m, err := migrate.NewMigrator(ctx, conn.Conn(), table)
	if err != nil {
		return fmt.Errorf("migrating %s schema: %w", component, err)
	}
	if err := m.LoadMigrations(migrations); err != nil {
		return fmt.Errorf("loading %s migrations: %w", component, err)
	}
	known := int32(len(m.Migrations))
	current, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return fmt.Errorf("reading %s schema version: %w", component, err)
	}
	if current > known {
		return newerSchemaError(component, current, known)
	}
	if err := m.Migrate(ctx); err != nil {
		var bad migrate.BadVersionError
		if errors.As(err, &bad) {
			if v, verr := m.GetCurrentVersion(ctx); verr == nil && v > known {
				return newerSchemaError(component, v, known)
			}
		}
		return fmt.Errorf("migrating %s schema to version %d: %w", component, known, err)
	}
	return nil
}

// SchemaVersion returns the applied version of a component's schema (0
// when it has none yet).
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool, component string) (int32, error) {
	var exists bool
	table := component + "_schema_version"
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return 0, fmt.Errorf("reading %s schema version: %w", component, err)
	}
	if !exists {
		return 0, nil
	}
	var v int32
	if err := pool.QueryRow(ctx, "SELECT version FROM "+table).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading %s schema version: %w", component, err)
	}
	return v, nil
}

// ErrNewerSchema is wrapped by Migrate's error for a database whose schema
// is newer than the binary.
var ErrNewerSchema = errors.New("database schema is newer than this binary")

func newerSchemaError(component string, current, known int32) error {
	return fmt.Errorf("%w: the %s schema is at version %d but this caddy-mlflow knows versions up to %d; a newer caddy-mlflow migrated this database, so run that version (or newer) instead of downgrading", ErrNewerSchema, component, current, known)
}
