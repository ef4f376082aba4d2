// Package caddymodule makes the MLflow tracking server a Caddy v2 HTTP
// handler: the module http.handlers.mlflow and its Caddyfile directive
// mlflow.
//
// The handler owns its whole site: it answers every request that reaches it
// with what `mlflow server` would answer (the REST API under /api and
// /ajax-api, the mlflow-artifacts proxy, /health, /version, /get-artifact),
// and 404 for anything else. Put other handlers in front of it (or wrap it
// in handle/route blocks) to serve more from the same site.
//
// Tracking data lives in an embedded bbolt file or in a PostgreSQL
// database. The open bbolt database is kept in a process-wide
// caddy.UsagePool keyed by its absolute path, so a config reload reuses it
// instead of deadlocking on bbolt's file lock; a PostgreSQL connection pool
// is kept the same way, keyed by its URI and pool options.
package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/ui"
)

// ModulePath is the Go module path of this project; BuildVersion reports
// its version.
const ModulePath = "github.com/caddy-mlflow/caddy-mlflow"

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the http.handlers.mlflow module: an MLflow tracking server.
// Its fields mirror the flags of `mlflow server`. The zero value is a
// working server: tracking data in ./mlflow.bolt, proxied artifacts in
// ./mlartifacts, new experiments rooted at mlflow-artifacts:/.
type Handler struct {
	// BackendStoreURI is where tracking data is stored: a bbolt file path,
	// bbolt:///absolute/path or bbolt://relative/path (relative paths are
	// resolved against Caddy's working directory), or a PostgreSQL
	// database, postgresql://user:password@host:5432/db?sslmode=...
	// (also postgres:// and postgresql+psycopg2://, the driver part
	// ignored; a password missing from the URI comes from PGPASSWORD or
	// PGPASSFILE). Placeholders such as {env.MLFLOW_DB_URI} are replaced
	// at provisioning. Default ./mlflow.bolt.
	BackendStoreURI string `json:"backend_store_uri,omitempty"`

	// Postgres tunes the connection pool of a PostgreSQL BackendStoreURI
	// (see PostgresConfig). Nil takes the defaults; set with a bbolt
	// backend it is an error.
	Postgres *PostgresConfig `json:"postgres,omitempty"`

	// ArtifactsDestination is the local directory (a path or
	// file:///absolute/path) that proxied artifacts are stored in when the
	// server serves artifacts. Default ./mlartifacts.
	ArtifactsDestination string `json:"artifacts_destination,omitempty"`

	// GCSEndpoint points a gs:// artifacts_destination at a GCS emulator
	// or private endpoint (http://host:port); requests to it carry no
	// credentials. Empty means Google's endpoint with Application Default
	// Credentials, unless STORAGE_EMULATOR_HOST is set.
	GCSEndpoint string `json:"gcs_endpoint,omitempty"`

	// SignedURLDownloads, when set, answers downloads of large artifacts
	// of a gs:// artifacts_destination with a redirect to a V4 signed URL
	// instead of streaming them (see SignedURLDownloads). Nil (the
	// default) streams every download.
	SignedURLDownloads *SignedURLDownloads `json:"signed_url_downloads,omitempty"`

	// DefaultArtifactRoot is the artifact location of new experiments that
	// do not name one. Default mlflow-artifacts:/ when serving artifacts,
	// otherwise ./mlruns made absolute.
	DefaultArtifactRoot string `json:"default_artifact_root,omitempty"`

	// ServeArtifacts turns the mlflow-artifacts proxy on or off. Default
	// true (nil means true), as for `mlflow server`.
	ServeArtifacts *bool `json:"serve_artifacts,omitempty"`

	// ArtifactsOnly makes the server proxy artifacts only: tracking
	// endpoints answer 503, as under `mlflow server --artifacts-only`.
	ArtifactsOnly bool `json:"artifacts_only,omitempty"`

	// MLflowVersion is what GET /version answers. Default 3.6.0. MLflow
	// clients compare it with their own and turn features (such as span
	// logging through OTLP) off below 3.4.
	MLflowVersion string `json:"mlflow_version,omitempty"`

	// MaxUploadSize is the largest artifact upload accepted, in bytes. Zero
	// means the API's default.
	MaxUploadSize int64 `json:"max_upload_size,omitempty"`

	// Uploads tunes the clean-up of interrupted uploads and the multipart
	// signing key (see UploadsConfig). Nil takes the defaults.
	Uploads *UploadsConfig `json:"uploads,omitempty"`

	// OTLP bounds OTLP span exports (see OTLPConfig). Nil takes the
	// defaults.
	OTLP *OTLPConfig `json:"otlp,omitempty"`

	// OpenTimeout is how long to wait for the bbolt file lock when another
	// process holds it. Default 5s.
	OpenTimeout caddy.Duration `json:"open_timeout,omitempty"`

	// Auth turns on authentication, authorization and the audit log (see
	// AuthConfig). Nil leaves the server open, as `mlflow server` is.
	Auth *AuthConfig `json:"auth,omitempty"`

	// UI turns the tracking UI at / on or off. Default true (nil means
	// true), except that an artifacts_only server never serves it.
	UI *bool `json:"ui,omitempty"`

	logger       *zap.Logger
	boltPath     string // absolute path of the bbolt file; "" when no store is used
	artifactsDir string // absolute path of the artifacts directory; "" when not served
	artifactRoot string // resolved default artifact root
	acquired     bool   // Provision holds a dbPool reference to boltPath
	unlockListen func() // gives back the listen locks (listenguard.go); nil when none are held
	store        *boltstore.Store
	server       *api.Server
	api          http.Handler   // server behind the merged-slash redirect (slashes.go)
	artifacts    artifact.Store // the proxied store; closed by Cleanup
	auth         *gateway       // nil without Auth
	ui           *ui.Handler    // nil when the UI is off
	stopSweep    func()         // stops the interrupted-upload sweeper (uploads.go)
	routes       *authz.Matcher // names requests' routes for metrics (metrics.go)

	backend BackendStore // the resolved backend_store_uri; zero when no store is used
	pg      *sharedPG    // the pooled PostgreSQL store (postgres.go), held while acquired; nil unless the backend is PostgreSQL
	// tracking is the backend's store (bbolt or PostgreSQL), before any
	// authorization wrapper; nil when no store is used.
	tracking tracking.Store
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mlflow",
		New: func() caddy.Module { return new(Handler) },
	}
}

