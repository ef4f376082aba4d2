package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxBearerBytes bounds a Bearer credential; longer ones are refused before
// any parsing.
const MaxBearerBytes = 16 << 10

// DefaultRealm is the realm in WWW-Authenticate challenges.
const DefaultRealm = "mlflow"

// Config selects the credentials an Authenticator accepts. Nil members are
// disabled.
type Config struct {
	// Basic verifies Authorization: Basic.
	Basic *Basic
	// JWT verifies Authorization: Bearer <JWT>.
	JWT *JWTVerifier
	// Tokens verifies Authorization: Bearer <API token>.
	Tokens *TokenVerifier
	// ClientCert maps a verified TLS client certificate. Without
	// RequireClientCert a certificate alone authenticates a request that
	// has no Authorization header.
	ClientCert *ClientCert
	// RequireClientCert makes a verified, mapped client certificate
	// mandatory on every request, in addition to an Authorization
	// credential when any header method (Basic, JWT, Tokens) is enabled.
	// With no header method enabled the certificate alone authenticates.
	RequireClientCert bool
	// Realm is used in challenges; default DefaultRealm.
	Realm string
	// Sessions verifies the browser session cookie (SessionCookie). It is
	// consulted only for requests without an Authorization header: a
	// request that has one is judged by that header alone.
	Sessions *Sessions
}

// Authenticator combines the configured methods with MLflow's client
// precedence: the Authorization header (Basic or Bearer; MLflow sends Basic
// when both username/password and token are set, so only one is ever
// present), then the client certificate. Safe for concurrent use.
type Authenticator struct {
	cfg        Config
	challenges []string
}

// New validates cfg and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	header := cfg.Basic != nil || cfg.JWT != nil || cfg.Tokens != nil
	if !header && cfg.ClientCert == nil {
		return nil, errors.New("authn: no authentication method enabled")
	}
	if cfg.RequireClientCert && cfg.ClientCert == nil {
		return nil, errors.New("authn: client certificates required but no mapping configured")
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if strings.ContainsAny(cfg.Realm, "\"\\\r\n") {
		return nil, errors.New("authn: realm must not contain quotes, backslashes or newlines")
	}
	a := &Authenticator{cfg: cfg}
	if cfg.Basic != nil {
		a.challenges = append(a.challenges, fmt.Sprintf(`Basic realm="%s", charset="UTF-8"`, cfg.Realm))
	}
	if cfg.JWT != nil || cfg.Tokens != nil {
		a.challenges = append(a.challenges, fmt.Sprintf(`Bearer realm="%s"`, cfg.Realm))
	}
	return a, nil
}

// Authenticate returns the request's Principal, or an error:
//
//   - wrapping ErrNoCredentials: nothing to verify (no Authorization header
//     and no usable client certificate, or a required part missing);
//   - wrapping ErrInvalidCredentials: something presented did not verify;
//   - anything else: a lookup failed (store down); deny and log.
//
// In every error case the client gets the same 401 (or 5xx for lookup
// failures); the error text is for logs and never holds secrets.
// Identity never comes from any other request header.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	// A presented client certificate is always checked when certificates
	// are configured; an invalid one fails the request even if the header
	// would pass.
	var cert *Principal
	if a.cfg.ClientCert != nil {
		p, err := a.cfg.ClientCert.Authenticate(r.TLS)
		switch {
		case err == nil:
			cert = p
		case errors.Is(err, ErrNoCredentials) && !a.cfg.RequireClientCert:
		default:
			return nil, err
		}
	}

	auth := r.Header.Values("Authorization")
	headerMethods := a.cfg.Basic != nil || a.cfg.JWT != nil || a.cfg.Tokens != nil
	if len(auth) == 0 {
		if tok := SessionToken(r); tok != "" && a.cfg.Sessions != nil {
			p, err := a.cfg.Sessions.Verify(ctx, tok)
			switch {
			case err == nil:
				// A required certificate was checked above: cert is set.
				if cert != nil {
					p.ClientCert = cert.Username
				}
				return p, nil
			case errors.Is(err, ErrInvalidCredentials) && cert != nil && (!a.cfg.RequireClientCert || !headerMethods):
				// A stale cookie does not hide a certificate that
				// authenticates on its own.
			default:
				return nil, err
			}
		}
		if cert != nil && (!a.cfg.RequireClientCert || !headerMethods) {
			return cert, nil
		}
		if cert != nil {
			return nil, fmt.Errorf("%w: client certificate present but Authorization required", ErrNoCredentials)
		}
		return nil, fmt.Errorf("%w: no Authorization header", ErrNoCredentials)
	}
	if len(auth) > 1 {
		return nil, invalid("multiple Authorization headers")
	}
	p, err := a.fromHeader(ctx, r, auth[0])
	if err != nil {
		return nil, err
	}
	if cert != nil {
		p.ClientCert = cert.Username
	}
	return p, nil
}

