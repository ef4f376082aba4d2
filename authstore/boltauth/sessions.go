package boltauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
)

// session is the stored form of a browser session, keyed by the SHA-256 of
// its token. Neither the token nor its CSRF token (derived from the token)
// is stored.
type session struct {
	ID             string    `json:"id"`
	Username       string    `json:"username"`
	Created        time.Time `json:"created"`
	LastSeen       time.Time `json:"last_seen"`
	PasswordDigest []byte    `json:"password_digest"`
}

func (se *session) record(hash []byte) authn.SessionRecord {
	r := authn.SessionRecord{ID: se.ID, Username: se.Username, Created: se.Created, LastSeen: se.LastSeen}
	copy(r.Hash[:], hash)
	copy(r.PasswordDigest[:], se.PasswordDigest)
	return r
}

func putSession(b *bolt.Bucket, hash []byte, se *session) error {
	v, err := json.Marshal(se)
	if err != nil {
		return fmt.Errorf("boltauth: encoding session: %w", err)
	}
	return b.Put(hash, v)
}

func getSession(b *bolt.Bucket, hash []byte) (*session, error) {
	v := b.Get(hash)
	if v == nil {
		return nil, errNotFound
	}
	var se session
	if err := json.Unmarshal(v, &se); err != nil {
		return nil, fmt.Errorf("boltauth: decoding session: %w", err)
	}
	return &se, nil
}

// CreateSession implements authn.SessionSource. The user must exist.
func (s *Store) CreateSession(ctx context.Context, rec authn.SessionRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, rec.Username); err != nil {
			return err
		}
		se := &session{ID: rec.ID, Username: rec.Username, Created: rec.Created, LastSeen: rec.LastSeen,
			PasswordDigest: bytes.Clone(rec.PasswordDigest[:])}
		return putSession(tx.Bucket(bucketSessions), rec.Hash[:], se)
	})
}

// LookupSession implements authn.SessionSource.
func (s *Store) LookupSession(ctx context.Context, hash [32]byte) (authn.SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return authn.SessionRecord{}, err
	}
	var rec authn.SessionRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		se, err := getSession(tx.Bucket(bucketSessions), hash[:])
		if err != nil {
			return err
		}
		rec = se.record(hash[:])
		return nil
	})
	return rec, err
}

// TouchSession implements authn.SessionSource: it records a use.
func (s *Store) TouchSession(ctx context.Context, hash [32]byte, at time.Time) error {
	return s.updateSession(ctx, hash, func(se *session) { se.LastSeen = at })
}

// RebindSession records a new password digest in the session, so that the
// session that changed its own user's password stays signed in while
// every other session of that user ends.
func (s *Store) RebindSession(ctx context.Context, hash, passwordDigest [32]byte) error {
	return s.updateSession(ctx, hash, func(se *session) { se.PasswordDigest = bytes.Clone(passwordDigest[:]) })
}

func (s *Store) updateSession(ctx context.Context, hash [32]byte, fn func(*session)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		se, err := getSession(b, hash[:])
		if err != nil {
			return err
		}
		fn(se)
		return putSession(b, hash[:], se)
	})
}

// DeleteSession implements authn.SessionSource; absent sessions are no
// error.
func (s *Store) DeleteSession(ctx context.Context, hash [32]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Delete(hash[:])
	})
}

// DeleteExpiredSessions removes sessions created before createdBefore or
// last used before idleBefore, returning how many it removed.
func (s *Store) DeleteExpiredSessions(ctx context.Context, createdBefore, idleBefore time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		return deleteWhere(tx.Bucket(bucketSessions), func(_, v []byte) bool {
			var se session
			if json.Unmarshal(v, &se) != nil || se.Created.Before(createdBefore) || se.LastSeen.Before(idleBefore) {
				n++
				return true
			}
			return false
		})
	})
	return n, err
}

// CountSessions returns how many sessions user has ("" counts all).
func (s *Store) CountSessions(ctx context.Context, user string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(_, v []byte) error {
			var se session
			if json.Unmarshal(v, &se) == nil && (user == "" || se.Username == user) {
				n++
			}
			return nil
		})
	})
	return n, err
}

// ListSessions implements authstore.Store.
func (s *Store) ListSessions(ctx context.Context) ([]authn.SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []authn.SessionRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			var se session
			if err := json.Unmarshal(v, &se); err != nil {
				return fmt.Errorf("boltauth: decoding session: %w", err)
			}
			out = append(out, se.record(k))
			return nil
		})
	})
	return out, err
}