// serveArtifacts reports whether the mlflow-artifacts proxy is on.
func (h *Handler) serveArtifacts() bool {
	return h.ServeArtifacts == nil || *h.ServeArtifacts
}

// serveUI reports whether the tracking UI is on.
func (h *Handler) serveUI() bool {
	return !h.ArtifactsOnly && (h.UI == nil || *h.UI)
}

// checkConfig reports configuration errors that need no I/O.
func (h *Handler) checkConfig() error {
	if h.ArtifactsOnly && !h.serveArtifacts() {
		return errors.New("artifacts_only requires serve_artifacts: an artifacts-only server that does not serve artifacts serves nothing")
	}
	if h.ArtifactsOnly && h.BackendStoreURI != "" {
		return errors.New("backend_store_uri cannot be used with artifacts_only: an artifacts-only server keeps no tracking data (mlflow server refuses this too)")
	}
	if h.MaxUploadSize < 0 {
		return fmt.Errorf("max_upload_size must not be negative, got %d", h.MaxUploadSize)
	}
	if err := h.Uploads.check(); err != nil { // uploads.go
		return err
	}
	if err := h.OTLP.check(); err != nil { // otlp.go
		return err
	}
	if h.OpenTimeout < 0 {
		return fmt.Errorf("open_timeout must not be negative, got %s", time.Duration(h.OpenTimeout))
	}
	if err := h.Postgres.check(); err != nil { // postgres.go
		return err
	}
	backend, err := ParseBackendStoreURI(h.backendStoreURI())
	if err != nil {
		return err
	}
	if h.Postgres != nil && !backend.IsPostgres() {
		return errors.New("postgres settings need a PostgreSQL backend_store_uri (postgresql://user:password@host:5432/db)")
	}
	if _, err := ResolveArtifactsDestination(h.ArtifactsDestination); err != nil {
		return err
	}
	if _, err := ResolveDefaultArtifactRoot(h.DefaultArtifactRoot, h.serveArtifacts()); err != nil {
		return err
	}
	return h.SignedURLDownloads.check(h.serveArtifacts(), h.ArtifactsDestination) // config.go
}

