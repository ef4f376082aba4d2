// Package boltauth is the authstore.Store in the bbolt database the
// tracking data lives in, in buckets of its own (auth.users, auth.tokens,
// auth.experiment_permissions, auth.registered_model_permissions,
// auth.sessions). One process owns a bbolt file, so the sign-in throttle
// is kept in that process's memory.
//
// Only password hashes (bcrypt) and token hashes (SHA-256, for API tokens
// and browser sessions) are stored, never a password or a token.
package boltauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
)

// Bucket names.
var (
	bucketUsers    = []byte("auth.users")
	bucketTokens   = []byte("auth.tokens")
	bucketExpPerms = []byte("auth.experiment_permissions")
	bucketRMPerms  = []byte("auth.registered_model_permissions")
	bucketSessions = []byte("auth.sessions")
)

// Aliases of the shared names, so this file reads as before.
var (
	errNotFound = authstore.ErrNotFound
	errExists   = authstore.ErrExists
)

type (
	// User is authstore.User.
	User = authstore.User
	// Token is authstore.Token.
	Token = authstore.Token
	// Grant is authstore.Grant.
	Grant = authstore.Grant
	// Kind is authstore.Kind.
	Kind = authstore.Kind
)

// Store is the bbolt-backed user, token and permission store. Safe for
// concurrent use.
type Store struct {
	db       *bolt.DB
	now      func() time.Time
	throttle *authstore.MemoryThrottle
}

// New returns a Store on db, creating its buckets. db stays owned by the
// caller.
func New(db *bolt.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("boltauth: nil database")
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketTokens, bucketExpPerms, bucketRMPerms, bucketSessions} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("creating bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltauth: %w", err)
	}
	return &Store{db: db, now: time.Now, throttle: authstore.NewMemoryThrottle()}, nil
}

func getUser(tx *bolt.Tx, name string) (*User, error) {
	v := tx.Bucket(bucketUsers).Get([]byte(name))
	if v == nil {
		return nil, fmt.Errorf("user %q: %w", name, errNotFound)
	}
	var u User
	if err := json.Unmarshal(v, &u); err != nil {
		return nil, fmt.Errorf("boltauth: decoding user %q: %w", name, err)
	}
	return &u, nil
}

func putUser(tx *bolt.Tx, u *User) error {
	v, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("boltauth: encoding user: %w", err)
	}
	return tx.Bucket(bucketUsers).Put([]byte(u.Username), v)
}

// LookupUser implements authn.UserSource.
func (s *Store) LookupUser(ctx context.Context, name string) (authn.User, error) {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return authn.User{}, err
	}
	return authn.User{Name: u.Username, PasswordHash: u.PasswordHash, Admin: u.IsAdmin}, nil
}

// GetUser returns the named user or an error wrapping errNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var u *User
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		u, err = getUser(tx, name)
		return err
	})
	return u, err
}

// ListUsers returns every user, ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*User
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u User
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("boltauth: decoding user %q: %w", k, err)
			}
			out = append(out, &u)
			return nil
		})
	})
	return out, err
}

// CreateUser adds a user. It fails with errExists when the name is taken.
func (s *Store) CreateUser(ctx context.Context, name string, hash []byte, admin bool) (*User, error) {
	if err := authstore.CheckUsername(name); err != nil {
		return nil, fmt.Errorf("boltauth: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var u *User
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get([]byte(name)) != nil {
			return fmt.Errorf("user %q: %w", name, errExists)
		}
		id, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("boltauth: %w", err)
		}
		u = &User{ID: id, Username: name, PasswordHash: hash, IsAdmin: admin, Created: s.now().UTC()}
		return putUser(tx, u)
	})
	return u, err
}

// ImportUser adds u as it is (id, hash, creation time); errExists when
// the name is taken. The user sequence moves past u.ID so that later
// users get fresh ids.
func (s *Store) ImportUser(ctx context.Context, u *User) error {
	if err := authstore.CheckUsername(u.Username); err != nil {
		return fmt.Errorf("boltauth: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get([]byte(u.Username)) != nil {
			return fmt.Errorf("user %q: %w", u.Username, errExists)
		}
		if u.ID > b.Sequence() {
			if err := b.SetSequence(u.ID); err != nil {
				return fmt.Errorf("boltauth: %w", err)
			}
		}
		c := *u
		return putUser(tx, &c)
	})
}

