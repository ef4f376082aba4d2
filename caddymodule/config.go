package caddymodule

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

// Defaults of the mlflow directive. They mirror `mlflow server`'s defaults
// where MLflow has one.
const (
	// DefaultBackendStorePath is the bbolt file used when backend_store_uri
	// is empty, relative to Caddy's working directory.
	DefaultBackendStorePath = "./mlflow.bolt"
	// DefaultArtifactsDestination is the directory proxied artifacts are
	// stored in when artifacts_destination is empty, relative to Caddy's
	// working directory (`mlflow server`'s ./mlartifacts).
	DefaultArtifactsDestination = "./mlartifacts"
	// DefaultServedArtifactRoot is the default artifact root of new
	// experiments when the server serves artifacts.
	DefaultServedArtifactRoot = "mlflow-artifacts:/"
	// DefaultUnservedArtifactRoot is the default artifact root of new
	// experiments when the server does not serve artifacts; it is made
	// absolute against Caddy's working directory, as `mlflow server` does.
	DefaultUnservedArtifactRoot = "./mlruns"
	// DefaultMLflowVersion is what GET /version answers by default. MLflow
	// clients parse it and turn features off for servers older than 3.4.
	DefaultMLflowVersion = "3.6.0"
	// BoltScheme is the URI scheme of backend_store_uri for the embedded
	// bbolt store: bbolt:///abs/path or bbolt://relative/path.
	BoltScheme = "bbolt"
)

