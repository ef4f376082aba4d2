package storecopy

import (
	"context"
	"fmt"
)

// AuthKind is a kind of gateway state record.
type AuthKind int

// The gateway's record kinds, in the order a stream gives them (a token,
// grant or session names a user that comes before it).
const (
	AuthUser AuthKind = iota
	AuthToken
	AuthGrant
	AuthSession
)

// String names the kind.
func (k AuthKind) String() string {
	switch k {
	case AuthUser:
		return "user"
	case AuthToken:
		return "token"
	case AuthGrant:
		return "grant"
	case AuthSession:
		return "session"
	}
	return fmt.Sprintf("AuthKind(%d)", int(k))
}

// AuthStream is the gateway's state store (users with password hashes,
// API token hashes, permission grants, browser sessions) seen as a record
// stream. It lives outside the tracking engine, so the records are opaque
// here: an AuthStream takes back what a stream of the same family gives
// (an adapter over the gateway's store interface).
type AuthStream interface {
	// IsEmpty reports whether the store holds no users.
	IsEmpty(ctx context.Context) (bool, error)
	// Each calls fn for every record, users first, with their ids,
	// hashes and times as stored.
	Each(ctx context.Context, fn func(kind AuthKind, rec any) error) error
	// Put writes a record given by another stream's Each, as it is,
	// replacing a record with its identity.
	Put(ctx context.Context, kind AuthKind, rec any) error
}

// AuthPair names the gateway state to copy along with the tracking
// records.
type AuthPair struct {
	From, To AuthStream
}

// copyAuth streams from's records into to (only counting when to is nil).
func copyAuth(ctx context.Context, from, to AuthStream, n *Counter, onRecord func(string)) error {
	return from.Each(ctx, func(kind AuthKind, rec any) error {
		if to != nil {
			if err := to.Put(ctx, kind, rec); err != nil {
				return fmt.Errorf("writing %s: %w", kind, err)
			}
		}
		_ = n.add(func(c *Counts) {
			switch kind {
			case AuthUser:
				c.Users++
			case AuthToken:
				c.Tokens++
			case AuthGrant:
				c.Grants++
			case AuthSession:
				c.Sessions++
			}
		})
		onRecord(PhaseAuth)
		return nil
	})
}
