package pgdb

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

func TestIsURI(t *testing.T) {
	for uri, want := range map[string]bool{
		"postgresql://u:p@h:5432/db":   true,
		"postgres://h/db":              true,
		"postgresql+psycopg2://u@h/db": true,
		"POSTGRESQL://h/db":            true,
		"sqlite:///x.db":               false,
		"bbolt:///x":                   false,
		"/var/lib/mlflow.bolt":         false,
		"mysql+pymysql://u@h/db":       false,
		"postgresql:/no-slashes":       false,
	} {
		if got := IsURI(uri); got != want {
			t.Errorf("IsURI(%q) = %v, want %v", uri, got, want)
		}
	}
}

func TestParseConfigOptionsAndDriverPrefix(t *testing.T) {
	cfg, err := ParseConfig("postgresql+psycopg2://alice:s3cret@db.example:6543/mlflow?sslmode=disable", Options{MaxConns: 7, StatementTimeout: 2 * time.Second, ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.ConnConfig
	if c.Host != "db.example" || c.Port != 6543 || c.User != "alice" || c.Password != "s3cret" || c.Database != "mlflow" {
		t.Fatalf("parsed %+v", c)
	}
	if cfg.MaxConns != 7 || c.ConnectTimeout != 3*time.Second || c.RuntimeParams["statement_timeout"] != "2000" {
		t.Fatalf("options not applied: max %d connect %s params %v", cfg.MaxConns, c.ConnectTimeout, c.RuntimeParams)
	}
	d, err := ParseConfig("postgres://h/db?sslmode=disable", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.MaxConns != DefaultMaxConns || d.ConnConfig.RuntimeParams["statement_timeout"] != "30000" || d.ConnConfig.RuntimeParams["application_name"] != "caddy-mlflow" {
		t.Fatalf("defaults not applied: %d %v", d.MaxConns, d.ConnConfig.RuntimeParams)
	}
}

func TestPasswordFromEnvironmentAndPassfile(t *testing.T) {
	t.Setenv("PGPASSWORD", "from-env")
	cfg, err := ParseConfig("postgresql://bob@h:5432/db?sslmode=disable", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnConfig.Password != "from-env" {
		t.Fatalf("PGPASSWORD not used: %q", cfg.ConnConfig.Password)
	}
	t.Setenv("PGPASSWORD", "")
	dir := t.TempDir()
	pass := dir + "/pgpass"
	if err := writeFile(pass, "h:5432:db:bob:from-file\n"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", pass)
	cfg, err = ParseConfig("postgresql://bob@h:5432/db?sslmode=disable", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnConfig.Password != "from-file" {
		t.Fatalf("PGPASSFILE not used: %q", cfg.ConnConfig.Password)
	}
}

func TestUnreachableNamesHostNotPassword(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, "postgresql://carol:topsecret-pw@127.0.0.1:1/mlflow?sslmode=disable", Options{ConnectTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("connected to port 1")
	}
	msg := err.Error()
	if strings.Contains(msg, "topsecret-pw") {
		t.Fatalf("error shows the password: %s", msg)
	}
	if !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "carol") {
		t.Fatalf("error does not name the server: %s", msg)
	}
	_, err = ParseConfig("postgresql://carol:topsecret-pw@h:notaport/db", Options{})
	if err == nil || strings.Contains(err.Error(), "topsecret-pw") {
		t.Fatalf("bad URI error: %v", err)
	}
	if got := Redact("postgresql://carol:topsecret-pw@h/db?password=x2"); strings.Contains(got, "topsecret") || strings.Contains(got, "x2") {
		t.Fatalf("Redact: %s", got)
	}
}

func TestMigrateConcurrentAndNewerSchema(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	migs := fstest.MapFS{
		"001_a.sql": {Data: []byte("CREATE TABLE a (id bigint PRIMARY KEY);")},
		"002_b.sql": {Data: []byte("CREATE TABLE b (id bigint PRIMARY KEY); INSERT INTO a VALUES (1);")},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := Open(ctx, uri, Options{MaxConns: 2})
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- Migrate(ctx, pool, "test", migs)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	pool, err := Open(ctx, uri, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM a").Scan(&n); err != nil || n != 1 {
		t.Fatalf("migration 2 applied %d times (err %v)", n, err)
	}
	if v, err := SchemaVersion(ctx, pool, "test"); err != nil || v != 2 {
		t.Fatalf("version %d, %v", v, err)
	}
	// A binary that knows only migration 1 refuses the database.
	err = Migrate(ctx, pool, "test", fstest.MapFS{"001_a.sql": migs["001_a.sql"]})
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("older binary: %v", err)
	}
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

// TestMigrateOutlivesStatementTimeout: a migration longer than the pool's
// statement_timeout (an index build on a big table) still runs, and the
// connection goes back to the pool with the timeout in force again.
func TestMigrateOutlivesStatementTimeout(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	pool, err := Open(ctx, uri, Options{MaxConns: 1, StatementTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	migs := fstest.MapFS{"001_slow.sql": {Data: []byte("SELECT pg_sleep(0.3); CREATE TABLE slow (id bigint);")}}
	if err := Migrate(ctx, pool, "slow", migs); err != nil {
		t.Fatalf("a migration longer than statement_timeout: %v", err)
	}
	var st string
	if err := pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&st); err != nil || st != "50ms" {
		t.Fatalf("statement_timeout after migrating = %q, %v; want the pool's 50ms", st, err)
	}
}