// Provision validates the configuration, resolves paths, acquires the
// shared bbolt database, and builds the MLflow API server (which creates
// the Default experiment if the store has none).
func (h *Handler) Provision(ctx caddy.Context) (err error) {
	h.logger = ctx.Logger()
	if err := h.checkConfig(); err != nil {
		return fmt.Errorf("mlflow: %w", err)
	}
	serve := h.serveArtifacts()
	if h.MLflowVersion == "" {
		h.MLflowVersion = DefaultMLflowVersion
	}
	if h.OpenTimeout == 0 {
		h.OpenTimeout = caddy.Duration(DefaultOpenTimeout)
	}
	if h.artifactRoot, err = ResolveDefaultArtifactRoot(h.DefaultArtifactRoot, serve); err != nil {
		return fmt.Errorf("mlflow: %w", err)
	}

	// If anything below fails, give back what was acquired so far: Caddy
	// calls Cleanup after a failed Provision, but callers outside Caddy
	// may not.
	defer func() {
		if err != nil {
			h.release()
		}
	}()

	// Refuse an address another mlflow server process listens on before
	// touching any store (listenguard.go).
	if err := h.guardListen(ctx); err != nil {
		return fmt.Errorf("mlflow: %w", err)
	}

	var store tracking.Store
	if !h.ArtifactsOnly {
		if store, err = h.openStore(ctx); err != nil {
			return fmt.Errorf("mlflow: %w", err)
		}
	}

	if h.Auth != nil {
		if h.auth, err = h.provisionAuth(ctx); err != nil {
			return fmt.Errorf("mlflow: %w", err)
		}
		store = api.AuthorizedStore(store)
	}

	var artifacts artifact.Store
	if serve {
		if h.artifactsDir, err = ResolveArtifactsDestination(h.ArtifactsDestination); err != nil {
			return fmt.Errorf("mlflow: %w", err)
		}
		if artifacts, err = h.openArtifactStore(ctx); err != nil { // artifacts_store.go
			return fmt.Errorf("mlflow: %w", err)
		}
		h.artifacts = artifacts
	} else {
		if h.ArtifactsDestination != "" {
			h.logger.Warn("artifacts_destination is ignored because serve_artifacts is off",
				zap.String("artifacts_destination", h.ArtifactsDestination))
		}
		if schemeOf(h.artifactRoot) == "mlflow-artifacts" {
			h.logger.Warn("default_artifact_root points at the artifact proxy, which is off (serve_artifacts off): clients will get 503 for artifact uploads",
				zap.String("default_artifact_root", h.artifactRoot))
		}
	}

	mpuKey, err := h.multipartSigningKey(ctx) // authstore_open.go
	if err != nil {
		return fmt.Errorf("mlflow: %w", err)
	}
	h.server, err = api.New(api.Options{
		Store:               store,
		Artifacts:           artifacts,
		ServeArtifacts:      serve,
		ArtifactsOnly:       h.ArtifactsOnly,
		DefaultArtifactRoot: h.artifactRoot,
		MLflowVersion:       h.MLflowVersion,
		BuildVersion:        BuildVersion(),
		MaxUploadSize:       h.MaxUploadSize,
		OTLPLimits:          h.OTLP.limits(),
		MultipartSigningKey: mpuKey,
		Logger:              h.logger,
	})
	if err != nil {
		return fmt.Errorf("mlflow: building the API server: %w", err)
	}
	routes := h.server.Routes()
	if h.auth != nil {
		if err := h.auth.attach(h.server); err != nil {
			return fmt.Errorf("mlflow: %w", err)
		}
		routes = append(routes, authz.ManagementRoutes()...)
	}
	h.api = &slashRedirect{next: h.server, matcher: authz.NewMatcher(routes)}

	if h.serveUI() {
		opts := ui.Options{}
		if h.auth != nil {
			opts.Viewer = h.auth.viewer
		}
		if h.ui, err = ui.New(opts); err != nil {
			return fmt.Errorf("mlflow: %w", err)
		}
	}

	if err := h.provisionMetrics(ctx); err != nil { // metrics.go
		return fmt.Errorf("mlflow: %w", err)
	}

	h.startSweeper()    // uploads.go
	h.registerLive(ctx) // maint_import.go: for the admin API's online import

	h.logger.Info("mlflow tracking server provisioned",
		zap.String("backend_store", h.backend.String()),
		zap.Bool("serve_artifacts", serve),
		zap.String("artifacts_destination", h.artifactsDir),
		zap.String("default_artifact_root", h.artifactRoot),
		zap.Bool("artifacts_only", h.ArtifactsOnly),
		zap.String("mlflow_version", h.MLflowVersion),
		zap.Bool("auth", h.auth != nil),
		zap.Bool("ui", h.ui != nil))
	return nil
}

// backendStoreURI is BackendStoreURI with its placeholders ({env.VAR})
// replaced, so that a password need not be written into the config.
func (h *Handler) backendStoreURI() string {
	return caddy.NewReplacer().ReplaceKnown(h.BackendStoreURI, "")
}

