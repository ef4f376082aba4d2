package authstore

import (
	"context"
	"fmt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
)

// Counts are the records of each kind in a store (or copied by Copy).
type Counts struct {
	Users, Tokens, Grants, Sessions int
}

// Count counts the records of s.
func Count(ctx context.Context, s Store) (Counts, error) {
	var c Counts
	users, err := s.ListUsers(ctx)
	if err != nil {
		return c, fmt.Errorf("authstore: counting users: %w", err)
	}
	c.Users = len(users)
	for _, u := range users {
		for _, k := range []Kind{Experiment, RegisteredModel} {
			gs, err := s.UserGrants(ctx, k, u.Username)
			if err != nil {
				return c, fmt.Errorf("authstore: counting grants of %q: %w", u.Username, err)
			}
			c.Grants += len(gs)
		}
	}
	tokens, err := s.ListTokens(ctx, "")
	if err != nil {
		return c, fmt.Errorf("authstore: counting tokens: %w", err)
	}
	c.Tokens = len(tokens)
	if c.Sessions, err = s.CountSessions(ctx, ""); err != nil {
		return c, fmt.Errorf("authstore: counting sessions: %w", err)
	}
	return c, nil
}

// Copy copies every user (ids, hashes, creation times), API token
// (hashes, expiry, revocation), grant and session from src into dst, as
// `caddy mlflow copy-store` does between a bbolt and a PostgreSQL store.
// A user or token dst already has fails with an error wrapping ErrExists;
// callers that refuse a non-empty destination check Count(dst) first.
// progress, when not nil, is called with the running counts once a user
// and its grants are copied (when the next record starts) and at the end.
func Copy(ctx context.Context, dst, src Store, progress func(Counts)) (Counts, error) {
	var c Counts
	err := Each(ctx, src, func(rec any) error {
		if err := Put(ctx, dst, rec); err != nil {
			return fmt.Errorf("authstore: copying %s: %w", describe(rec), err)
		}
		switch rec.(type) {
		case *User:
			if c.Users > 0 && progress != nil {
				progress(c)
			}
			c.Users++
		case GrantRecord:
			c.Grants++
		case *Token:
			c.Tokens++
		case authn.SessionRecord:
			c.Sessions++
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	if progress != nil {
		progress(c)
	}
	return c, nil
}

// describe names a record for messages (never a hash).
func describe(rec any) string {
	switch r := rec.(type) {
	case *User:
		return fmt.Sprintf("user %q", r.Username)
	case GrantRecord:
		return fmt.Sprintf("%s grant of %q on %q", r.Kind, r.Username, r.Resource)
	case *Token:
		return fmt.Sprintf("token %s", r.ID)
	case authn.SessionRecord:
		return fmt.Sprintf("session %s", r.ID)
	}
	return fmt.Sprintf("%T", rec)
}

// GrantRecord is a grant with its kind, as Each gives it.
type GrantRecord struct {
	Kind Kind
	Grant
}

// Each calls fn for every record of s in an order Put can replay into
// another store: each user (*User) followed by its grants (GrantRecord),
// then every token (*Token), then every session (authn.SessionRecord).
func Each(ctx context.Context, s Store, fn func(rec any) error) error {
	users, err := s.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("authstore: reading users: %w", err)
	}
	for _, u := range users {
		if err := fn(u); err != nil {
			return err
		}
		for _, k := range []Kind{Experiment, RegisteredModel} {
			gs, err := s.UserGrants(ctx, k, u.Username)
			if err != nil {
				return fmt.Errorf("authstore: reading grants of %q: %w", u.Username, err)
			}
			for _, g := range gs {
				if err := fn(GrantRecord{Kind: k, Grant: g}); err != nil {
					return err
				}
			}
		}
	}
	tokens, err := s.ListTokens(ctx, "")
	if err != nil {
		return fmt.Errorf("authstore: reading tokens: %w", err)
	}
	for _, t := range tokens {
		if err := fn(t); err != nil {
			return err
		}
	}
	sessions, err := s.ListSessions(ctx)
	if err != nil {
		return fmt.Errorf("authstore: reading sessions: %w", err)
	}
	for _, se := range sessions {
		if err := fn(se); err != nil {
			return err
		}
	}
	return nil
}

// Put writes one record Each gave into s, as it is: a user or token that
// s already has fails with ErrExists; a grant or session is replaced.
func Put(ctx context.Context, s Store, rec any) error {
	switch r := rec.(type) {
	case *User:
		return s.ImportUser(ctx, r)
	case GrantRecord:
		return s.SetGrant(ctx, r.Kind, r.Resource, r.Username, r.Permission)
	case *Token:
		return s.ImportToken(ctx, r)
	case authn.SessionRecord:
		return s.CreateSession(ctx, r)
	}
	return fmt.Errorf("authstore: cannot store a %T", rec)
}
