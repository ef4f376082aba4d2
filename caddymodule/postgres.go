package caddymodule

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// PostgresConfig tunes the connection pool of a PostgreSQL
// backend_store_uri. The zero value (or no postgres block) takes every
// default.
//
// Caddyfile:
//
//	postgres {
//		max_conns         <n>         # default 32
//		statement_timeout <duration>  # default 30s; off disables it
//		connect_timeout   <duration>  # default 10s
//	}
type PostgresConfig struct {
	// MaxConns is the largest number of connections this handler's pool
	// opens. Default 32. With several replicas, their sum must stay below
	// the server's max_connections.
	MaxConns int32 `json:"max_conns,omitempty"`

	// StatementTimeout is the server-side statement_timeout of every
	// connection: a statement running longer is cancelled and the request
	// fails. Default 30s; negative (Caddyfile: off) disables it.
	StatementTimeout caddy.Duration `json:"statement_timeout,omitempty"`

	// ConnectTimeout bounds establishing one connection, TLS and
	// authentication included; it also bounds the first connection at
	// provisioning. Default 10s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`
}

// check validates the settings (no I/O). A nil config is valid.
func (p *PostgresConfig) check() error {
	if p == nil {
		return nil
	}
	if p.MaxConns < 0 {
		return fmt.Errorf("postgres: max_conns must not be negative, got %d", p.MaxConns)
	}
	if p.ConnectTimeout < 0 {
		return fmt.Errorf("postgres: connect_timeout must not be negative, got %s", time.Duration(p.ConnectTimeout))
	}
	return nil
}

// options are the pool options (defaults for a nil config).
func (p *PostgresConfig) options() pgdb.Options {
	o := pgdb.Options{ApplicationName: "caddy-mlflow"}
	if p != nil {
		o.MaxConns = p.MaxConns
		o.StatementTimeout = time.Duration(p.StatementTimeout)
		o.ConnectTimeout = time.Duration(p.ConnectTimeout)
	}
	return o
}

// unmarshalPostgres reads the postgres sub-directive (see PostgresConfig).
func unmarshalPostgres(d *caddyfile.Dispenser) (*PostgresConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("mlflow: postgres takes no arguments, only a block")
	}
	p := new(PostgresConfig)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("mlflow: postgres: %s given more than once", name)
		}
		seen[name] = true
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		dur := func() (caddy.Duration, error) {
			x, err := caddy.ParseDuration(v)
			if err != nil || x <= 0 {
				return 0, d.Errf("mlflow: postgres: %s %q: want a positive duration such as 30s", name, v)
			}
			return caddy.Duration(x), nil
		}
		switch name {
		case "max_conns":
			var n int
			if _, serr := fmt.Sscan(v, &n); serr != nil || n <= 0 || n > 10000 || fmt.Sprint(n) != v {
				err = d.Errf("mlflow: postgres: max_conns %q: want a whole number of connections from 1 to 10000", v)
			}
			p.MaxConns = int32(n)
		case "statement_timeout":
			if strings.EqualFold(v, "off") {
				p.StatementTimeout = -1
			} else {
				p.StatementTimeout, err = dur()
			}
		case "connect_timeout":
			p.ConnectTimeout, err = dur()
		default:
			err = d.Errf("mlflow: postgres: unknown setting %q (known: max_conns, statement_timeout, connect_timeout)", name)
		}
		if err != nil {
			return nil, err
		}
		if d.NextBlock(d.Nesting()) {
			return nil, d.Errf("mlflow: postgres: %s takes no block", name)
		}
	}
	return p, nil
}

// pgPool holds the PostgreSQL pools of this process, keyed by the URI (as
// configured, password included, never logged) and the pool options. A
// config reload provisions the new handler before the old one is cleaned
// up, so both refer to the same entry: the pool, its connections and the
// migrated store are kept instead of being opened again.
var pgPool = caddy.NewUsagePool()

// sharedPG is a pooled PostgreSQL connection pool with the tracking store
// on it. Destruct runs when the last handler using it is cleaned up.
type sharedPG struct {
	key   string
	name  string // pgdb.Redact of the URI, for messages
	pool  *pgxpool.Pool
	store tracking.Store
}

// Destruct closes the pool. It implements caddy.Destructor.
func (s *sharedPG) Destruct() error {
	s.pool.Close()
	return nil
}

var _ caddy.Destructor = (*sharedPG)(nil)

// pgKey is the pool key of uri with options o: the URI with its scheme
// normalized (postgres:// and postgresql+driver:// are postgresql://) and
// the options. The password stays in the key (two roles are two pools);
// the key is never logged.
func pgKey(uri string, o pgdb.Options) string {
	_, rest, _ := strings.Cut(strings.TrimSpace(uri), "://")
	return fmt.Sprintf("postgresql://%s|max_conns=%d|statement_timeout=%s|connect_timeout=%s",
		rest, o.MaxConns, o.StatementTimeout, o.ConnectTimeout)
}

// acquirePG returns the pooled PostgreSQL store for uri and o, connecting
// and migrating the schema if this process has not yet. Errors name the
// server (user, host, port, database) and never the password. Every
// successful call must be matched by one releasePG(key).
func acquirePG(ctx context.Context, uri string, o pgdb.Options) (*sharedPG, error) {
	key := pgKey(uri, o)
	name := pgdb.Redact(uri)
	v, _, err := pgPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		pool, err := pgdb.Open(ctx, uri, o)
		if err != nil {
			return nil, fmt.Errorf("opening backend store: %w", err)
		}
		store, err := pgstore.New(ctx, pool)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("opening backend store %s: %w", name, err)
		}
		return &sharedPG{key: key, name: name, pool: pool, store: store}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*sharedPG), nil
}

// releasePG drops one reference to the pooled store with key, closing its
// pool when it was the last one.
func releasePG(key string) error {
	if _, err := pgPool.Delete(key); err != nil {
		return fmt.Errorf("releasing backend store: %w", err)
	}
	return nil
}

// pgReferences reports how many handlers hold the pool with key (for
// tests).
func pgReferences(key string) int {
	n, _ := pgPool.References(key)
	return n
}
