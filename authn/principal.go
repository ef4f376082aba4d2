package authn

import (
	"errors"
	"time"
)

// Method says how a Principal was authenticated.
type Method string

// The authentication methods.
const (
	// MethodBasic is HTTP Basic against a UserSource.
	MethodBasic Method = "basic"
	// MethodJWT is a Bearer JWT.
	MethodJWT Method = "jwt"
	// MethodToken is a Bearer API token issued by the server.
	MethodToken Method = "token"
	// MethodCert is a verified TLS client certificate alone.
	MethodCert Method = "cert"
)

// Principal is an authenticated caller.
type Principal struct {
	// Username identifies the caller for authorization and audit.
	Username string
	// Method is how the caller proved it.
	Method Method
	// Groups are group names from the credential (the JWT groups claim);
	// empty for other methods.
	Groups []string
	// Claims are the verified JWT claims (nil for other methods). They are
	// the parsed claims map of the token: treat them as read-only.
	Claims map[string]any
	// TokenID is the ID of the API token used (MethodToken only), for audit.
	TokenID string
	// ExpiresAt is when the credential stops being valid (JWT exp, token
	// expiry, certificate NotAfter); zero when it does not expire.
	ExpiresAt time.Time
	// SessionID identifies the browser session (MethodSession only), for
	// audit. Not secret.
	SessionID string
	// CSRFToken is the session's CSRF token (MethodSession only): every
	// state-changing request authenticated by the session cookie must
	// carry it.
	CSRFToken string
	// ClientCert is the username the verified TLS client certificate maps
	// to, when one was presented and client certificates are configured,
	// whatever Method is. Empty otherwise.
	ClientCert string
}

var (
	// ErrNoCredentials means the request carried no credentials the
	// gateway accepts (no Authorization header, no required client
	// certificate). Answer 401 with a WWW-Authenticate challenge.
	ErrNoCredentials = errors.New("authn: no credentials")
	// ErrInvalidCredentials means credentials were presented but did not
	// verify. Answer 401 with a WWW-Authenticate challenge; say nothing
	// more to the client than "invalid credentials".
	ErrInvalidCredentials = errors.New("authn: invalid credentials")
)

// invalid wraps ErrInvalidCredentials with a reason for logs. reason must
// never contain secret material.
func invalid(reason string) error {
	return &reasonError{reason: reason, kind: ErrInvalidCredentials}
}

// invalidErr is invalid with an underlying cause kept for errors.Is.
func invalidErr(reason string, cause error) error {
	return &reasonError{reason: reason, kind: ErrInvalidCredentials, cause: cause}
}

type reasonError struct {
	reason string
	kind   error
	cause  error
}

// Error returns the kind, the reason and the cause, for logs.
func (e *reasonError) Error() string {
	if e.cause != nil {
		return e.kind.Error() + ": " + e.reason + ": " + e.cause.Error()
	}
	return e.kind.Error() + ": " + e.reason
}

// Unwrap exposes the kind (ErrInvalidCredentials) and the cause to errors.Is.
func (e *reasonError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}
