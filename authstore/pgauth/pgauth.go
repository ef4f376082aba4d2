// Package pgauth is the authstore.Store in PostgreSQL: the gateway's
// users, API tokens, grants, sessions, sign-in throttle and generated keys
// in gateway_* tables of the database the tracking data lives in, shared
// by every replica. Its schema has its own embedded migrations and version
// table (gateway_schema_version).
//
// Nothing is cached in memory: every lookup is a query, so a revoked
// token, a deleted user, a changed password, a removed grant or an ended
// session is refused by every replica from the next request on (the
// invalidation bound is the commit of the change itself).
package pgauth

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// Component is the schema component name given to pgdb.Migrate; its
// version table is gateway_schema_version.
const Component = "gateway"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the embedded migrations (NNN_name.sql at the root).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return sub
}

// Store is the PostgreSQL authstore.Store. Safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	now      func() time.Time
	throttle *throttle
}

// New migrates the gateway schema in pool's database (under pgdb's
// advisory lock, so replicas starting at once do not race) and returns the
// store. pool stays owned by the caller.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgauth: nil pool")
	}
	if err := pgdb.Migrate(ctx, pool, Component, Migrations()); err != nil {
		return nil, wrap("gateway schema", err)
	}
	s := &Store{pool: pool, now: time.Now}
	s.throttle = &throttle{pool: pool}
	return s, nil
}

// ts is t as PostgreSQL stores it (microseconds, UTC).
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := ts(t)
	return &v
}

// isCode reports whether err is a PostgreSQL error with SQLSTATE code.
func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// wrap adds context to a database error.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if pgstore.Unavailable(err) {
		return fmt.Errorf("pgauth: %s: %w: %w", what, authstore.ErrUnavailable, err)
	}
	return fmt.Errorf("pgauth: %s: %w", what, err)
}

// --- users ---

const userCols = "id, username, password_hash, is_admin, created"

func scanUser(row pgx.Row) (*User, error) {
	var u User
	var id int64
	if err := row.Scan(&id, &u.Username, &u.PasswordHash, &u.IsAdmin, &u.Created); err != nil {
		return nil, err
	}
	u.ID = uint64(id)
	u.Created = u.Created.UTC()
	return &u, nil
}

// User is authstore.User.
type User = authstore.User

// Token is authstore.Token.
type Token = authstore.Token

// Grant is authstore.Grant.
type Grant = authstore.Grant

// Kind is authstore.Kind.
type Kind = authstore.Kind

// LookupUser implements authn.UserSource.
func (s *Store) LookupUser(ctx context.Context, name string) (authn.User, error) {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return authn.User{}, err
	}
	return authn.User{Name: u.Username, PasswordHash: u.PasswordHash, Admin: u.IsAdmin}, nil
}

// GetUser implements authstore.Store. A name that is not UTF-8 (which no
// stored user has) is not found rather than an encoding error.
func (s *Store) GetUser(ctx context.Context, name string) (*User, error) {
	if !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("user %q: %w", name, authstore.ErrNotFound)
	}
	u, err := scanUser(s.pool.QueryRow(ctx, "SELECT "+userCols+" FROM gateway_users WHERE username = $1", name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", name, authstore.ErrNotFound)
	}
	if err != nil {
		return nil, wrap("reading user", err)
	}
	return u, nil
}

// ListUsers implements authstore.Store.
func (s *Store) ListUsers(ctx context.Context) ([]*User, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+userCols+" FROM gateway_users ORDER BY username")
	if err != nil {
		return nil, wrap("listing users", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*User, error) { return scanUser(r) })
	return out, wrap("listing users", err)
}

// checkName validates a new username: authstore's rules plus UTF-8 (text
// columns hold nothing else).
func checkName(name string) error {
	if err := authstore.CheckUsername(name); err != nil {
		return fmt.Errorf("pgauth: %w", err)
	}
	if !utf8.ValidString(name) {
		return errors.New("pgauth: username is not valid UTF-8")
	}
	return nil
}

