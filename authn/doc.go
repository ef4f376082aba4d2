// Package authn turns the credentials on an HTTP request into a verified
// Principal. It knows nothing about MLflow or Caddy: its inputs are an
// *http.Request (the Authorization header and r.TLS) and lookups through
// the UserSource and TokenSource interfaces.
//
// Supported credentials, in the precedence MLflow's client sends them:
//
//   - Authorization: Basic, checked against bcrypt hashes from a UserSource,
//     with a bounded cache of verified credentials keyed by an HMAC (never the
//     plaintext) so a request does not pay the KDF each time;
//   - Authorization: Bearer with a JWT (golang-jwt/jwt/v5; keys from an HMAC
//     secret, PEM public keys or JWKS, algorithm pinned per key);
//   - Authorization: Bearer with an opaque API token issued by the server
//     (NewToken), looked up by its SHA-256 hash through a TokenSource;
//   - the browser session cookie (SessionCookie) that a password login
//     starts (Sessions), for requests without an Authorization header;
//     only the token's SHA-256 is stored, and each session carries its
//     own CSRF token;
//   - a client certificate from the verified TLS chain
//     (tls.ConnectionState.VerifiedChains), required in addition to or
//     accepted instead of the header.
//
// Identity only ever comes from a verified credential. Errors wrap
// ErrNoCredentials or ErrInvalidCredentials; the text after that is meant
// for logs and never contains a password, token or secret. Any other error
// (a store failure) must also be treated as a denial.
package authn
