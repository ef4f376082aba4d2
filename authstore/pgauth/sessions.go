package pgauth

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
)

const sessionCols = "hash, id, username, created, last_seen, password_digest"

func scanSession(row pgx.Row) (authn.SessionRecord, error) {
	var r authn.SessionRecord
	var hash, digest []byte
	if err := row.Scan(&hash, &r.ID, &r.Username, &r.Created, &r.LastSeen, &digest); err != nil {
		return authn.SessionRecord{}, err
	}
	copy(r.Hash[:], hash)
	copy(r.PasswordDigest[:], digest)
	r.Created, r.LastSeen = r.Created.UTC(), r.LastSeen.UTC()
	return r, nil
}

// CreateSession implements authn.SessionSource. The user must exist; a
// session with the same hash is replaced.
func (s *Store) CreateSession(ctx context.Context, rec authn.SessionRecord) error {
	if !utf8.ValidString(rec.Username) || !utf8.ValidString(rec.ID) {
		return fmt.Errorf("user %q: %w", rec.Username, authstore.ErrNotFound)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO gateway_sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (hash) DO UPDATE SET id = EXCLUDED.id, username = EXCLUDED.username, created = EXCLUDED.created,
		last_seen = EXCLUDED.last_seen, password_digest = EXCLUDED.password_digest`,
		rec.Hash[:], rec.ID, rec.Username, ts(rec.Created), ts(rec.LastSeen), rec.PasswordDigest[:])
	if isCode(err, foreignKeyViolation) {
		return fmt.Errorf("user %q: %w", rec.Username, authstore.ErrNotFound)
	}
	return wrap("storing session", err)
}

// LookupSession implements authn.SessionSource.
func (s *Store) LookupSession(ctx context.Context, hash [32]byte) (authn.SessionRecord, error) {
	r, err := scanSession(s.pool.QueryRow(ctx, "SELECT "+sessionCols+" FROM gateway_sessions WHERE hash = $1", hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return authn.SessionRecord{}, authstore.ErrNotFound
	}
	if err != nil {
		return authn.SessionRecord{}, wrap("reading session", err)
	}
	return r, nil
}

// TouchSession implements authn.SessionSource: it records a use.
func (s *Store) TouchSession(ctx context.Context, hash [32]byte, at time.Time) error {
	return s.updateSession(ctx, hash, "last_seen = $2", ts(at))
}

// RebindSession implements authstore.Store.
func (s *Store) RebindSession(ctx context.Context, hash, passwordDigest [32]byte) error {
	return s.updateSession(ctx, hash, "password_digest = $2", passwordDigest[:])
}

func (s *Store) updateSession(ctx context.Context, hash [32]byte, set string, v any) error {
	tag, err := s.pool.Exec(ctx, "UPDATE gateway_sessions SET "+set+" WHERE hash = $1", hash[:], v)
	if err != nil {
		return wrap("updating session", err)
	}
	if tag.RowsAffected() == 0 {
		return authstore.ErrNotFound
	}
	return nil
}

// DeleteSession implements authn.SessionSource; absent sessions are no
// error.
func (s *Store) DeleteSession(ctx context.Context, hash [32]byte) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM gateway_sessions WHERE hash = $1", hash[:])
	return wrap("deleting session", err)
}

// DeleteExpiredSessions implements authstore.Store.
func (s *Store) DeleteExpiredSessions(ctx context.Context, createdBefore, idleBefore time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM gateway_sessions WHERE created < $1 OR last_seen < $2", ts(createdBefore), ts(idleBefore))
	if err != nil {
		return 0, wrap("deleting expired sessions", err)
	}
	return int(tag.RowsAffected()), nil
}

// CountSessions implements authstore.Store.
func (s *Store) CountSessions(ctx context.Context, user string) (int, error) {
	if !utf8.ValidString(user) {
		return 0, nil
	}
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM gateway_sessions WHERE $1 = '' OR username = $1", user).Scan(&n)
	return n, wrap("counting sessions", err)
}

// ListSessions implements authstore.Store.
func (s *Store) ListSessions(ctx context.Context) ([]authn.SessionRecord, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+sessionCols+" FROM gateway_sessions ORDER BY hash")
	if err != nil {
		return nil, wrap("listing sessions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (authn.SessionRecord, error) { return scanSession(r) })
	return out, wrap("listing sessions", err)
}
