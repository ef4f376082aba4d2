package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestNewDatabaseIsEmptyAndUsable(t *testing.T) {
	uri := NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("new database has %d tables", n)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE x (a int)"); err != nil {
		t.Fatal(err)
	}
}

func TestNewDatabasesAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := NewDatabase(t), NewDatabase(t)
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE same_name (a int); INSERT INTO same_name VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Exec(ctx, "CREATE TABLE same_name (a int)"); err != nil {
		t.Fatalf("second place sees the first's table: %v", err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM same_name").Scan(&n); err != nil || n != 0 {
		t.Fatalf("count %d, %v", n, err)
	}
}