// uriScheme matches a URI scheme of two or more characters. A single letter
// followed by a colon is a Windows drive, not a scheme.
var uriScheme = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.\-]+):`)

// schemeOf returns the lower-cased URI scheme of s, or "" when s is a plain
// file path.
func schemeOf(s string) string {
	m := uriScheme.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return strings.ToLower(m[1])
}

// sqlSchemes are the SQLAlchemy database URI schemes `mlflow server`
// accepts that this server does not: PostgreSQL is the one SQL database it
// stores tracking data in.
var sqlSchemes = map[string]bool{"sqlite": true, "mysql": true, "mssql": true}

// isUnsupportedSQL reports the sqlite, mysql and mssql schemes, with or
// without a SQLAlchemy driver part (mysql+pymysql).
func isUnsupportedSQL(scheme string) bool {
	base, _, _ := strings.Cut(scheme, "+")
	return sqlSchemes[base]
}

// BackendStore is a resolved backend_store_uri: exactly one of BoltPath
// and PostgresURI is set.
type BackendStore struct {
	// BoltPath is the absolute path of the embedded bbolt file.
	BoltPath string
	// PostgresURI is the PostgreSQL URI as configured (postgresql://,
	// postgres:// or postgresql+driver://), password included: log and
	// print it only through pgdb.Redact.
	PostgresURI string
}

// IsPostgres reports whether the backend is a PostgreSQL database.
func (b BackendStore) IsPostgres() bool { return b.PostgresURI != "" }

// String names the backend for logs and messages, without any password.
func (b BackendStore) String() string {
	if b.IsPostgres() {
		return pgdb.Redact(b.PostgresURI)
	}
	return b.BoltPath
}

// ParseBackendStoreURI resolves a backend_store_uri: a PostgreSQL URI
// (postgresql://user:password@host:5432/db?sslmode=..., postgres://, or
// postgresql+psycopg2:// with the driver part ignored, as `mlflow server`
// takes them) or any bbolt form ResolveBackendStoreURI accepts. The
// PostgreSQL URI is checked by parsing it (pgdb.ParseConfig, which also
// reads the PG* environment variables); nothing is connected to.
func ParseBackendStoreURI(uri string) (BackendStore, error) {
	if pgdb.IsURI(uri) {
		if _, err := pgdb.ParseConfig(uri, pgdb.Options{}); err != nil {
			return BackendStore{}, fmt.Errorf("backend_store_uri: %w", err)
		}
		return BackendStore{PostgresURI: strings.TrimSpace(uri)}, nil
	}
	p, err := ResolveBackendStoreURI(uri)
	if err != nil {
		return BackendStore{}, err
	}
	return BackendStore{BoltPath: p}, nil
}

// ResolveBackendStoreURI turns a backend_store_uri into the absolute path of
// the bbolt file. Accepted forms:
//
//   - "" (the default, ./mlflow.bolt)
//   - a plain file path, absolute or relative to the working directory
//   - bbolt:///abs/path/mlflow.bolt (three slashes: an absolute path)
//   - bbolt://relative/path/mlflow.bolt (two slashes: relative to the
//     working directory)
//
// Relative paths are resolved against Caddy's working directory. A
// PostgreSQL URI is an error here (it names no file; ParseBackendStoreURI
// accepts it); other SQL database URIs (sqlite, mysql, mssql), MLflow's
// file store (file:, ./mlruns directories are not detected) and any other
// scheme are rejected with an error that says what is supported. Messages
// never show a password of the URI.
func ResolveBackendStoreURI(uri string) (string, error) {
	p := strings.TrimSpace(uri)
	if p == "" {
		p = DefaultBackendStorePath
	}
	switch scheme := schemeOf(p); {
	case scheme == "":
	case scheme == BoltScheme:
		rest := p[len(BoltScheme)+1:]
		if !strings.HasPrefix(rest, "//") {
			return "", fmt.Errorf("backend_store_uri %q: a bbolt URI is bbolt:///absolute/path or bbolt://relative/path", uri)
		}
		p = rest[2:]
		if i := strings.IndexAny(p, "?#"); i >= 0 {
			return "", fmt.Errorf("backend_store_uri %q: bbolt URIs take no query or fragment", uri)
		}
		if p == "" || p == "/" {
			return "", fmt.Errorf("backend_store_uri %q: the bbolt URI names no file", uri)
		}
	case pgdb.IsURI(p):
		return "", fmt.Errorf("backend_store_uri %s is a PostgreSQL database, not a bbolt file", pgdb.Redact(uri))
	case isUnsupportedSQL(scheme):
		return "", fmt.Errorf("backend_store_uri %s: %s databases are not supported yet; use PostgreSQL (postgresql://user:password@host:5432/db) or an embedded bbolt file (a file path or bbolt:///absolute/path)", pgdb.Redact(uri), scheme)
	case scheme == "file":
		return "", fmt.Errorf("backend_store_uri %q: MLflow's file store (file:) is not supported; use a bbolt file path or bbolt:///absolute/path", uri)
	default:
		return "", fmt.Errorf("backend_store_uri %s: unsupported scheme %q; use PostgreSQL (postgresql://user:password@host:5432/db), a bbolt file path or bbolt:///absolute/path", pgdb.Redact(uri), scheme)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("backend_store_uri %q: resolving path: %w", uri, err)
	}
	return abs, nil
}

// ResolveArtifactsDestination turns an artifacts_destination into the
// absolute path of a local directory. It accepts "" (./mlartifacts), a plain
// path (relative to the working directory) or a file:// URI
// (file:///abs/path), or returns a gs://bucket/prefix URI cleaned. Other
// remote stores (s3, wasbs, hdfs, ...) are not supported yet and are
// rejected with an error that says so.
func ResolveArtifactsDestination(dest string) (string, error) {
	p := strings.TrimSpace(dest)
	if p == "" {
		p = DefaultArtifactsDestination
	}
	switch scheme := schemeOf(p); scheme {
	case "":
	case "file":
		rest := p[len("file:"):]
		switch {
		case strings.HasPrefix(rest, "///"):
			p = rest[2:]
		case strings.HasPrefix(rest, "//localhost/"):
			p = rest[len("//localhost"):]
		case strings.HasPrefix(rest, "//"):
			return "", fmt.Errorf("artifacts_destination %q: file URIs with a remote host are not supported; use file:///absolute/path", dest)
		default:
			p = rest
		}
		if p == "" {
			return "", fmt.Errorf("artifacts_destination %q: the file URI names no directory", dest)
		}
	case "gs":
		return resolveGCSDestination(dest) // artifacts_store.go
	case "s3", "wasbs", "abfss", "hdfs", "viewfs", "ftp", "sftp", "oss", "dbfs", "uc", "http", "https", "mlflow-artifacts", "runs", "models":
		return "", fmt.Errorf("artifacts_destination %q: %s:// artifact storage is not supported yet; only a local directory (a path or file:///absolute/path) is", dest, scheme)
	default:
		return "", fmt.Errorf("artifacts_destination %q: unsupported scheme %q; only a local directory (a path or file:///absolute/path) is supported", dest, scheme)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("artifacts_destination %q: resolving path: %w", dest, err)
	}
	return abs, nil
}

// ResolveDefaultArtifactRoot returns the artifact root new experiments get:
// root itself when set, otherwise mlflow-artifacts:/ when the server serves
// artifacts, otherwise ./mlruns made absolute (what `mlflow server
// --no-serve-artifacts` does). A relative local path given explicitly is
// made absolute too, since clients resolve it on their own machines.
func ResolveDefaultArtifactRoot(root string, serveArtifacts bool) (string, error) {
	r := strings.TrimSpace(root)
	if r == "" {
		if serveArtifacts {
			return DefaultServedArtifactRoot, nil
		}
		r = DefaultUnservedArtifactRoot
	}
	if schemeOf(r) != "" {
		return r, nil
	}
	abs, err := filepath.Abs(r)
	if err != nil {
		return "", fmt.Errorf("default_artifact_root %q: resolving path: %w", root, err)
	}
	return abs, nil
}

