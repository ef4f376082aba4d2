// Package pgstore implements tracking.Store on PostgreSQL, so that several
// caddy-mlflow processes (replicas) can serve one tracking URI. Every
// record lives in the database; nothing on the request path depends on
// process memory. The schema is created and upgraded on Open by the
// embedded migrations in migrations/ (internal/pgdb: tern, under an
// advisory lock, version table mlflow_schema_version).
//
// Writes run in transactions at READ COMMITTED; uniqueness (experiment and
// model names, param keys, model version numbers) is enforced by the
// database's constraints and row locks, never by checking first in
// process memory, so two replicas racing get one winner and one MLflow
// error. Transactions that fail with a serialization failure or deadlock
// are retried.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Component is the name of this store's schema (its version table is
// Component + "_schema_version").
const Component = "mlflow"

// Migrations returns the embedded migrations (for tools and tests).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// Store implements tracking.Store on a PostgreSQL pool.
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool
	now      func() int64 // current time in ms; replaceable in tests
	// foldCollation is the collation ILIKE folds case with: ICU's root
	// locale when the server has it (Unicode case folding, as the
	// in-memory matcher), else the database default.
	foldCollation string
	// observer is told about transactions (observe.go); nil: nobody.
	observer atomic.Pointer[TxObserver]
}

// Store is a complete tracking.Store.
var _ tracking.Store = (*Store)(nil)

// Open connects to the database at uri (postgresql://, postgres://, or
// postgresql+driver://), migrates its schema and returns the store, which
// owns the pool.
func Open(ctx context.Context, uri string, o pgdb.Options) (*Store, error) {
	pool, err := pgdb.Open(ctx, uri, o)
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownsPool = true
	return s, nil
}

// New migrates the schema on pool and returns a store using it. The pool
// stays owned by the caller.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if err := pgdb.Migrate(ctx, pool, Component, Migrations()); err != nil {
		return nil, err
	}
	s := &Store{pool: pool, now: func() int64 { return time.Now().UnixMilli() }, foldCollation: `"default"`}
	var icu bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')`).Scan(&icu); err != nil {
		return nil, wrapErr("probe collations", err)
	}
	if icu {
		s.foldCollation = `"und-x-icu"`
	}
	if err := s.backfillAssessmentSearch(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Pool returns the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool when the store opened it.
func (s *Store) Close() error {
	if s.ownsPool {
		s.pool.Close()
	}
	return nil
}

// maxTxAttempts bounds the retries of a transaction that failed with a
// serialization failure or a deadlock.
const maxTxAttempts = 5

// inTx runs fn in a READ COMMITTED transaction, committing when fn returns
// nil. A serialization failure (40001) or deadlock (40P01) reruns fn in a
// new transaction, so fn must not have effects outside tx. Errors are
// passed through wrapErr.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	var err error
	start := time.Now()
	attempts := 0
	for attempts < maxTxAttempts {
		attempts++
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if !isRetryable(err) {
			break
		}
	}
	s.observe(what, attempts, start, err)
	return wrapErr(what, err)
}

// isRetryable reports serialization failures and deadlocks.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// isUniqueViolation reports a unique_violation (23505), optionally of the
// named constraint ("" for any).
func isUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

// wrapErr passes *tracking.Error through, turns a lost or refused database
// connection into MLflow's retryable TEMPORARILY_UNAVAILABLE (503) and
// wraps anything else with what was being done.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var te *tracking.Error
	if errors.As(err, &te) {
		return te
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "22021" || pe.Code == "22P05") {
		// character_not_in_repertoire / untranslatable_character: text
		// PostgreSQL cannot hold (NUL, invalid UTF-8).
		return tracking.Errorf(tracking.InvalidParameterValue,
			"Invalid value: text must be valid UTF-8 without NUL characters.")
	}
	if Unavailable(err) {
		return tracking.Errorf(tracking.TemporarilyUnavailable,
			"The tracking database is unavailable (%s); retry later.", what)
	}
	if errors.As(err, &pe) && pe.Code == "57014" {
		// query_canceled: the statement ran past the pool's
		// statement_timeout (or the request was cancelled, and then
		// nobody reads the answer). Nothing was committed: retryable.
		return tracking.Errorf(tracking.TemporarilyUnavailable,
			"The tracking database did not answer in time (%s); retry later.", what)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// storable reports whether PostgreSQL's text can hold s (valid UTF-8, no
// NUL). A key or id that is not storable cannot name a stored record.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// Unavailable reports errors that mean the database cannot be reached or
// is shutting down or starting up: connection failures, admin shutdown
// (57P01..57P03), too many connections (53300) and cannot-connect-now.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006", "08001", "08004":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) && !errors.Is(err, context.Canceled) {
		return true
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) {
		return true
	}
	// Connections cut mid-query surface as unexpected EOF / closed conn.
	msg := err.Error()
	for _, s := range []string{"unexpected EOF", "conn closed", "connection reset by peer", "broken pipe", "connection refused"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