// CreateUser implements authstore.Store. Of two replicas creating one name
// at once, one wins and the other gets ErrExists.
func (s *Store) CreateUser(ctx context.Context, name string, hash []byte, admin bool) (*User, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	u, err := scanUser(s.pool.QueryRow(ctx,
		`INSERT INTO gateway_users (username, password_hash, is_admin, created) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (username) DO NOTHING RETURNING `+userCols, name, hash, admin, ts(s.now())))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", name, authstore.ErrExists)
	}
	if err != nil {
		return nil, wrap("creating user", err)
	}
	return u, nil
}

// ImportUser implements authstore.Store; the id sequence moves past u.ID.
func (s *Store) ImportUser(ctx context.Context, u *User) error {
	if err := checkName(u.Username); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx,
			`INSERT INTO gateway_users (id, username, password_hash, is_admin, created) VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT DO NOTHING`, int64(u.ID), u.Username, u.PasswordHash, u.IsAdmin, ts(u.Created))
		if err != nil {
			return wrap("importing user", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %q (id %d): %w", u.Username, u.ID, authstore.ErrExists)
		}
		_, err = tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('gateway_users', 'id'),
			GREATEST((SELECT max(id) FROM gateway_users), 1))`)
		return wrap("importing user", err)
	})
}

// EnsureAdmin implements authstore.Store.
func (s *Store) EnsureAdmin(ctx context.Context, name string, hash []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO gateway_users (username, password_hash, is_admin, created) VALUES ($1, $2, true, $3)
		 ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, is_admin = true
		 WHERE gateway_users.password_hash IS DISTINCT FROM EXCLUDED.password_hash OR NOT gateway_users.is_admin`,
		name, hash, ts(s.now()))
	return wrap("ensuring admin", err)
}

// UpdatePassword implements authstore.Store.
func (s *Store) UpdatePassword(ctx context.Context, name string, hash []byte) error {
	return s.updateUser(ctx, name, "password_hash = $2", hash)
}

// SetAdmin implements authstore.Store.
func (s *Store) SetAdmin(ctx context.Context, name string, admin bool) error {
	return s.updateUser(ctx, name, "is_admin = $2", admin)
}

func (s *Store) updateUser(ctx context.Context, name, set string, v any) error {
	tag, err := s.pool.Exec(ctx, "UPDATE gateway_users SET "+set+" WHERE username = $1", name, v)
	if err != nil {
		if isCode(err, "22021") { // invalid byte sequence: no such user
			return fmt.Errorf("user %q: %w", name, authstore.ErrNotFound)
		}
		return wrap("updating user", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", name, authstore.ErrNotFound)
	}
	return nil
}

// DeleteUser implements authstore.Store; grants, tokens and sessions go
// with the user (ON DELETE CASCADE), in one statement.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("user %q: %w", name, authstore.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM gateway_users WHERE username = $1", name)
	if err != nil {
		return wrap("deleting user", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", name, authstore.ErrNotFound)
	}
	return nil
}

// --- tokens ---

// CreateToken implements authstore.Store.
func (s *Store) CreateToken(ctx context.Context, user, name string, ttl time.Duration) (string, *Token, error) {
	tok, t, err := authstore.NewTokenRecord(user, name, ttl, s.now())
	if err != nil {
		return "", nil, err
	}
	t.Created, t.ExpiresAt = ts(t.Created), tsOrZero(t.ExpiresAt)
	if err := s.ImportToken(ctx, t); err != nil {
		return "", nil, err
	}
	return tok, t, nil
}

func tsOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return ts(t)
}

// ImportToken implements authstore.Store.
func (s *Store) ImportToken(ctx context.Context, t *Token) error {
	if !utf8.ValidString(t.Username) || !utf8.ValidString(t.Name) || !utf8.ValidString(t.ID) {
		return fmt.Errorf("user %q: %w", t.Username, authstore.ErrNotFound)
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO gateway_tokens (hash, id, username, name, created, expires_at, revoked)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Hash[:], t.ID, t.Username, t.Name, ts(t.Created), nullTime(t.ExpiresAt), t.Revoked)
	switch {
	case isCode(err, foreignKeyViolation):
		return fmt.Errorf("user %q: %w", t.Username, authstore.ErrNotFound)
	case isCode(err, uniqueViolation):
		return fmt.Errorf("token %q: %w", t.ID, authstore.ErrExists)
	}
	return wrap("storing token", err)
}