func (a *Authenticator) fromHeader(ctx context.Context, r *http.Request, h string) (*Principal, error) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(h), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Basic"):
		if a.cfg.Basic == nil {
			return nil, invalid("basic authentication not enabled")
		}
		user, pass, ok := r.BasicAuth()
		if !ok {
			return nil, invalid("basic: malformed credentials")
		}
		return a.cfg.Basic.Authenticate(ctx, user, pass)
	case strings.EqualFold(scheme, "Bearer"):
		switch {
		case cred == "":
			return nil, invalid("bearer: empty")
		case len(cred) > MaxBearerBytes:
			return nil, invalid("bearer: too long")
		case IsToken(cred):
			if a.cfg.Tokens == nil {
				return nil, invalid("API tokens not enabled")
			}
			return a.cfg.Tokens.Verify(ctx, cred)
		case IsJWT(cred):
			if a.cfg.JWT == nil {
				return nil, invalid("JWT authentication not enabled")
			}
			return a.cfg.JWT.Verify(ctx, cred)
		}
		return nil, invalid("bearer: neither an API token nor a JWT")
	}
	return nil, invalid("unsupported Authorization scheme")
}

// Challenges returns the WWW-Authenticate values for a 401 answer: one per
// enabled header scheme. It is empty when only client certificates are
// enabled (no HTTP challenge applies).
func (a *Authenticator) Challenges() []string {
	return append([]string(nil), a.challenges...)
}

// identityHeaders are request headers that downstream code or proxies may
// read as an identity. A client can set any of them, so the gateway removes
// them from every inbound request before anything else sees it.
var identityHeaders = []string{
	"X-Mlflow-User",
	"X-Mlflow-Auth-Method",
	"X-Remote-User",
	"X-Remote-Group",
	"Remote-User",
	"X-User",
	"X-Email",
	"X-Forwarded-User",
	"X-Forwarded-Email",
	"X-Forwarded-Groups",
	"X-Forwarded-Preferred-Username",
	"X-Forwarded-Access-Token",
	"X-Auth-Request-User",
	"X-Auth-Request-Email",
	"X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username",
	"X-Auth-Request-Access-Token",
	"X-Webauth-User",
	"X-Client-Cert",
	"X-Client-Verify",
	"X-Ssl-Client-Cert",
	"X-Ssl-Client-Dn",
	"X-Ssl-Client-Verify",
	"Ssl-Client-Cert",
	"X-Forwarded-Client-Cert",
}

// IdentityHeaders lists, in canonical form, the inbound headers the gateway
// must strip because a client could use them to claim an identity.
func IdentityHeaders() []string {
	return append([]string(nil), identityHeaders...)
}

// StripIdentityHeaders deletes every IdentityHeaders entry from h.
func StripIdentityHeaders(h http.Header) {
	for _, k := range identityHeaders {
		h.Del(k)
	}
}
