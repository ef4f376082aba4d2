// Package authstore defines the gateway's own state store: users (with
// bcrypt password hashes), API tokens, permission grants, browser
// sessions and the sign-in throttle. It holds the Store interface and the
// types shared by its two implementations:
//
//   - authstore/boltauth keeps the state in buckets of the bbolt file the
//     tracking data lives in (one process owns that file);
//   - authstore/pgauth keeps it in tables of the PostgreSQL database the
//     tracking data lives in, shared by every replica.
//
// Only password hashes (bcrypt) and token hashes (SHA-256, for API tokens
// and browser sessions) are stored, never a password or a token.
//
// Neither implementation caches anything in memory: every lookup reads the
// database, so a revoked token, a deleted user, a changed password, a
// removed grant or an ended session stops working on the very next request
// on every replica. authstore/authstoretest is the shared test suite both
// pass.
package authstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
)

var (
	// ErrNotFound wraps authn.ErrNotFound: no such user, token, session
	// or grant.
	ErrNotFound = fmt.Errorf("authstore: %w", authn.ErrNotFound)
	// ErrExists means the user, token or grant already exists.
	ErrExists = errors.New("authstore: already exists")
	// ErrUnavailable is wrapped by errors that mean the database cannot be
	// reached right now (connection refused or lost, server shutting down
	// or starting): the request may be retried.
	ErrUnavailable = errors.New("authstore: the database is unavailable")
)

// MaxUsernameLength bounds usernames (bytes).
const MaxUsernameLength = 256

// MaxTokenNameLength bounds the free label of an API token (bytes).
const MaxTokenNameLength = 256

// User is a stored user.
type User struct {
	// ID is a number assigned at creation.
	ID uint64 `json:"id"`
	// Username is the unique name.
	Username string `json:"username"`
	// PasswordHash is the bcrypt hash; empty for users who only log in with
	// tokens, JWTs or certificates.
	PasswordHash []byte `json:"password_hash,omitempty"`
	// IsAdmin users skip authorization.
	IsAdmin bool `json:"is_admin"`
	// Created is the creation time.
	Created time.Time `json:"created"`
}

// Token is a stored API token (its hash, never the token).
type Token struct {
	// ID identifies the token in listings, revocation and audit.
	ID string `json:"id"`
	// Username is who the token acts as.
	Username string `json:"username"`
	// Name is a free label given at creation.
	Name string `json:"name,omitempty"`
	// Hash is authn.HashToken of the token.
	Hash [32]byte `json:"hash"`
	// Created is the creation time.
	Created time.Time `json:"created"`
	// ExpiresAt is the expiry; zero means none.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Revoked tokens never authenticate.
	Revoked bool `json:"revoked,omitempty"`
}

// Record is the authn view of the token.
func (t *Token) Record() authn.TokenRecord {
	return authn.TokenRecord{ID: t.ID, Username: t.Username, Hash: t.Hash, ExpiresAt: t.ExpiresAt, Revoked: t.Revoked}
}

// Grant is one permission grant of a user on a resource.
type Grant struct {
	// Resource is the experiment id or registered model name.
	Resource string
	// Username is the grantee.
	Username string
	// Permission is the level name (READ, USE, EDIT, MANAGE,
	// NO_PERMISSIONS).
	Permission string
}

// Kind selects the resource type of a grant.
type Kind int

// Resource kinds.
const (
	// Experiment grants are keyed by experiment id.
	Experiment Kind = iota
	// RegisteredModel grants are keyed by registered model name.
	RegisteredModel
)

// String names the kind ("experiment", "registered_model").
func (k Kind) String() string {
	if k == RegisteredModel {
		return "registered_model"
	}
	return "experiment"
}

