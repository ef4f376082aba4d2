// Package pgdb opens PostgreSQL connection pools from the URIs MLflow
// accepts for backend_store_uri and applies embedded, versioned,
// forward-only schema migrations. It is shared by the PostgreSQL tracking
// store and the gateway's PostgreSQL state store, which keep their schemas
// apart (one version table each) in one database.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of Options.
const (
	DefaultMaxConns         = 32
	DefaultConnectTimeout   = 10 * time.Second
	DefaultStatementTimeout = 30 * time.Second
)

// Options tune a pool. Zero values take the defaults.
type Options struct {
	// MaxConns is the pool size (DefaultMaxConns).
	MaxConns int32
	// ConnectTimeout bounds establishing one connection, TLS included
	// (DefaultConnectTimeout). It also bounds Open's first ping.
	ConnectTimeout time.Duration
	// StatementTimeout is the server-side statement_timeout of every
	// connection (DefaultStatementTimeout); negative disables it.
	StatementTimeout time.Duration
	// ApplicationName is reported in pg_stat_activity ("caddy-mlflow").
	ApplicationName string
}

// IsURI reports whether uri names a PostgreSQL database: the schemes
// postgresql:// and postgres://, with an optional SQLAlchemy driver part
// (postgresql+psycopg2://), as `mlflow server --backend-store-uri` takes.
func IsURI(uri string) bool {
	scheme, _, ok := strings.Cut(strings.TrimSpace(uri), "://")
	if !ok {
		return false
	}
	scheme, _, _ = strings.Cut(strings.ToLower(scheme), "+")
	return scheme == "postgresql" || scheme == "postgres"
}

// normalize drops the SQLAlchemy driver part of the scheme.
func normalize(uri string) (string, error) {
	uri = strings.TrimSpace(uri)
	if !IsURI(uri) {
		return "", fmt.Errorf("not a PostgreSQL URI (want postgresql://user:password@host:5432/db): %s", Redact(uri))
	}
	_, rest, _ := strings.Cut(uri, "://")
	return "postgresql://" + rest, nil
}

// Redact returns uri with any password replaced by "xxxxx", for messages
// and logs. Strings that do not parse as URIs are cut to their scheme.
func Redact(uri string) string {
	u, err := url.Parse(strings.TrimSpace(uri))
	if err != nil {
		scheme, _, _ := strings.Cut(uri, "://")
		return scheme + "://…"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// ParseConfig turns a backend_store_uri into a pool configuration. libpq's
// rules apply through pgx: a password from the URI, else PGPASSWORD, else
// PGPASSFILE (~/.pgpass); PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE,
// PGSSLROOTCERT and friends fill what the URI leaves out; sslmode=verify-full
// with sslrootcert checks the server certificate and name.
func ParseConfig(uri string, o Options) (*pgxpool.Config, error) {
	norm, err := normalize(uri)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(norm)
	if err != nil {
		// pgx's parse errors already mask the password; say which URI
		// (redacted) and why.
		return nil, fmt.Errorf("parsing PostgreSQL URI %s: %w", Redact(uri), stripConnString(err))
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	} else if !strings.Contains(norm, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	ct := o.ConnectTimeout
	if ct <= 0 {
		ct = DefaultConnectTimeout
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > ct {
		cfg.ConnConfig.ConnectTimeout = ct
	}
	st := o.StatementTimeout
	if st == 0 {
		st = DefaultStatementTimeout
	}
	if st > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(st.Milliseconds())
	}
	app := o.ApplicationName
	if app == "" {
		app = "caddy-mlflow"
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = app
	}
	return cfg, nil
}

// stripConnString keeps pgx's error but never lets a raw connection string
// through (pgx masks passwords itself; this is a second guard).
func stripConnString(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.ConnString != "" {
		return errors.New(strings.ReplaceAll(err.Error(), pe.ConnString, "<uri>"))
	}
	return err
}

// Open parses uri, connects a pool and pings the server. The error of an
// unreachable or refusing server names the host, port, user and database
// and never the password.
func Open(ctx context.Context, uri string, o Options) (*pgxpool.Pool, error) {
	cfg, err := ParseConfig(uri, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL %s: %w", Describe(cfg.ConnConfig), stripConnString(err))
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout+time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL %s: %w", Describe(cfg.ConnConfig), redactErr(err, cfg.ConnConfig.Password))
	}
	return pool, nil
}

// Describe names a server for messages: user@host:port/database, never the
// password.
func Describe(c *pgx.ConnConfig) string {
	host := c.Host
	if strings.HasPrefix(host, "/") {
		host = "unix:" + host
	} else {
		host = net.JoinHostPort(host, fmt.Sprint(c.Port))
	}
	return fmt.Sprintf("%s@%s/%s", c.User, host, c.Database)
}

// redactErr replaces any occurrence of the password in err's text.
func redactErr(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "xxxxx"))
}
