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
// storecopy.AuthStream: users with their ids, password hashes and
// creation times, then grants, API tokens (hashes, expiry, revocation)
// and browser sessions.
type authStream struct{ s authstore.Store }

// grantRecord is one grant with its resource kind.
type grantRecord struct {
	kind authstore.Kind
	g    authstore.Grant
}

var authKinds = []authstore.Kind{authstore.Experiment, authstore.RegisteredModel}

// IsEmpty implements storecopy.AuthStream.
func (a authStream) IsEmpty(ctx context.Context) (bool, error) {
	users, err := a.s.ListUsers(ctx)
	return len(users) == 0, err
}

// Each implements storecopy.AuthStream. The gateway's state is small
// (users, tokens, grants and sessions of people), so each kind is read
// with the store's list calls.
func (a authStream) Each(ctx context.Context, fn func(storecopy.AuthKind, any) error) error {
	users, err := a.s.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("reading users: %w", err)
	}
	for _, u := range users {
		if err := fn(storecopy.AuthUser, u); err != nil {
			return err
		}
	}
	for _, u := range users {
		for _, k := range authKinds {
			gs, err := a.s.UserGrants(ctx, k, u.Username)
			if err != nil {
				return fmt.Errorf("reading the %s grants of %q: %w", k, u.Username, err)
			}
			for _, g := range gs {
				if err := fn(storecopy.AuthGrant, grantRecord{k, g}); err != nil {
					return err
				}
			}
		}
	}
	tokens, err := a.s.ListTokens(ctx, "")
	if err != nil {
		return fmt.Errorf("reading tokens: %w", err)
	}
	for _, t := range tokens {
		if err := fn(storecopy.AuthToken, t); err != nil {
			return err
		}
	}
	sessions, err := a.s.ListSessions(ctx)
	if err != nil {
		return fmt.Errorf("reading sessions: %w", err)
	}
	for _, se := range sessions {
		if err := fn(storecopy.AuthSession, se); err != nil {
			return err
		}
	}
	return nil
}

// Put implements storecopy.AuthStream. A user the destination has is
// replaced (deleted with its grants, tokens and sessions, then imported:
// the source's follow); a token already there is the same token (its
// hash is its identity) and only takes the source's revocation.
func (a authStream) Put(ctx context.Context, kind storecopy.AuthKind, rec any) error {
	switch r := rec.(type) {
	case *authstore.User:
		err := a.s.ImportUser(ctx, r)
		if errors.Is(err, authstore.ErrExists) {
			if err = a.s.DeleteUser(ctx, r.Username); err == nil {
				err = a.s.ImportUser(ctx, r)
			}
		}
		return err
	case grantRecord:
		return a.s.SetGrant(ctx, r.kind, r.g.Resource, r.g.Username, r.g.Permission)
	case *authstore.Token:
		err := a.s.ImportToken(ctx, r)
		if errors.Is(err, authstore.ErrExists) {
			err = nil
			if r.Revoked {
				err = a.s.RevokeToken(ctx, r.Username, r.ID)
			}
		}
		return err
	case authn.SessionRecord:
		return a.s.CreateSession(ctx, r)
	}
	return fmt.Errorf("unexpected %s record %T", kind, rec)
}
