package copystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// authStream is the gateway's state store (bbolt or PostgreSQL) as a
// storecopy.AuthStream, over authstore.Each and authstore.Put: users
// with their ids, password hashes and creation times, their grants, API
// tokens (hashes, expiry, revocation) and browser sessions.
type authStream struct{ s authstore.Store }

// IsEmpty implements storecopy.AuthStream.
func (a authStream) IsEmpty(ctx context.Context) (bool, error) {
	users, err := a.s.ListUsers(ctx)
	return len(users) == 0, err
}

// Each implements storecopy.AuthStream.
func (a authStream) Each(ctx context.Context, fn func(storecopy.AuthKind, any) error) error {
	return authstore.Each(ctx, a.s, func(rec any) error {
		switch rec.(type) {
		case *authstore.User:
			return fn(storecopy.AuthUser, rec)
		case authstore.GrantRecord:
			return fn(storecopy.AuthGrant, rec)
		case *authstore.Token:
			return fn(storecopy.AuthToken, rec)
		case authn.SessionRecord:
			return fn(storecopy.AuthSession, rec)
		}
		return fmt.Errorf("unexpected gateway record %T", rec)
	})
}

// Put implements storecopy.AuthStream. A user the destination has is
// replaced (deleted with its grants, tokens and sessions, then imported:
// the source's follow); a token already there is the same token (its
// hash is its identity) and only takes the source's revocation.
func (a authStream) Put(ctx context.Context, kind storecopy.AuthKind, rec any) error {
	err := authstore.Put(ctx, a.s, rec)
	if !errors.Is(err, authstore.ErrExists) {
		return err
	}
	switch r := rec.(type) {
	case *authstore.User:
		if err := a.s.DeleteUser(ctx, r.Username); err != nil {
			return err
		}
		return authstore.Put(ctx, a.s, r)
	case *authstore.Token:
		if r.Revoked {
			return a.s.RevokeToken(ctx, r.Username, r.ID)
		}
		return nil
	}
	return err
}
