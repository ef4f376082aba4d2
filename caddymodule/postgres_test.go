package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
)

func TestPostgresOptions(t *testing.T) {
	var none *PostgresConfig
	if o := none.options(); o.MaxConns != 0 || o.StatementTimeout != 0 || o.ConnectTimeout != 0 || o.ApplicationName != "caddy-mlflow" {
		t.Fatalf("nil config options = %+v, want pgdb's defaults", o)
	}
	p := &PostgresConfig{MaxConns: 7, StatementTimeout: -1, ConnectTimeout: caddy.Duration(3 * time.Second)}
	o := p.options()
	if o.MaxConns != 7 || o.StatementTimeout >= 0 || o.ConnectTimeout != 3*time.Second {
		t.Fatalf("options = %+v", o)
	}
	// The settings reach the pool configuration.
	cfg, err := pgdb.ParseConfig("postgresql://u@db/m", o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != 7 || cfg.ConnConfig.ConnectTimeout != 3*time.Second {
		t.Fatalf("pool config: max %d, connect timeout %s", cfg.MaxConns, cfg.ConnConfig.ConnectTimeout)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["statement_timeout"]; ok {
		t.Fatal("statement_timeout off still sets statement_timeout")
	}
	cfg, err = pgdb.ParseConfig("postgresql://u@db/m", (&PostgresConfig{StatementTimeout: caddy.Duration(45 * time.Second)}).options())
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ConnConfig.RuntimeParams["statement_timeout"]; got != "45000" {
		t.Fatalf("statement_timeout = %q, want 45000 (ms)", got)
	}
}

func TestPGKey(t *testing.T) {
	o := pgdb.Options{MaxConns: 4}
	a := pgKey("postgresql://u:pw@db:5432/m", o)
	for _, same := range []string{"postgres://u:pw@db:5432/m", "postgresql+psycopg2://u:pw@db:5432/m", " postgresql://u:pw@db:5432/m "} {
		if k := pgKey(same, o); k != a {
			t.Errorf("pgKey(%q) = %q, want %q (one database, one pool)", same, k, a)
		}
	}
	for _, other := range []string{"postgresql://u:other@db:5432/m", "postgresql://v:pw@db:5432/m", "postgresql://u:pw@db:5432/n"} {
		if pgKey(other, o) == a {
			t.Errorf("pgKey(%q) equals the key of another URI", other)
		}
	}
	if pgKey("postgresql://u:pw@db:5432/m", pgdb.Options{MaxConns: 5}) == a {
		t.Error("other pool settings share the pool")
	}
	if !strings.HasPrefix(a, "postgresql://") {
		t.Errorf("key %q", a)
	}
}

// TestProvisionPostgresUnreachable: a failed PostgreSQL provisioning keeps
// no pool reference.
func TestProvisionPostgresUnreachable(t *testing.T) {
	uri := "postgresql://u:pw@127.0.0.1:1/m?sslmode=disable"
	p := &PostgresConfig{ConnectTimeout: caddy.Duration(2 * time.Second)}
	h := &Handler{BackendStoreURI: uri, Postgres: p, ArtifactsDestination: t.TempDir()}
	err := provision(t, h)
	if err == nil || !strings.Contains(err.Error(), "connecting to PostgreSQL u@127.0.0.1:1/m") || strings.Contains(err.Error(), ":pw@") {
		t.Fatalf("Provision error = %v", err)
	}
	if n := pgReferences(pgKey(uri, p.options())); n != 0 {
		t.Fatalf("a failed Provision left %d references", n)
	}
}