const tokenCols = "hash, id, username, name, created, expires_at, revoked"

func scanToken(row pgx.Row) (*Token, error) {
	var t Token
	var hash []byte
	var exp *time.Time
	if err := row.Scan(&hash, &t.ID, &t.Username, &t.Name, &t.Created, &exp, &t.Revoked); err != nil {
		return nil, err
	}
	copy(t.Hash[:], hash)
	t.Created = t.Created.UTC()
	if exp != nil {
		t.ExpiresAt = exp.UTC()
	}
	return &t, nil
}

// LookupToken implements authn.TokenSource.
func (s *Store) LookupToken(ctx context.Context, hash [32]byte) (authn.TokenRecord, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, "SELECT "+tokenCols+" FROM gateway_tokens WHERE hash = $1", hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return authn.TokenRecord{}, authstore.ErrNotFound
	}
	if err != nil {
		return authn.TokenRecord{}, wrap("reading token", err)
	}
	return t.Record(), nil
}

// ListTokens implements authstore.Store.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*Token, error) {
	if !utf8.ValidString(user) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT "+tokenCols+` FROM gateway_tokens
		WHERE $1 = '' OR username = $1 ORDER BY created DESC, id`, user)
	if err != nil {
		return nil, wrap("listing tokens", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Token, error) { return scanToken(r) })
	return out, wrap("listing tokens", err)
}

// RevokeToken implements authstore.Store.
func (s *Store) RevokeToken(ctx context.Context, user, id string) error {
	if !utf8.ValidString(user) || !utf8.ValidString(id) {
		return fmt.Errorf("token %q: %w", id, authstore.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE gateway_tokens SET revoked = true WHERE id = $1 AND ($2 = '' OR username = $2)`, id, user)
	if err != nil {
		return wrap("revoking token", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token %q: %w", id, authstore.ErrNotFound)
	}
	return nil
}

// --- permissions ---

// validGrant reports whether resource and user can be stored at all (a
// name that cannot is never granted anything).
func validGrant(resource, user string) bool {
	return utf8.ValidString(resource) && utf8.ValidString(user) && strings.IndexByte(user, 0) < 0
}

// Permission implements authstore.Store.
func (s *Store) Permission(ctx context.Context, kind Kind, resource, user string) (string, bool, error) {
	if !validGrant(resource, user) || authstore.CheckResource(resource) != nil {
		return "", false, nil
	}
	var level string
	err := s.pool.QueryRow(ctx, `SELECT permission FROM gateway_grants WHERE kind = $1 AND resource = $2 AND username = $3`,
		int16(kind), resource, user).Scan(&level)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, wrap("reading permission", err)
	}
	return level, true, nil
}

// CreateGrant implements authstore.Store.
func (s *Store) CreateGrant(ctx context.Context, kind Kind, resource, user, level string) error {
	return s.putGrant(ctx, kind, resource, user, level, "ON CONFLICT DO NOTHING")
}

// SetGrant implements authstore.Store.
func (s *Store) SetGrant(ctx context.Context, kind Kind, resource, user, level string) error {
	return s.putGrant(ctx, kind, resource, user, level, "ON CONFLICT (kind, resource, username) DO UPDATE SET permission = EXCLUDED.permission")
}

