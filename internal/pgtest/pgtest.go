// Package pgtest gives tests a fresh, empty PostgreSQL database of their
// own on the server named by MLFLOW_TEST_POSTGRES_URI (which `.ci/postgres.sh
// start` prints). Without that variable the tests that need PostgreSQL are
// skipped, except under CI=true, where its absence fails them.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURI is the environment variable naming the server: a libpq URI of a
// role that may create databases, e.g.
// postgres://postgres@/postgres?host=/tmp/caddy-mlflow-pg&sslmode=disable.
const EnvURI = "MLFLOW_TEST_POSTGRES_URI"

// ServerURI returns the admin URI of the test server, skipping t (or, under
// CI=true, failing it) when none is configured.
func ServerURI(t testing.TB) string {
	t.Helper()
	uri := os.Getenv(EnvURI)
	if uri == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set under CI=true: start PostgreSQL with `eval \"$(bash .ci/postgres.sh start)\"`", EnvURI)
		}
		t.Skipf("PostgreSQL tests skipped: %s is not set (eval \"$(bash .ci/postgres.sh start)\" sets it)", EnvURI)
	}
	return uri
}

// Available reports whether a test server is configured.
func Available() bool { return os.Getenv(EnvURI) != "" }

// NewDatabase gives t a fresh, empty place of its own on the test server
// and returns a URI of it; it is removed when t ends. The place is a schema
// (t_<random>) of the server's database, named first in the URI's
// search_path, which is much faster than a database per test (CREATE
// DATABASE takes seconds on a loaded machine) and isolates the same way for
// everything the stores do: their tables, sequences and version tables are
// created unqualified. Use NewRealDatabase for a test that needs a database
// of its own.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := ServerURI(t)
	name := randomName(t)
	// Stores a test opened are closed by the time the drop runs (their
	// cleanups were registered later and run first); lock_timeout bounds
	// the wait for one that was not.
	create(t, admin, "CREATE SCHEMA "+name, "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS "+name+" CASCADE")
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URI: %v", EnvURI, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// NewRealDatabase creates an empty database for t, drops it when t ends,
// and returns a URI of it (the server URI with the database name
// replaced). It takes seconds; prefer NewDatabase.
func NewRealDatabase(t testing.TB) string {
	t.Helper()
	admin := ServerURI(t)
	name := randomName(t)
	create(t, admin, "CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return WithDatabase(t, admin, name)
}

// create runs createSQL on the admin connection and registers dropSQL to
// run when t ends.
func create(t testing.TB, admin, createSQL, dropSQL string) {
	t.Helper()
	if err := adminExec(admin, createSQL); err != nil {
		t.Fatalf("pgtest: %s: %v", createSQL, err)
	}
	t.Cleanup(func() {
		if err := adminExec(admin, dropSQL); err != nil {
			t.Logf("pgtest: %s: %v", dropSQL, err)
		}
	})
}

// adminExec runs one statement on a new connection to the admin URI.
func adminExec(admin, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", EnvURI, err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomName(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t_" + hex.EncodeToString(b[:])
}

// WithDatabase returns uri with its database (path) replaced by name.
func WithDatabase(t testing.TB, uri, name string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URI: %v", EnvURI, err)
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String()
}
