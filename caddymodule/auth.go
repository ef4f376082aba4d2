package caddymodule

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
)

// AuthConfig is the auth block of the mlflow directive: who may call the
// server and what they may do. With it absent the server is open, as
// `mlflow server` is. Every string value may hold placeholders such as
// {env.VAR}, replaced once at provision.
type AuthConfig struct {
	// Admins are bootstrap administrators, created (or updated to this
	// hash and made admin) in the store at every provision. There is no
	// built-in default admin or password.
	Admins []AdminConfig `json:"admins,omitempty"`

	// Basic enables HTTP Basic against the users in the store.
	Basic bool `json:"basic,omitempty"`

	// APITokens enables Bearer API tokens issued by the server.
	APITokens bool `json:"api_tokens,omitempty"`

	// JWT enables Bearer JWTs.
	JWT *JWTConfig `json:"jwt,omitempty"`

	// ClientCert enables identity from verified TLS client certificates.
	ClientCert *ClientCertConfig `json:"client_cert,omitempty"`

	// DefaultPermission is the level users have on resources they hold no
	// grant on: READ (the default), USE, EDIT, MANAGE or NO_PERMISSIONS.
	DefaultPermission string `json:"default_permission,omitempty"`

	// Realm is the realm of WWW-Authenticate challenges. Default "mlflow".
	Realm string `json:"realm,omitempty"`

	// BasicCacheTTL is how long a verified Basic credential is remembered
	// (an HMAC of it, never the password). Default 5m.
	BasicCacheTTL caddy.Duration `json:"basic_cache_ttl,omitempty"`
}

// AdminConfig is a bootstrap administrator.
type AdminConfig struct {
	// Username is the admin's name.
	Username string `json:"username"`
	// PasswordHash is a bcrypt hash (caddy hash-password makes one).
	PasswordHash string `json:"password_hash"`
}

// JWTConfig configures Bearer JWT verification. At least one key source
// is required.
type JWTConfig struct {
	// HMACSecret is a shared secret (at least 32 bytes for HS256).
	HMACSecret string `json:"hmac_secret,omitempty"`
	// HMACAlg pins the HMAC algorithm: HS256 (default), HS384, HS512.
	HMACAlg string `json:"hmac_alg,omitempty"`
	// PublicKeys are PEM public keys, each pinned to an algorithm.
	PublicKeys []PublicKeyConfig `json:"public_keys,omitempty"`
	// JWKSFiles are JSON Web Key Set files read at provision.
	JWKSFiles []string `json:"jwks_files,omitempty"`
	// JWKSURL is a JWKS endpoint, cached and refreshed on unknown kids.
	JWKSURL string `json:"jwks_url,omitempty"`
	// Issuer, when set, must equal the iss claim.
	Issuer string `json:"issuer,omitempty"`
	// Audiences, when set, must contain one of the aud values.
	Audiences []string `json:"audiences,omitempty"`
	// UsernameClaims are tried in order for the username. Default sub.
	UsernameClaims []string `json:"username_claims,omitempty"`
	// GroupsClaim names the groups claim; "-" disables. Default groups.
	GroupsClaim string `json:"groups_claim,omitempty"`
	// Leeway is the allowed clock skew. Default 30s, at most 5m.
	Leeway caddy.Duration `json:"leeway,omitempty"`
}

// PublicKeyConfig is one PEM public key file.
type PublicKeyConfig struct {
	// File is the PEM file.
	File string `json:"file"`
	// Alg pins the algorithm (RS256, PS256, ES256, EdDSA, ...).
	Alg string `json:"alg,omitempty"`
	// KID, when set, only matches tokens with this kid.
	KID string `json:"kid,omitempty"`
}

// ClientCertConfig configures identity from TLS client certificates. The
// TLS handshake (Caddy's client_auth) asks for and verifies certificates;
// this maps the verified leaf to a username.
type ClientCertConfig struct {
	// UsernameFrom lists the certificate fields tried in order: cn,
	// san_email, san_uri, san_dns. Default cn when no fingerprints are
	// given.
	UsernameFrom []string `json:"username_from,omitempty"`
	// Fingerprints maps SHA-256 certificate fingerprints (hex, colons
	// allowed) to usernames; consulted before UsernameFrom.
	Fingerprints map[string]string `json:"fingerprints,omitempty"`
	// Require makes a verified, mapped certificate mandatory on every
	// request (in addition to the Authorization header when a header
	// method is enabled).
	Require bool `json:"require,omitempty"`
	// TrustPool are CA files the verified chain must also end in: defence
	// in depth should the TLS layer accept certificates it should not. A
	// missing, empty or non-PEM file refuses to start.
	TrustPool []string `json:"trust_pool,omitempty"`
}

