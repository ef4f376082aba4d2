package authn

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by UserSource and TokenSource implementations when
// the user or token does not exist. Any other error is a lookup failure and
// makes authentication fail without being reported as bad credentials.
var ErrNotFound = errors.New("authn: not found")

// User is what a UserSource returns for Basic authentication.
type User struct {
	// Name is the username.
	Name string
	// PasswordHash is a bcrypt hash ($2a$/$2b$/$2y$). Empty means the user
	// cannot log in with a password.
	PasswordHash []byte
	// Admin marks an administrator. authn does not use it; it is part of
	// the record so one lookup type serves authentication and authorization.
	Admin bool
	// Disabled users cannot authenticate by any method that consults the
	// UserSource.
	Disabled bool
}

// UserSource looks users up by name. The permission store implements it.
type UserSource interface {
	// LookupUser returns the named user or an error wrapping ErrNotFound.
	LookupUser(ctx context.Context, name string) (User, error)
}

// TokenRecord is what a TokenSource returns for an API token.
type TokenRecord struct {
	// ID identifies the token in listings and audit (not secret).
	ID string
	// Username is the user the token acts as.
	Username string
	// Hash is the SHA-256 of the full token string (see HashToken); it is
	// compared in constant time with the presented token's hash.
	Hash [32]byte
	// ExpiresAt is the expiry; zero means none.
	ExpiresAt time.Time
	// Revoked tokens never authenticate.
	Revoked bool
}

// TokenSource looks API tokens up by hash. The permission store implements
// it, storing only HashToken(token), never the token.
type TokenSource interface {
	// LookupToken returns the token whose hash is tokenHash, or an error
	// wrapping ErrNotFound.
	LookupToken(ctx context.Context, tokenHash [32]byte) (TokenRecord, error)
}