func (s *Store) putGrant(ctx context.Context, kind Kind, resource, user, level, onConflict string) error {
	if err := authstore.CheckResource(resource); err != nil {
		return err
	}
	if !utf8.ValidString(resource) || !utf8.ValidString(level) {
		return errors.New("pgauth: resource or level is not valid UTF-8")
	}
	if !validGrant(resource, user) {
		return fmt.Errorf("user %q: %w", user, authstore.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO gateway_grants (kind, resource, username, permission) VALUES ($1, $2, $3, $4) `+onConflict,
		int16(kind), resource, user, level)
	if isCode(err, foreignKeyViolation) {
		return fmt.Errorf("user %q: %w", user, authstore.ErrNotFound)
	}
	if err != nil {
		return wrap("storing permission", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("permission of %q on %q: %w", user, resource, authstore.ErrExists)
	}
	return nil
}

// UpdateGrant implements authstore.Store.
func (s *Store) UpdateGrant(ctx context.Context, kind Kind, resource, user, level string) error {
	if !validGrant(resource, user) || !utf8.ValidString(level) {
		return fmt.Errorf("permission of %q on %q: %w", user, resource, authstore.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE gateway_grants SET permission = $4 WHERE kind = $1 AND resource = $2 AND username = $3`,
		int16(kind), resource, user, level)
	if err != nil {
		return wrap("updating permission", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("permission of %q on %q: %w", user, resource, authstore.ErrNotFound)
	}
	return nil
}

// DeleteGrant implements authstore.Store.
func (s *Store) DeleteGrant(ctx context.Context, kind Kind, resource, user string) error {
	if !validGrant(resource, user) {
		return fmt.Errorf("permission of %q on %q: %w", user, resource, authstore.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM gateway_grants WHERE kind = $1 AND resource = $2 AND username = $3`,
		int16(kind), resource, user)
	if err != nil {
		return wrap("deleting permission", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("permission of %q on %q: %w", user, resource, authstore.ErrNotFound)
	}
	return nil
}

// UserGrants implements authstore.Store.
func (s *Store) UserGrants(ctx context.Context, kind Kind, user string) ([]Grant, error) {
	if !utf8.ValidString(user) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT resource, username, permission FROM gateway_grants
		WHERE username = $1 AND kind = $2 ORDER BY resource`, user, int16(kind))
	if err != nil {
		return nil, wrap("listing permissions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Grant, error) {
		var g Grant
		err := r.Scan(&g.Resource, &g.Username, &g.Permission)
		return g, err
	})
	return out, wrap("listing permissions", err)
}

// RenameResource implements authstore.Store: in one transaction, grants
// on newName of users that also hold one on oldName are replaced.
func (s *Store) RenameResource(ctx context.Context, kind Kind, oldName, newName string) error {
	if !utf8.ValidString(oldName) {
		return nil
	}
	if err := authstore.CheckResource(newName); err != nil || !utf8.ValidString(newName) {
		return errors.New("pgauth: invalid resource name")
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM gateway_grants n USING gateway_grants o
			WHERE n.kind = $1 AND n.resource = $3 AND o.kind = $1 AND o.resource = $2 AND o.username = n.username`,
			int16(kind), oldName, newName); err != nil {
			return wrap("renaming resource", err)
		}
		_, err := tx.Exec(ctx, `UPDATE gateway_grants SET resource = $3 WHERE kind = $1 AND resource = $2`,
			int16(kind), oldName, newName)
		return wrap("renaming resource", err)
	})
}

// --- keys ---

// MultipartKeyName names the multipart upload signing key in Key.
const MultipartKeyName = "multipart_signing_key"

// Key returns the shared key called name, generating size random bytes
// the first time. Every replica gets the same bytes: the first insert
// wins (INSERT ... ON CONFLICT DO NOTHING) and everyone reads the stored
// row back.
func (s *Store) Key(ctx context.Context, name string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, errors.New("pgauth: key size must be positive")
	}
	fresh := make([]byte, size)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("pgauth: generating key %s: %w", name, err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO gateway_keys (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, wrap("storing key "+name, err)
	}
	var key []byte
	if err := s.pool.QueryRow(ctx, `SELECT key FROM gateway_keys WHERE name = $1`, name).Scan(&key); err != nil {
		return nil, wrap("reading key "+name, err)
	}
	return key, nil
}

// MultipartSigningKey is the key that signs multipart upload ids and part
// URLs, shared by every replica (48 random bytes made once).
func (s *Store) MultipartSigningKey(ctx context.Context) ([]byte, error) {
	return s.Key(ctx, MultipartKeyName, 48)
}

// Throttle implements authstore.Store: the buckets live in the database,
// so a username's lockout holds on every replica.
func (s *Store) Throttle() authstore.Throttle { return s.throttle }

var _ authstore.Store = (*Store)(nil)