// replaceAll replaces placeholders in every string of the config. Unknown
// or empty placeholders are errors: an unset {env.ADMIN_HASH} must not
// become an empty hash.
// bcryptCost is the cost of the fake hash the server compares against for
// unknown users (0: bcrypt's default). Tests lower it; a deployment has no
// reason to.
var bcryptCost = 0

// hashPassword hashes a new user's password for the user store, at
// authn.HashPassword's cost (never below bcrypt's default). Tests swap in a
// minimum-cost hash: the authorization matrix sends hundreds of wrong
// passwords, each a full bcrypt comparison, under the race detector.
var hashPassword = func(pw string) ([]byte, error) { return authn.HashPassword(pw, 0) }

func (c *AuthConfig) replaceAll(repl *caddy.Replacer) error {
	var firstErr error
	r := func(what string, s *string) {
		if firstErr != nil || !strings.Contains(*s, "{") {
			return
		}
		v, err := repl.ReplaceOrErr(*s, true, true)
		if err != nil {
			firstErr = fmt.Errorf("%s: %w", what, err)
			return
		}
		*s = v
	}
	for i := range c.Admins {
		r("admin username", &c.Admins[i].Username)
		r("admin password hash", &c.Admins[i].PasswordHash)
	}
	r("default_permission", &c.DefaultPermission)
	r("realm", &c.Realm)
	if j := c.JWT; j != nil {
		r("jwt hmac_secret", &j.HMACSecret)
		r("jwt hmac_alg", &j.HMACAlg)
		for i := range j.PublicKeys {
			r("jwt public_key file", &j.PublicKeys[i].File)
			r("jwt public_key alg", &j.PublicKeys[i].Alg)
			r("jwt public_key kid", &j.PublicKeys[i].KID)
		}
		for i := range j.JWKSFiles {
			r("jwt jwks_file", &j.JWKSFiles[i])
		}
		r("jwt jwks_url", &j.JWKSURL)
		r("jwt issuer", &j.Issuer)
		for i := range j.Audiences {
			r("jwt audience", &j.Audiences[i])
		}
		for i := range j.UsernameClaims {
			r("jwt username_claims", &j.UsernameClaims[i])
		}
		r("jwt groups_claim", &j.GroupsClaim)
	}
	if cc := c.ClientCert; cc != nil {
		for i := range cc.UsernameFrom {
			r("client_cert username_from", &cc.UsernameFrom[i])
		}
		fps := make(map[string]string, len(cc.Fingerprints))
		for k, v := range cc.Fingerprints {
			r("client_cert fingerprint", &k)
			r("client_cert fingerprint username", &v)
			fps[k] = v
		}
		if cc.Fingerprints != nil {
			cc.Fingerprints = fps
		}
		for i := range cc.TrustPool {
			r("client_cert trust_pool", &cc.TrustPool[i])
		}
	}
	return firstErr
}

