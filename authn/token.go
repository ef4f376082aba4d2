package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenPrefix starts every API token, so tokens are recognisable in
// configuration, by secret scanners, and apart from JWTs.
const TokenPrefix = "mlft_"

// tokenBytes is the token's entropy: 256 bits.
const tokenBytes = 32

// tokenLen is the length of a well-formed token string.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// NewToken returns a fresh API token (TokenPrefix followed by 256 random
// bits in unpadded base64url) and the hash to store. Show the token to its
// owner once; keep only the hash.
func NewToken() (token string, hash [32]byte, err error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", hash, fmt.Errorf("authn: generating token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken returns the SHA-256 of the whole token string. A fast hash is
// right here: the token has 256 bits of entropy, so there is nothing to
// brute-force, and every request pays for it.
func HashToken(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}

// IsToken reports whether s has the shape of an API token from NewToken.
func IsToken(s string) bool {
	if len(s) != tokenLen || !strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	for _, c := range []byte(s[len(TokenPrefix):]) {
		if !isB64URL(c) {
			return false
		}
	}
	return true
}

// IsJWT reports whether s has the shape of a compact JWS: three base64url
// segments separated by dots. It says nothing about validity.
func IsJWT(s string) bool {
	if strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for _, c := range []byte(p) {
			if !isB64URL(c) {
				return false
			}
		}
	}
	return true
}

func isB64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// TokenVerifier checks API tokens against a TokenSource and, when Users is
// set, that the token's user exists and is not disabled.
type TokenVerifier struct {
	tokens TokenSource
	users  UserSource
	now    func() time.Time
}

// NewTokenVerifier returns a TokenVerifier. users may be nil; now may be nil
// (time.Now).
func NewTokenVerifier(tokens TokenSource, users UserSource, now func() time.Time) (*TokenVerifier, error) {
	if tokens == nil {
		return nil, errors.New("authn: token verification needs a TokenSource")
	}
	if now == nil {
		now = time.Now
	}
	return &TokenVerifier{tokens: tokens, users: users, now: now}, nil
}

// Verify checks an API token and returns a Principal with MethodToken, an
// error wrapping ErrInvalidCredentials, or a lookup failure.
func (v *TokenVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if !IsToken(token) {
		return nil, invalid("token: malformed")
	}
	h := HashToken(token)
	rec, err := v.tokens.LookupToken(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, invalid("token: unknown")
	}
	if err != nil {
		return nil, fmt.Errorf("authn: token: looking up token: %w", err)
	}
	// The store found it by hash; compare again in constant time so a store
	// that matches loosely (prefix, case-folding) cannot let a token through.
	if subtle.ConstantTimeCompare(rec.Hash[:], h[:]) != 1 {
		return nil, invalid("token: hash mismatch")
	}
	if rec.Revoked {
		return nil, invalid("token: revoked")
	}
	if !rec.ExpiresAt.IsZero() && !v.now().Before(rec.ExpiresAt) {
		return nil, invalid("token: expired")
	}
	if rec.Username == "" {
		return nil, invalid("token: no user")
	}
	if v.users != nil {
		u, err := v.users.LookupUser(ctx, rec.Username)
		if errors.Is(err, ErrNotFound) {
			return nil, invalid("token: user no longer exists")
		}
		if err != nil {
			return nil, fmt.Errorf("authn: token: looking up user: %w", err)
		}
		if u.Disabled {
			return nil, invalid("token: user disabled")
		}
	}
	return &Principal{Username: rec.Username, Method: MethodToken, TokenID: rec.ID, ExpiresAt: rec.ExpiresAt}, nil
}
