package authn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// MethodSession is a browser session cookie issued by a password login.
const MethodSession Method = "session"

// SessionCookie is the name of the browser session cookie over plain HTTP.
const SessionCookie = "mlflow_session"

// SecureSessionCookie is its name over TLS. The __Host- prefix makes the
// browser accept the cookie only when it is Secure, has Path=/ and no
// Domain, and only from a secure page of this very host: a sibling
// subdomain or a plain-HTTP response cannot plant or shadow it.
const SecureSessionCookie = "__Host-" + SessionCookie

// SessionCookieName is the session cookie's name for r: the __Host- one
// when the client reached the site over HTTPS (see SecureRequest). Over
// HTTPS the unprefixed name is ignored.
func SessionCookieName(r *http.Request) string {
	if SecureRequest(r) {
		return SecureSessionCookie
	}
	return SessionCookie
}

// SecureRequest reports whether the client reached the site over HTTPS:
// the connection is TLS, or the server has set r.URL.Scheme to "https"
// because a TLS-terminating proxy it trusts said so. On a server request
// r.URL.Scheme is otherwise empty; a server that accepts absolute-form
// request lines must overwrite it before calling this (caddy-mlflow's
// handler always does, from the connection and its trusted proxies only).
func SecureRequest(r *http.Request) bool {
	return r.TLS != nil || r.URL != nil && r.URL.Scheme == "https"
}

// Session defaults.
const (
	// DefaultSessionIdle ends a session nobody used for this long.
	DefaultSessionIdle = 12 * time.Hour
	// DefaultSessionLifetime ends every session this long after login,
	// however active.
	DefaultSessionLifetime = 7 * 24 * time.Hour
	// sessionTouchEvery bounds how often a session's last use is written
	// back (one small write per session per interval, not per request).
	sessionTouchEvery = time.Minute
)

// sessionTokenBytes is the session token's entropy: 256 bits.
const sessionTokenBytes = 32

// SessionRecord is a stored session. The token itself is never stored:
// only its SHA-256 (Hash), as for API tokens.
type SessionRecord struct {
	// ID identifies the session in audit records (not secret).
	ID string
	// Username is the signed-in user.
	Username string
	// Hash is the SHA-256 of the session token.
	Hash [32]byte
	// Created is the login time; the session ends Lifetime after it.
	Created time.Time
	// LastSeen is the last use, written back at most once a minute.
	LastSeen time.Time
	// PasswordDigest is SHA-256 of the user's bcrypt hash at login. A
	// changed password (or a re-created user) no longer matches, which
	// ends the session without any explicit revocation.
	PasswordDigest [32]byte
}

// SessionSource stores sessions by token hash. The permission store
// implements it.
type SessionSource interface {
	// CreateSession stores rec.
	CreateSession(ctx context.Context, rec SessionRecord) error
	// LookupSession returns the session whose token hash is hash, or an
	// error wrapping ErrNotFound.
	LookupSession(ctx context.Context, hash [32]byte) (SessionRecord, error)
	// TouchSession records a use of the session.
	TouchSession(ctx context.Context, hash [32]byte, at time.Time) error
	// DeleteSession removes the session (logout); no error when absent.
	DeleteSession(ctx context.Context, hash [32]byte) error
}