// EnsureAdmin creates the user as an admin with hash, or, when it exists,
// sets its hash and makes it an admin: the Caddyfile's bootstrap admins are
// declarative.
func (s *Store) EnsureAdmin(ctx context.Context, name string, hash []byte) error {
	if err := authstore.CheckUsername(name); err != nil {
		return fmt.Errorf("boltauth: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		u, err := getUser(tx, name)
		switch {
		case errors.Is(err, errNotFound):
			id, err := tx.Bucket(bucketUsers).NextSequence()
			if err != nil {
				return fmt.Errorf("boltauth: %w", err)
			}
			u = &User{ID: id, Username: name, Created: s.now().UTC()}
		case err != nil:
			return err
		}
		if bytes.Equal(u.PasswordHash, hash) && u.IsAdmin {
			return nil
		}
		u.PasswordHash, u.IsAdmin = hash, true
		return putUser(tx, u)
	})
}

// UpdatePassword replaces the user's password hash.
func (s *Store) UpdatePassword(ctx context.Context, name string, hash []byte) error {
	return s.updateUser(ctx, name, func(u *User) { u.PasswordHash = hash })
}

// SetAdmin sets the user's admin flag.
func (s *Store) SetAdmin(ctx context.Context, name string, admin bool) error {
	return s.updateUser(ctx, name, func(u *User) { u.IsAdmin = admin })
}

func (s *Store) updateUser(ctx context.Context, name string, fn func(*User)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		u, err := getUser(tx, name)
		if err != nil {
			return err
		}
		fn(u)
		return putUser(tx, u)
	})
}

// DeleteUser removes the user with its grants and tokens.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, name); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsers).Delete([]byte(name)); err != nil {
			return fmt.Errorf("boltauth: %w", err)
		}
		for _, bn := range [][]byte{bucketExpPerms, bucketRMPerms} {
			if err := deleteWhere(tx.Bucket(bn), func(k, _ []byte) bool {
				_, user, _ := splitGrantKey(k)
				return user == name
			}); err != nil {
				return err
			}
		}
		if err := deleteWhere(tx.Bucket(bucketSessions), func(_, v []byte) bool {
			var se session
			return json.Unmarshal(v, &se) == nil && se.Username == name
		}); err != nil {
			return err
		}
		return deleteWhere(tx.Bucket(bucketTokens), func(_, v []byte) bool {
			var t Token
			return json.Unmarshal(v, &t) == nil && t.Username == name
		})
	})
}

func deleteWhere(b *bolt.Bucket, match func(k, v []byte) bool) error {
	var keys [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		if match(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("boltauth: %w", err)
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("boltauth: %w", err)
		}
	}
	return nil
}

// --- tokens ---

// CreateToken issues an API token for user, returning the token (to show
// once) and its record. ttl zero means no expiry.
func (s *Store) CreateToken(ctx context.Context, user, name string, ttl time.Duration) (string, *Token, error) {
	tok, t, err := authstore.NewTokenRecord(user, name, ttl, s.now())
	if err != nil {
		return "", nil, err
	}
	if err := s.ImportToken(ctx, t); err != nil {
		return "", nil, err
	}
	return tok, t, nil
}

// ImportToken stores t as it is; the user must exist and the hash be new.
func (s *Store) ImportToken(ctx context.Context, t *Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, t.Username); err != nil {
			return err
		}
		b := tx.Bucket(bucketTokens)
		if b.Get(t.Hash[:]) != nil {
			return fmt.Errorf("token %q: %w", t.ID, errExists)
		}
		v, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("boltauth: encoding token: %w", err)
		}
		return b.Put(t.Hash[:], v)
	})
}

// LookupToken implements authn.TokenSource.
func (s *Store) LookupToken(ctx context.Context, hash [32]byte) (authn.TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return authn.TokenRecord{}, err
	}
	var t Token
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get(hash[:])
		if v == nil {
			return errNotFound
		}
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("boltauth: decoding token: %w", err)
		}
		return nil
	})
	if err != nil {
		return authn.TokenRecord{}, err
	}
	return authn.TokenRecord{ID: t.ID, Username: t.Username, Hash: t.Hash, ExpiresAt: t.ExpiresAt, Revoked: t.Revoked}, nil
}