// Store is the gateway's state store. Implementations are safe for
// concurrent use; errors for missing records wrap ErrNotFound, for
// duplicates ErrExists.
type Store interface {
	authn.UserSource
	authn.TokenSource
	authn.SessionSource

	// GetUser returns the named user.
	GetUser(ctx context.Context, name string) (*User, error)
	// ListUsers returns every user, ordered by name.
	ListUsers(ctx context.Context) ([]*User, error)
	// CreateUser adds a user; ErrExists when the name is taken (also when
	// another replica creates it at the same moment: one wins).
	CreateUser(ctx context.Context, name string, hash []byte, admin bool) (*User, error)
	// ImportUser adds u as it is (id, hash, creation time), for copying
	// between stores; ErrExists when the name or id is taken.
	ImportUser(ctx context.Context, u *User) error
	// EnsureAdmin creates the user as an admin with hash or, when it
	// exists, sets its hash and makes it an admin (declarative bootstrap
	// admins).
	EnsureAdmin(ctx context.Context, name string, hash []byte) error
	// UpdatePassword replaces the user's password hash.
	UpdatePassword(ctx context.Context, name string, hash []byte) error
	// SetAdmin sets the user's admin flag.
	SetAdmin(ctx context.Context, name string, admin bool) error
	// DeleteUser removes the user with its grants, tokens and sessions.
	DeleteUser(ctx context.Context, name string) error

	// CreateToken issues an API token for user, returning the token (to
	// show once) and its record. ttl zero means no expiry.
	CreateToken(ctx context.Context, user, name string, ttl time.Duration) (string, *Token, error)
	// ImportToken stores t as it is (hash, id, times, revocation), for
	// copying between stores; the user must exist.
	ImportToken(ctx context.Context, t *Token) error
	// ListTokens returns the tokens of user (all users when user is ""),
	// newest first.
	ListTokens(ctx context.Context, user string) ([]*Token, error)
	// RevokeToken revokes the token with id. When user is not "", the
	// token must belong to user (ErrNotFound otherwise).
	RevokeToken(ctx context.Context, user, id string) error

	// Permission returns the level user was granted on resource; ok is
	// false when there is no grant.
	Permission(ctx context.Context, kind Kind, resource, user string) (level string, ok bool, err error)
	// CreateGrant adds a grant; ErrExists when one exists, ErrNotFound
	// when the user does not.
	CreateGrant(ctx context.Context, kind Kind, resource, user, level string) error
	// SetGrant creates or replaces a grant (creators, copying).
	SetGrant(ctx context.Context, kind Kind, resource, user, level string) error
	// UpdateGrant changes an existing grant; ErrNotFound when there is
	// none.
	UpdateGrant(ctx context.Context, kind Kind, resource, user, level string) error
	// DeleteGrant removes a grant; ErrNotFound when there is none.
	DeleteGrant(ctx context.Context, kind Kind, resource, user string) error
	// UserGrants lists the grants of user of the given kind, ordered by
	// resource.
	UserGrants(ctx context.Context, kind Kind, user string) ([]Grant, error)
	// RenameResource moves every grant on oldName to newName (registered
	// model renames).
	RenameResource(ctx context.Context, kind Kind, oldName, newName string) error

	// RebindSession records a new password digest in the session, so
	// that the session that changed its own user's password stays signed
	// in while every other session of that user ends.
	RebindSession(ctx context.Context, hash, passwordDigest [32]byte) error
	// DeleteExpiredSessions removes sessions created before createdBefore
	// or last used before idleBefore, returning how many it removed.
	DeleteExpiredSessions(ctx context.Context, createdBefore, idleBefore time.Time) (int, error)
	// CountSessions returns how many sessions user has ("" counts all).
	CountSessions(ctx context.Context, user string) (int, error)
	// ListSessions returns every stored session (hashes only), for
	// copying between stores.
	ListSessions(ctx context.Context) ([]authn.SessionRecord, error)

	// Throttle is the sign-in throttle's state: per process for a store
	// one process owns, in the database for a shared one.
	Throttle() Throttle
}

// CheckUsername validates a username: non-empty, at most
// MaxUsernameLength bytes, valid UTF-8 (so that every store can hold it
// and copies between stores never fail), no control characters or NUL.
func CheckUsername(name string) error {
	if name == "" {
		return errors.New("username must not be empty")
	}
	if len(name) > MaxUsernameLength {
		return fmt.Errorf("username longer than %d bytes", MaxUsernameLength)
	}
	if !utf8.ValidString(name) {
		return errors.New("username is not valid UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("username contains a control character")
		}
	}
	return nil
}

// CheckResource validates a grant's resource: non-empty, no NUL.
func CheckResource(resource string) error {
	if resource == "" {
		return errors.New("authstore: empty resource")
	}
	for i := 0; i < len(resource); i++ {
		if resource[i] == 0 {
			return errors.New("authstore: resource contains NUL")
		}
	}
	return nil
}

// NewTokenRecord makes a fresh API token for user: the token (shown once)
// and its record with a random id, created at now, expiring ttl later
// (never when ttl is zero). Implementations store the record.
func NewTokenRecord(user, name string, ttl time.Duration, now time.Time) (string, *Token, error) {
	if ttl < 0 {
		return "", nil, errors.New("authstore: negative token lifetime")
	}
	if len(name) > MaxTokenNameLength {
		return "", nil, fmt.Errorf("authstore: token name longer than %d bytes", MaxTokenNameLength)
	}
	tok, hash, err := authn.NewToken()
	if err != nil {
		return "", nil, fmt.Errorf("authstore: %w", err)
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", nil, fmt.Errorf("authstore: generating token id: %w", err)
	}
	now = now.UTC()
	t := &Token{ID: hex.EncodeToString(idb[:]), Username: user, Name: name, Hash: hash, Created: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	return tok, t, nil
}
