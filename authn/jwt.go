package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults for JWTOptions.
const (
	DefaultJWTLeeway   = 30 * time.Second
	MaxJWTLeeway       = 5 * time.Minute
	DefaultGroupsClaim = "groups"
)

// DefaultUsernameClaims is the claim order used when none is configured.
var DefaultUsernameClaims = []string{"sub"}

// JWTOptions configures a JWTVerifier.
type JWTOptions struct {
	// Issuer, when set, must equal the token's iss claim (which must then
	// be present).
	Issuer string
	// Audiences, when set, must contain one of the token's aud values
	// (which must then be present).
	Audiences []string
	// UsernameClaims are tried in order; the first claim holding a
	// non-empty string is the username. Default DefaultUsernameClaims.
	UsernameClaims []string
	// GroupsClaim names a claim holding a string or an array of strings
	// copied to Principal.Groups. Default DefaultGroupsClaim; "-" disables.
	GroupsClaim string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultJWTLeeway; it is capped at MaxJWTLeeway.
	Leeway time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// JWTVerifier verifies Bearer JWTs. The token's alg only selects among the
// configured keys: each key verifies only with the algorithm it was
// configured with, so "none", unknown algorithms and HMAC/public-key
// confusion are rejected. exp is required. Safe for concurrent use.
type JWTVerifier struct {
	sets    []KeySet
	parser  *jwt.Parser
	names   []string
	groups  string
	hasKeys bool
}

// NewJWTVerifier returns a verifier using the given key sets (StaticKeys
// from NewHMACKey/LoadPublicKeyFile/LoadJWKSFile, *RemoteJWKS). Static sets
// are consulted first; a set is only asked when earlier ones have no key
// for the token's kid and alg, so a remote JWKS is not refetched for tokens
// a static key already covers.
func NewJWTVerifier(opts JWTOptions, sets ...KeySet) (*JWTVerifier, error) {
	if len(sets) == 0 {
		return nil, errors.New("authn: JWT verification needs at least one key source")
	}
	var algs []string
	for _, s := range sets {
		if s == nil {
			return nil, errors.New("authn: nil JWT key source")
		}
		for _, a := range s.Algorithms() {
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	if len(algs) == 0 {
		return nil, errors.New("authn: JWT key sources provide no keys")
	}
	if opts.Leeway == 0 {
		opts.Leeway = DefaultJWTLeeway
	}
	if opts.Leeway < 0 || opts.Leeway > MaxJWTLeeway {
		return nil, fmt.Errorf("authn: JWT leeway must be between 0 and %s", MaxJWTLeeway)
	}
	if len(opts.UsernameClaims) == 0 {
		opts.UsernameClaims = DefaultUsernameClaims
	}
	if opts.GroupsClaim == "" {
		opts.GroupsClaim = DefaultGroupsClaim
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(opts.Now),
		jwt.WithStrictDecoding(),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if len(opts.Audiences) > 0 {
		popts = append(popts, jwt.WithAudience(opts.Audiences...))
	}
	// Static sets first.
	sorted := slices.Clone(sets)
	slices.SortStableFunc(sorted, func(a, b KeySet) int {
		_, as := a.(StaticKeys)
		_, bs := b.(StaticKeys)
		switch {
		case as && !bs:
			return -1
		case bs && !as:
			return 1
		}
		return 0
	})
	return &JWTVerifier{
		sets:   sorted,
		parser: jwt.NewParser(popts...),
		names:  slices.Clone(opts.UsernameClaims),
		groups: opts.GroupsClaim,
	}, nil
}

// Verify checks a compact JWS and returns a Principal with MethodJWT, or an
// error wrapping ErrInvalidCredentials whose text is safe to log.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return nil, invalidErr("jwt", err)
	}
	if err := checkNumericDates(claims); err != nil {
		return nil, err
	}
	name := ""
	for _, c := range v.names {
		if s, ok := claims[c].(string); ok && s != "" {
			name = s
			break
		}
	}
	if name == "" {
		return nil, invalid("jwt: no username claim")
	}
	p := &Principal{Username: name, Method: MethodJWT, Claims: claims}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.ExpiresAt = exp.Time
	}
	if v.groups != "-" {
		switch g := claims[v.groups].(type) {
		case string:
			if g != "" {
				p.Groups = []string{g}
			}
		case []any:
			for _, e := range g {
				if s, ok := e.(string); ok && s != "" {
					p.Groups = append(p.Groups, s)
				}
			}
		}
	}
	return p, nil
}

// maxNumericDate bounds the exp, nbf and iat claims (seconds since the
// epoch): the end of the year 9999. golang-jwt converts a claim's float to
// int64 without a range check, so a larger value wraps: an nbf or iat of
// 1e300 reads as long past and passed its check, and an exp of 1e300 would
// read as long past or far future depending on the CPU.
const maxNumericDate = 253402300799

// checkNumericDates refuses exp, nbf and iat claims outside
// ±maxNumericDate, which golang-jwt would have misread.
func checkNumericDates(claims jwt.MapClaims) error {
	for _, name := range []string{"exp", "nbf", "iat"} {
		v, ok := claims[name]
		if !ok {
			continue
		}
		var f float64
		switch n := v.(type) {
		case float64:
			f = n
		case json.Number:
			var err error
			if f, err = n.Float64(); err != nil {
				return invalid("jwt: " + name + " claim is not a number")
			}
		default:
			return invalid("jwt: " + name + " claim is not a number")
		}
		if math.IsNaN(f) || math.Abs(f) > maxNumericDate {
			return invalid("jwt: " + name + " claim out of range")
		}
	}
	return nil
}

// keyFor selects the keys pinned to the token's algorithm with a matching
// kid. The header's alg never chooses how a key is used, only which keys
// qualify.
func (v *JWTVerifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("crit header parameter not supported")
	}
	alg := t.Method.Alg()
	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, ok := raw.(string)
		if !ok {
			return nil, errors.New("kid header is not a string")
		}
		kid = s
	}
	var keys []jwt.VerificationKey
	var errs []error
	for _, s := range v.sets {
		if !slices.Contains(s.Algorithms(), alg) {
			continue
		}
		ks, err := s.Keys(ctx, kid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range ks {
			if k.Alg != alg {
				continue
			}
			keys = append(keys, k.Key)
		}
		if len(keys) > 0 {
			break
		}
	}
	if len(keys) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("no key for alg %s: %w", alg, errors.Join(errs...))
		}
		return nil, fmt.Errorf("no key for alg %s and the token's kid", alg)
	}
	if len(keys) == 1 {
		return keys[0], nil
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}