// ListTokens returns the tokens of user (all users when user is ""),
// newest first.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*Token
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("boltauth: decoding token: %w", err)
			}
			if user == "" || t.Username == user {
				out = append(out, &t)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// RevokeToken revokes the token with id. When user is not "", the token
// must belong to user (errNotFound otherwise).
func (s *Store) RevokeToken(ctx context.Context, user, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("boltauth: decoding token: %w", err)
			}
			if t.ID != id || (user != "" && t.Username != user) {
				continue
			}
			t.Revoked = true
			nv, err := json.Marshal(&t)
			if err != nil {
				return fmt.Errorf("boltauth: encoding token: %w", err)
			}
			return b.Put(bytes.Clone(k), nv)
		}
		return fmt.Errorf("token %q: %w", id, errNotFound)
	})
}

// --- permissions ---

func bucketOf(k Kind) []byte {
	if k == authstore.RegisteredModel {
		return bucketRMPerms
	}
	return bucketExpPerms
}

func grantKey(resource, user string) []byte {
	k := make([]byte, 0, len(resource)+1+len(user))
	k = append(k, resource...)
	k = append(k, 0)
	return append(k, user...)
}

func splitGrantKey(k []byte) (resource, user string, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return "", "", false
	}
	return string(k[:i]), string(k[i+1:]), true
}

// Permission returns the level user was granted on resource; ok is false
// when there is no grant.
func (s *Store) Permission(ctx context.Context, kind Kind, resource, user string) (level string, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketOf(kind)).Get(grantKey(resource, user)); v != nil {
			level, ok = string(v), true
		}
		return nil
	})
	return level, ok, err
}

// CreateGrant adds a grant; errExists when one exists, errNotFound when
// the user does not.
func (s *Store) CreateGrant(ctx context.Context, kind Kind, resource, user, level string) error {
	return s.putGrant(ctx, kind, resource, user, level, false)
}

// SetGrant creates or replaces a grant (used for creators).
func (s *Store) SetGrant(ctx context.Context, kind Kind, resource, user, level string) error {
	return s.putGrant(ctx, kind, resource, user, level, true)
}

// UpdateGrant changes an existing grant; errNotFound when there is none.
func (s *Store) UpdateGrant(ctx context.Context, kind Kind, resource, user, level string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOf(kind))
		k := grantKey(resource, user)
		if b.Get(k) == nil {
			return fmt.Errorf("permission of %q on %q: %w", user, resource, errNotFound)
		}
		return b.Put(k, []byte(level))
	})
}

func (s *Store) putGrant(ctx context.Context, kind Kind, resource, user, level string, replace bool) error {
	if err := authstore.CheckResource(resource); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, user); err != nil {
			return err
		}
		b := tx.Bucket(bucketOf(kind))
		k := grantKey(resource, user)
		if !replace && b.Get(k) != nil {
			return fmt.Errorf("permission of %q on %q: %w", user, resource, errExists)
		}
		return b.Put(k, []byte(level))
	})
}

// DeleteGrant removes a grant; errNotFound when there is none.
func (s *Store) DeleteGrant(ctx context.Context, kind Kind, resource, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOf(kind))
		k := grantKey(resource, user)
		if b.Get(k) == nil {
			return fmt.Errorf("permission of %q on %q: %w", user, resource, errNotFound)
		}
		return b.Delete(k)
	})
}

// UserGrants lists the grants of user of the given kind.
func (s *Store) UserGrants(ctx context.Context, kind Kind, user string) ([]Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Grant
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOf(kind)).ForEach(func(k, v []byte) error {
			res, u, ok := splitGrantKey(k)
			if ok && u == user {
				out = append(out, Grant{Resource: res, Username: u, Permission: string(v)})
			}
			return nil
		})
	})
	return out, err
}

// RenameResource moves every grant on oldName to newName (registered model
// renames).
func (s *Store) RenameResource(ctx context.Context, kind Kind, oldName, newName string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	prefix := grantKey(oldName, "")
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOf(kind))
		type kv struct{ user, level string }
		var moved []kv
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			_, u, _ := splitGrantKey(k)
			moved = append(moved, kv{u, string(v)})
		}
		for _, m := range moved {
			if err := b.Delete(grantKey(oldName, m.user)); err != nil {
				return fmt.Errorf("boltauth: %w", err)
			}
			if err := b.Put(grantKey(newName, m.user), []byte(m.level)); err != nil {
				return fmt.Errorf("boltauth: %w", err)
			}
		}
		return nil
	})
}

// Throttle implements authstore.Store: the process owning the bbolt file
// is the only one signing users in, so the buckets live in its memory.
func (s *Store) Throttle() authstore.Throttle { return s.throttle }

var _ authstore.Store = (*Store)(nil)