// check validates what needs no I/O.
func (c *AuthConfig) check() error {
	if !c.Basic && !c.APITokens && c.JWT == nil && c.ClientCert == nil {
		return errors.New("auth: enable at least one of basic, api_tokens, jwt, client_cert")
	}
	if c.DefaultPermission != "" && !strings.Contains(c.DefaultPermission, "{") {
		if _, err := authz.ParseLevel(c.DefaultPermission); err != nil {
			return fmt.Errorf("auth: default_permission: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, a := range c.Admins {
		if a.Username == "" || a.PasswordHash == "" {
			return errors.New("auth: admin needs a username and a bcrypt password hash")
		}
		if seen[a.Username] {
			return fmt.Errorf("auth: admin %q declared twice", a.Username)
		}
		seen[a.Username] = true
	}
	if j := c.JWT; j != nil && j.HMACSecret == "" && len(j.PublicKeys) == 0 && len(j.JWKSFiles) == 0 && j.JWKSURL == "" {
		return errors.New("auth: jwt needs a key source: hmac_secret, public_key, jwks_file or jwks_url")
	}
	return nil
}

// gateway is the provisioned auth pipeline.
type gateway struct {
	cfg       AuthConfig
	authn     *authn.Authenticator
	authz     *authz.Authorizer
	users     authstore.Store
	tracking  tracking.Store
	matcher   *authz.Matcher
	trustPool *x509.CertPool
	log       *zap.Logger
	audit     *zap.Logger
	runs      runCache
	sess      *sessionState // browser sessions (auth_session.go); nil without basic
}

// provisionAuth builds the gateway from h.Auth: placeholders, the user
// store in the shared bbolt file, bootstrap admins, authenticators and the
// route table check.
func (h *Handler) provisionAuth(ctx caddy.Context) (*gateway, error) {
	cfg := *h.Auth
	// Deep-copy the slices the replacer writes to, so the JSON config keeps
	// its placeholders.
	cfg.Admins = append([]AdminConfig(nil), cfg.Admins...)
	if cfg.JWT != nil {
		j := *cfg.JWT
		j.PublicKeys = append([]PublicKeyConfig(nil), j.PublicKeys...)
		j.JWKSFiles = append([]string(nil), j.JWKSFiles...)
		j.Audiences = append([]string(nil), j.Audiences...)
		j.UsernameClaims = append([]string(nil), j.UsernameClaims...)
		cfg.JWT = &j
	}
	if cfg.ClientCert != nil {
		cc := *cfg.ClientCert
		cc.UsernameFrom = append([]string(nil), cc.UsernameFrom...)
		cc.TrustPool = append([]string(nil), cc.TrustPool...)
		cfg.ClientCert = &cc
	}
	if err := cfg.replaceAll(caddy.NewReplacer()); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if h.tracking == nil {
		return nil, errors.New("auth: needs the backend store for users and permissions (auth cannot be used with artifacts_only yet)")
	}
	def := authz.Read
	if cfg.DefaultPermission != "" {
		var err error
		if def, err = authz.ParseLevel(cfg.DefaultPermission); err != nil {
			return nil, fmt.Errorf("auth: default_permission: %w", err)
		}
	}
	users, err := h.openAuthStore(ctx) // authstore_open.go
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	for _, a := range cfg.Admins {
		hash := []byte(a.PasswordHash)
		if _, err := bcrypt.Cost(hash); err != nil {
			return nil, fmt.Errorf("auth: admin %q: password hash is not a bcrypt hash (make one with `caddy hash-password`)", a.Username)
		}
		if err := users.EnsureAdmin(ctx, a.Username, hash); err != nil {
			return nil, fmt.Errorf("auth: bootstrap admin %q: %w", a.Username, err)
		}
	}

	ac := authn.Config{Realm: cfg.Realm}
	if cfg.Basic {
		if ac.Basic, err = authn.NewBasic(users, authn.BasicOptions{CacheTTL: time.Duration(cfg.BasicCacheTTL), FakeHashCost: bcryptCost}); err != nil {
			return nil, fmt.Errorf("auth: basic: %w", err)
		}
	}
	if cfg.APITokens {
		if ac.Tokens, err = authn.NewTokenVerifier(users, users, nil); err != nil {
			return nil, fmt.Errorf("auth: api_tokens: %w", err)
		}
	}
	if cfg.JWT != nil {
		if ac.JWT, err = buildJWT(cfg.JWT); err != nil {
			return nil, fmt.Errorf("auth: jwt: %w", err)
		}
	}
	var pool *x509.CertPool
	if cc := cfg.ClientCert; cc != nil {
		m := tlsutil.CertMapper{}
		for _, f := range cc.UsernameFrom {
			field, err := tlsutil.ParseCertField(f)
			if err != nil {
				return nil, fmt.Errorf("auth: client_cert: %w", err)
			}
			m.From = append(m.From, field)
		}
		if len(cc.Fingerprints) > 0 {
			m.Fingerprints = make(map[[32]byte]string, len(cc.Fingerprints))
			for fp, name := range cc.Fingerprints {
				k, err := tlsutil.ParseFingerprint(fp)
				if err != nil {
					return nil, fmt.Errorf("auth: client_cert: %w", err)
				}
				m.Fingerprints[k] = name
			}
		}
		if len(m.From) == 0 && len(m.Fingerprints) == 0 {
			m.From = []tlsutil.CertField{tlsutil.FieldCN}
		}
		if ac.ClientCert, err = authn.NewClientCert(m, nil); err != nil {
			return nil, fmt.Errorf("auth: client_cert: %w", err)
		}
		ac.RequireClientCert = cc.Require
		if len(cc.TrustPool) > 0 {
			if pool, _, err = tlsutil.LoadCAPool(cc.TrustPool...); err != nil {
				return nil, fmt.Errorf("auth: client_cert trust_pool: %w", err)
			}
		}
	}
	if ac.Sessions, err = newSessions(users, ac.Basic); err != nil {
		return nil, fmt.Errorf("auth: sessions: %w", err)
	}
	an, err := authn.New(ac)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}

	g := &gateway{
		cfg:       cfg,
		authn:     an,
		users:     users,
		tracking:  h.tracking,
		trustPool: pool,
		log:       h.logger,
		audit:     h.logger.Named("audit"),
		runs:      runCache{m: make(map[string]string)},
		sess:      newSessionState(ac.Basic, ac.Sessions, users),
	}
	g.authz = &authz.Authorizer{Perms: g, Resolver: g, Default: def}
	if h.boltPath != "" {
		// For the admin API and the CLI; the CLI works on a PostgreSQL
		// backend directly.
		registerRunningStore(h.boltPath, users)
	}
	return g, nil
}

// attach finishes the gateway once the API server exists: it builds the
// route matcher and refuses to start when a route has no rule.
func (g *gateway) attach(srv *api.Server) error {
	routes := append(srv.Routes(), authz.ManagementRoutes()...)
	var missing []string
	for _, r := range routes {
		if _, ok := authz.Table[r.Name]; !ok {
			missing = append(missing, r.Name+" ("+r.Method+" "+r.Pattern+")")
		}
	}
	if len(missing) > 0 {
		// Denied at request time anyway; say so loudly at start.
		g.log.Error("routes without an authorization rule are denied to everyone",
			zap.Strings("routes", missing))
	}
	g.matcher = authz.NewMatcher(routes)
	return nil
}

func buildJWT(j *JWTConfig) (*authn.JWTVerifier, error) {
	var sets []authn.KeySet
	var static authn.StaticKeys
	if j.HMACSecret != "" {
		k, err := authn.NewHMACKey([]byte(j.HMACSecret), j.HMACAlg, "")
		if err != nil {
			return nil, err
		}
		static = append(static, k)
	}
	for _, pk := range j.PublicKeys {
		k, err := authn.LoadPublicKeyFile(pk.File, pk.Alg, pk.KID)
		if err != nil {
			return nil, err
		}
		static = append(static, k)
	}
	for _, f := range j.JWKSFiles {
		ks, err := authn.LoadJWKSFile(f)
		if err != nil {
			return nil, err
		}
		static = append(static, ks...)
	}
	if len(static) > 0 {
		sets = append(sets, static)
	}
	if j.JWKSURL != "" {
		remote, err := authn.NewRemoteJWKS(j.JWKSURL, authn.RemoteJWKSOptions{})
		if err != nil {
			return nil, err
		}
		sets = append(sets, remote)
	}
	return authn.NewJWTVerifier(authn.JWTOptions{
		Issuer:         j.Issuer,
		Audiences:      j.Audiences,
		UsernameClaims: j.UsernameClaims,
		GroupsClaim:    j.GroupsClaim,
		Leeway:         time.Duration(j.Leeway),
	}, sets...)
}

// --- authz.Permissions and authz.Resolver over the stores ---

// IsAdmin implements authz.Permissions.
func (g *gateway) IsAdmin(ctx context.Context, user string) (bool, error) {
	u, err := g.users.GetUser(ctx, user)
	if errors.Is(err, authstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.IsAdmin, nil
}

func (g *gateway) level(ctx context.Context, kind authstore.Kind, user, res string) (authz.Level, bool, error) {
	s, ok, err := g.users.Permission(ctx, kind, res, user)
	if err != nil || !ok {
		return authz.NoPermissions, false, err
	}
	l, err := authz.ParseLevel(s)
	if err != nil {
		return authz.NoPermissions, false, fmt.Errorf("auth: stored permission: %w", err)
	}
	return l, true, nil
}

// ExperimentLevel implements authz.Permissions.
func (g *gateway) ExperimentLevel(ctx context.Context, user, expID string) (authz.Level, bool, error) {
	return g.level(ctx, authstore.Experiment, user, expID)
}

// RegisteredModelLevel implements authz.Permissions.
func (g *gateway) RegisteredModelLevel(ctx context.Context, user, name string) (authz.Level, bool, error) {
	return g.level(ctx, authstore.RegisteredModel, user, name)
}

// RunExperiment implements authz.Resolver. A run's experiment never
// changes, so answers are cached.
func (g *gateway) RunExperiment(ctx context.Context, runID string) (string, error) {
	if exp, ok := g.runs.get(runID); ok {
		return exp, nil
	}
	run, err := g.tracking.GetRun(ctx, runID)
	if err != nil {
		if te, ok := tracking.AsError(err); ok && te.Code == tracking.ResourceDoesNotExist {
			return "", fmt.Errorf("run %q: %w", runID, authz.ErrUnknownResource)
		}
		if te, ok := tracking.AsError(err); ok && te.Code == tracking.InvalidParameterValue {
			return "", fmt.Errorf("run %q: %w", runID, authz.ErrUnknownResource)
		}
		return "", err
	}
	g.runs.put(runID, run.Info.ExperimentID)
	return run.Info.ExperimentID, nil
}

// ExperimentID implements authz.Resolver.
func (g *gateway) ExperimentID(ctx context.Context, name string) (string, error) {
	e, err := g.tracking.GetExperimentByName(ctx, name)
	if err != nil {
		if te, ok := tracking.AsError(err); ok && te.Code == tracking.ResourceDoesNotExist {
			return "", fmt.Errorf("experiment %q: %w", name, authz.ErrUnknownResource)
		}
		return "", err
	}
	return e.ExperimentID, nil
}

// LoggedModelExperiment implements authz.Resolver.
func (g *gateway) LoggedModelExperiment(ctx context.Context, id string) (string, error) {
	m, err := g.tracking.GetLoggedModel(ctx, id)
	if err != nil {
		if te, ok := tracking.AsError(err); ok && te.Code == tracking.ResourceDoesNotExist {
			return "", fmt.Errorf("logged model %q: %w", id, authz.ErrUnknownResource)
		}
		return "", err
	}
	return m.Info.ExperimentID, nil
}

// TraceExperiment implements authz.Resolver.
func (g *gateway) TraceExperiment(ctx context.Context, id string) (string, error) {
	t, err := g.tracking.GetTraceInfo(ctx, id)
	if err != nil {
		if te, ok := tracking.AsError(err); ok && te.Code == tracking.ResourceDoesNotExist {
			return "", fmt.Errorf("trace %q: %w", id, authz.ErrUnknownResource)
		}
		return "", err
	}
	return t.ExperimentID, nil
}

// runCache maps run ids to experiment ids, bounded by dropping everything
// when full (runs never move, so entries are never stale).
type runCache struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxRunCache = 100_000

func (c *runCache) get(id string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[id]
	return v, ok
}

func (c *runCache) put(id, exp string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxRunCache {
		clear(c.m)
	}
	c.m[id] = exp
}

// requestAuthorizer is the api.Authorizer of one request: it filters
// searches and grants creators MANAGE.
type requestAuthorizer struct {
	g     *gateway
	user  string
	admin bool
}

// CanReadExperiment implements api.Authorizer.
func (a *requestAuthorizer) CanReadExperiment(ctx context.Context, id string) (bool, error) {
	if a.admin {
		return true, nil
	}
	l, err := a.g.authz.Level(ctx, "experiment", id, a.user)
	return l.Allows(authz.ActRead), err
}

// CanReadRegisteredModel implements api.Authorizer.
func (a *requestAuthorizer) CanReadRegisteredModel(ctx context.Context, name string) (bool, error) {
	if a.admin {
		return true, nil
	}
	l, err := a.g.authz.Level(ctx, "registered_model", name, a.user)
	return l.Allows(authz.ActRead), err
}

// ExperimentCreated implements api.Authorizer: the creator gets MANAGE.
func (a *requestAuthorizer) ExperimentCreated(ctx context.Context, id string) error {
	return a.g.grantCreator(ctx, authstore.Experiment, id, a.user)
}

// RegisteredModelCreated implements api.Authorizer: the creator gets MANAGE.
func (a *requestAuthorizer) RegisteredModelCreated(ctx context.Context, name string) error {
	return a.g.grantCreator(ctx, authstore.RegisteredModel, name, a.user)
}

// RegisteredModelRenamed implements api.Authorizer: grants follow the model.
func (a *requestAuthorizer) RegisteredModelRenamed(ctx context.Context, oldName, newName string) error {
	return a.g.users.RenameResource(ctx, authstore.RegisteredModel, oldName, newName)
}

// grantCreator records MANAGE for the creator. Callers known only from a
// JWT or certificate have no user record; they are created without a
// password so the grant has an owner.
func (g *gateway) grantCreator(ctx context.Context, kind authstore.Kind, res, user string) error {
	err := g.users.SetGrant(ctx, kind, res, user, authz.Manage.String())
	if errors.Is(err, authstore.ErrNotFound) {
		if _, err := g.users.CreateUser(ctx, user, nil, false); err != nil && !errors.Is(err, authstore.ErrExists) {
			return err
		}
		err = g.users.SetGrant(ctx, kind, res, user, authz.Manage.String())
	}
	return err
}

var _ api.Authorizer = (*requestAuthorizer)(nil)