// openStore resolves backend_store_uri and acquires the pooled bbolt
// database or PostgreSQL pool it names, returning the tracking store on
// it. What it acquires is given back by release.
func (h *Handler) openStore(ctx caddy.Context) (tracking.Store, error) {
	var err error
	if h.backend, err = ParseBackendStoreURI(h.backendStoreURI()); err != nil {
		return nil, err
	}
	if h.backend.IsPostgres() {
		shared, err := acquirePG(ctx, h.backend.PostgresURI, h.Postgres.options()) // postgres.go
		if err != nil {
			return nil, err
		}
		h.pg, h.acquired = shared, true
		h.tracking = shared.store
		return shared.store, nil
	}
	h.boltPath = h.backend.BoltPath
	shared, err := acquireDB(h.boltPath, time.Duration(h.OpenTimeout))
	if err != nil {
		return nil, err
	}
	h.acquired = true
	bs, err := boltstore.OpenDB(shared.db, boltstore.WithLogger(h.logger))
	if err != nil {
		return nil, fmt.Errorf("backend store %s: %w", h.boltPath, err)
	}
	h.store, h.tracking = bs, bs
	return bs, nil
}

// Validate checks the configuration. Provision has already rejected what
// it could not work with; Validate repeats the I/O-free checks so that a
// handler provisioned by other means is held to the same rules.
func (h *Handler) Validate() error {
	if err := h.checkConfig(); err != nil {
		return fmt.Errorf("mlflow: %w", err)
	}
	if h.server == nil {
		return errors.New("mlflow: handler not provisioned")
	}
	return nil
}

// ServeHTTP answers the request with the MLflow API server. The server owns
// the whole site, so paths MLflow does not serve get its 404; next is never
// called.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	stripLeadingSlashes(r.URL) // before any routing or authorization (slashes.go)
	r.URL.Scheme = clientScheme(r)
	w, r, done := h.observeRequest(w, r)
	defer done()
	if h.ui != nil && ui.Owns(r.URL.Path) {
		if h.auth != nil {
			h.auth.serveUI(w, r, h.ui)
			return nil
		}
		h.ui.ServeHTTP(w, r)
		return nil
	}
	if h.auth != nil {
		h.auth.serve(w, r, h.api)
		return nil
	}
	h.api.ServeHTTP(w, r)
	return nil
}

// Cleanup releases the bbolt database or PostgreSQL pool if, and only if,
// Provision acquired it. It is safe to call more than once.
func (h *Handler) Cleanup() error {
	h.stopSweeper()
	h.closeArtifacts()
	return h.release()
}

// guardListen takes the listen locks of the addresses of the Caddy server
// this handler is provisioned in. A handler provisioned outside an HTTP
// server (in unit tests) has no address to guard.
func (h *Handler) guardListen(ctx caddy.Context) error {
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil {
		return nil
	}
	keys, err := listenKeys(ctx, srv.Listen)
	if err != nil {
		return err
	}
	unlock, err := acquireListenLocks(keys)
	if err != nil {
		return err
	}
	h.unlockListen = unlock
	return nil
}

// release gives back the listen locks and drops the pool reference
// Provision took, if any.
func (h *Handler) release() error {
	if h.unlockListen != nil {
		h.unlockListen()
		h.unlockListen = nil
	}
	if !h.acquired {
		return nil
	}
	h.acquired = false
	if h.pg != nil {
		key := h.pg.key
		h.pg, h.tracking = nil, nil
		if err := releasePG(key); err != nil {
			if h.logger != nil {
				h.logger.Error("releasing backend store", zap.Error(err))
			}
			return err
		}
		return nil
	}
	if h.store != nil {
		// The store does not own the pooled database; Close only marks it
		// released.
		_ = h.store.Close()
		h.store, h.tracking = nil, nil
	}
	if err := releaseDB(h.boltPath); err != nil {
		if h.logger != nil {
			h.logger.Error("releasing backend store", zap.Error(err))
		}
		return err
	}
	return nil
}

// BuildVersion returns the version of this module as built into the
// running binary ("(devel)" for a local build).
func BuildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	if info.Main.Path == ModulePath && info.Main.Version != "" {
		return info.Main.Version
	}
	for _, dep := range info.Deps {
		if dep.Path == ModulePath {
			if dep.Replace != nil && dep.Replace.Version != "" {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "(devel)"
}

// Interface guards.
var (
	_ caddy.Module                = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
