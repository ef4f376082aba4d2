package authn

import (
	"errors"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// The failure reasons FailureReason returns: a small fixed set, fit for a
// metric label.
const (
	ReasonMissingCredentials = "missing_credentials" // nothing to verify
	ReasonBadCredentials     = "bad_credentials"     // malformed or unsupported Authorization
	ReasonUnknownUser        = "unknown_user"        // Basic: no such user
	ReasonBadPassword        = "bad_password"        // Basic: wrong (or unusable) password
	ReasonUserDisabled       = "user_disabled"       // the user exists but may not sign in
	ReasonTokenExpired       = "token_expired"       // API token past its expiry
	ReasonTokenRevoked       = "token_revoked"       // API token revoked
	ReasonBadToken           = "bad_token"           // API token unknown or malformed
	ReasonJWTExpired         = "jwt_expired"         // JWT past exp
	ReasonBadJWT             = "bad_jwt"             // JWT that does not verify
	ReasonSessionExpired     = "session_expired"     // UI session past its lifetime or idle time
	ReasonBadSession         = "bad_session"         // UI session cookie unknown or malformed
	ReasonBadCertificate     = "bad_certificate"     // client certificate that does not verify
)

// FailureReason classifies an error returned by Authenticator.Authenticate
// (or a verifier of this package) into one of the Reason constants. It
// returns "" for a nil error and for errors that are not credential
// failures (lookup errors, which callers answer with 500).
func FailureReason(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrNoCredentials) {
		return ReasonMissingCredentials
	}
	var re *reasonError
	if !errors.As(err, &re) || !errors.Is(err, ErrInvalidCredentials) {
		return ""
	}
	r := re.reason
	switch {
	case strings.HasPrefix(r, "basic:"):
		switch r {
		case "basic: unknown user", "basic: empty username":
			return ReasonUnknownUser
		case "basic: user disabled":
			return ReasonUserDisabled
		case "basic: malformed credentials":
			return ReasonBadCredentials
		}
		return ReasonBadPassword
	case strings.HasPrefix(r, "token:"):
		switch r {
		case "token: expired":
			return ReasonTokenExpired
		case "token: revoked":
			return ReasonTokenRevoked
		case "token: user disabled":
			return ReasonUserDisabled
		}
		return ReasonBadToken
	case r == "jwt" || strings.HasPrefix(r, "jwt:"):
		if errors.Is(err, jwt.ErrTokenExpired) {
			return ReasonJWTExpired
		}
		return ReasonBadJWT
	case strings.HasPrefix(r, "session:"):
		switch {
		case strings.HasPrefix(r, "session: expired"):
			return ReasonSessionExpired
		case r == "session: user disabled":
			return ReasonUserDisabled
		}
		return ReasonBadSession
	case r == "cert" || strings.HasPrefix(r, "cert:"):
		return ReasonBadCertificate
	}
	return ReasonBadCredentials
}