// SessionOptions configures Sessions. The zero value uses the defaults.
type SessionOptions struct {
	// Idle ends sessions unused for this long. Zero means
	// DefaultSessionIdle.
	Idle time.Duration
	// Lifetime ends sessions this long after login. Zero means
	// DefaultSessionLifetime.
	Lifetime time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Sessions issues and verifies browser session cookies. Passwords are
// verified elsewhere (Basic.Authenticate); Sessions only starts a session
// for a user that has just proved its password. Safe for concurrent use.
type Sessions struct {
	store    SessionSource
	users    UserSource
	idle     time.Duration
	lifetime time.Duration
	now      func() time.Time
}

// NewSessions returns a session manager over store; users is consulted on
// every verification (the user must still exist with the same password).
func NewSessions(store SessionSource, users UserSource, opts SessionOptions) (*Sessions, error) {
	if store == nil || users == nil {
		return nil, errors.New("authn: sessions need a SessionSource and a UserSource")
	}
	if opts.Idle <= 0 {
		opts.Idle = DefaultSessionIdle
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultSessionLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sessions{store: store, users: users, idle: opts.Idle, lifetime: opts.Lifetime, now: opts.Now}, nil
}

// Lifetime is the absolute lifetime of a session (the cookie's Max-Age).
func (s *Sessions) Lifetime() time.Duration { return s.lifetime }

// PasswordDigest is the SHA-256 of a stored bcrypt hash, kept in sessions
// to notice password changes.
func PasswordDigest(bcryptHash []byte) [32]byte { return sha256.Sum256(bcryptHash) }

// Start creates a session for username, who has just been authenticated
// by password, and returns the token to put in the cookie (never stored).
func (s *Sessions) Start(ctx context.Context, username string) (string, SessionRecord, error) {
	u, err := s.users.LookupUser(ctx, username)
	if err != nil {
		return "", SessionRecord{}, fmt.Errorf("authn: session: looking up user: %w", err)
	}
	var b [sessionTokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", SessionRecord{}, fmt.Errorf("authn: generating session token: %w", err)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", SessionRecord{}, fmt.Errorf("authn: generating session id: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now().UTC()
	rec := SessionRecord{
		ID:             hex.EncodeToString(id[:]),
		Username:       u.Name,
		Hash:           HashToken(token),
		Created:        now,
		LastSeen:       now,
		PasswordDigest: PasswordDigest(u.PasswordHash),
	}
	if rec.Username == "" {
		rec.Username = username
	}
	if err := s.store.CreateSession(ctx, rec); err != nil {
		return "", SessionRecord{}, fmt.Errorf("authn: storing session: %w", err)
	}
	return token, rec, nil
}

// isSessionToken reports whether s has the shape of a session token.
func isSessionToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(sessionTokenBytes) {
		return false
	}
	for _, c := range []byte(s) {
		if !isB64URL(c) {
			return false
		}
	}
	return true
}

// Verify checks a session token and returns a Principal with
// MethodSession (carrying the session's CSRF token), an error wrapping
// ErrInvalidCredentials, or a lookup failure. Expired sessions and
// sessions whose user is gone or has changed password are deleted.
func (s *Sessions) Verify(ctx context.Context, token string) (*Principal, error) {
	if !isSessionToken(token) {
		return nil, invalid("session: malformed cookie")
	}
	h := HashToken(token)
	rec, err := s.store.LookupSession(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, invalid("session: unknown or signed out")
	}
	if err != nil {
		return nil, fmt.Errorf("authn: session: looking up session: %w", err)
	}
	if subtle.ConstantTimeCompare(rec.Hash[:], h[:]) != 1 {
		return nil, invalid("session: hash mismatch")
	}
	now := s.now()
	end := func(reason string) (*Principal, error) {
		_ = s.store.DeleteSession(ctx, h)
		return nil, invalid(reason)
	}
	if !now.Before(rec.Created.Add(s.lifetime)) {
		return end("session: expired (lifetime)")
	}
	if !now.Before(rec.LastSeen.Add(s.idle)) {
		return end("session: expired (idle)")
	}
	u, err := s.users.LookupUser(ctx, rec.Username)
	if errors.Is(err, ErrNotFound) {
		return end("session: user no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("authn: session: looking up user: %w", err)
	}
	if u.Disabled {
		return nil, invalid("session: user disabled")
	}
	d := PasswordDigest(u.PasswordHash)
	if len(u.PasswordHash) == 0 || subtle.ConstantTimeCompare(d[:], rec.PasswordDigest[:]) != 1 {
		return end("session: password changed since login")
	}
	if now.Sub(rec.LastSeen) >= sessionTouchEvery {
		if err := s.store.TouchSession(ctx, h, now.UTC()); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("authn: session: recording use: %w", err)
		}
	}
	expires := rec.Created.Add(s.lifetime)
	if idleEnd := now.Add(s.idle); idleEnd.Before(expires) {
		expires = idleEnd
	}
	return &Principal{
		Username:  rec.Username,
		Method:    MethodSession,
		SessionID: rec.ID,
		CSRFToken: CSRFToken(token),
		ExpiresAt: expires,
	}, nil
}

// End deletes the session of token (logout). Unknown tokens are ignored.
func (s *Sessions) End(ctx context.Context, token string) error {
	if !isSessionToken(token) {
		return nil
	}
	return s.store.DeleteSession(ctx, HashToken(token))
}

// CSRFToken derives a session's CSRF token from its session token:
// HMAC-SHA256 keyed with the token, so each session has its own, nobody
// without the cookie can compute it, and nothing more needs storing.
func CSRFToken(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("mlflow-ui csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SameToken compares two secrets in constant time; empty never matches.
func SameToken(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// SessionToken returns the session cookie's value from r (the cookie
// SessionCookieName names), or "".
func SessionToken(r *http.Request) string {
	c, err := r.Cookie(SessionCookieName(r))
	if err != nil {
		return ""
	}
	return c.Value
}
