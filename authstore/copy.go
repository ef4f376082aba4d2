package authstore

import (
	"context"
	"fmt"
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
// progress, when not nil, is called after each user with the running
// counts.
func Copy(ctx context.Context, dst, src Store, progress func(Counts)) (Counts, error) {
	var c Counts
	users, err := src.ListUsers(ctx)
	if err != nil {
		return c, fmt.Errorf("authstore: copying users: %w", err)
	}
	for _, u := range users {
		if err := dst.ImportUser(ctx, u); err != nil {
			return c, fmt.Errorf("authstore: copying user %q: %w", u.Username, err)
		}
		c.Users++
		for _, k := range []Kind{Experiment, RegisteredModel} {
			gs, err := src.UserGrants(ctx, k, u.Username)
			if err != nil {
				return c, fmt.Errorf("authstore: copying grants of %q: %w", u.Username, err)
			}
			for _, g := range gs {
				if err := dst.SetGrant(ctx, k, g.Resource, g.Username, g.Permission); err != nil {
					return c, fmt.Errorf("authstore: copying %s grant of %q on %q: %w", k, g.Username, g.Resource, err)
				}
				c.Grants++
			}
		}
		if progress != nil {
			progress(c)
		}
	}
	tokens, err := src.ListTokens(ctx, "")
	if err != nil {
		return c, fmt.Errorf("authstore: copying tokens: %w", err)
	}
	for _, t := range tokens {
		if err := dst.ImportToken(ctx, t); err != nil {
			return c, fmt.Errorf("authstore: copying token %s: %w", t.ID, err)
		}
		c.Tokens++
	}
	sessions, err := src.ListSessions(ctx)
	if err != nil {
		return c, fmt.Errorf("authstore: copying sessions: %w", err)
	}
	for _, se := range sessions {
		if err := dst.CreateSession(ctx, se); err != nil {
			return c, fmt.Errorf("authstore: copying session %s: %w", se.ID, err)
		}
		c.Sessions++
	}
	if progress != nil {
		progress(c)
	}
	return c, nil
}