// SignedURLDownloads turns on redirects of large artifact downloads to V4
// signed URLs of a gs:// artifacts_destination (the signed_url_downloads
// sub-directive). A download of an artifact of at least MinSize bytes, by
// GET or HEAD and without conditional headers (If-None-Match, If-Range,
// ...), is answered 307 Temporary Redirect to a URL signed for the object
// itself, after authentication and authorization; smaller artifacts and
// conditional requests stream through the server as before. This covers
// every artifact download route (the mlflow-artifacts proxy, /get-artifact,
// /model-versions/get-artifact, logged-model and trace artifacts).
type SignedURLDownloads struct {
	// MinSize is the smallest artifact, in bytes, that is redirected.
	// Default 32 MiB.
	MinSize int64 `json:"min_size,omitempty"`

	// Expiry is how long each signed URL stays valid: at least 1s, at
	// most 7 days (the V4 limit). Default 15m.
	Expiry caddy.Duration `json:"expiry,omitempty"`

	// GoogleAccessID is the service account email URLs are signed as.
	// With PrivateKeyFile it names the key's account (a service-account
	// JSON key names its own); alone, URLs are signed by IAM SignBlob as
	// this account with the client's credentials. Empty means the
	// account of Application Default Credentials (a service-account key,
	// or the GCE metadata server's account, signing through IAM).
	GoogleAccessID string `json:"google_access_id,omitempty"`

	// PrivateKeyFile is a file holding the signing key: a service-account
	// JSON key file, or an RSA private key in PEM form (then
	// GoogleAccessID is required). Empty signs with the client's
	// credentials, as GoogleAccessID describes.
	PrivateKeyFile string `json:"private_key_file,omitempty"`
}

// check reports the errors of the setting that need no I/O. The setting
// needs the artifact proxy and a gs:// artifacts_destination: only GCS
// objects can be signed for.
func (s *SignedURLDownloads) check(serveArtifacts bool, dest string) error {
	if s == nil {
		return nil
	}
	if !serveArtifacts {
		return errors.New("signed_url_downloads needs serve_artifacts: it redirects downloads of the artifact proxy")
	}
	if schemeOf(strings.TrimSpace(dest)) != "gs" {
		if dest == "" {
			dest = DefaultArtifactsDestination
		}
		return fmt.Errorf("signed_url_downloads needs a gs:// artifacts_destination; artifacts in %q are on local disk, which cannot sign URLs", dest)
	}
	if s.MinSize < 0 {
		return fmt.Errorf("signed_url_downloads: min_size must not be negative, got %d", s.MinSize)
	}
	if e := time.Duration(s.Expiry); e != 0 && (e < time.Second || e > artifact.MaxSignedExpiry) {
		return fmt.Errorf("signed_url_downloads: expiry %s must be between 1s and 7 days (168h), the V4 signed URL limit", e)
	}
	return nil
}
