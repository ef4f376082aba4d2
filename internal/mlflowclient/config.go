// Package mlflowclient is a client of MLflow's tracking REST API that
// behaves like the MLflow Python client: the same environment variables
// (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN/INSECURE_TLS/SERVER_CERT_PATH/
// CLIENT_CERT_PATH, MLFLOW_HTTP_REQUEST_*), the same precedence, the same
// retry policy (MLflow's rest_utils.http_request over urllib3's Retry),
// and only the endpoints a real MLflow server serves, so that `caddy
// mlflow import --from http(s)://` and `caddy mlflow export --to` work
// against MLflow 2.x and 3.x as well as against caddy-mlflow.
//
// The client never logs; error messages name the endpoint, never a
// credential (a tracking URI's userinfo is redacted). Artifact downloads
// and uploads are streams.
package mlflowclient

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by ConfigFromEnv (MLflow's
// mlflow/environment_variables.py).
const (
	EnvTrackingURI       = "MLFLOW_TRACKING_URI"
	EnvUsername          = "MLFLOW_TRACKING_USERNAME"
	EnvPassword          = "MLFLOW_TRACKING_PASSWORD"
	EnvToken             = "MLFLOW_TRACKING_TOKEN"
	EnvInsecureTLS       = "MLFLOW_TRACKING_INSECURE_TLS"
	EnvServerCertPath    = "MLFLOW_TRACKING_SERVER_CERT_PATH"
	EnvClientCertPath    = "MLFLOW_TRACKING_CLIENT_CERT_PATH"
	EnvMaxRetries        = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
	EnvBackoffFactor     = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
	EnvBackoffJitter     = "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"
	EnvTimeout           = "MLFLOW_HTTP_REQUEST_TIMEOUT"
	EnvRespectRetryAfter = "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER"
	EnvAllowRedirects    = "MLFLOW_ALLOW_HTTP_REDIRECTS"
)

// Defaults of MLflow 2.12 (environment_variables.py) and the limits
// rest_utils._validate_max_retries / _validate_backoff_factor enforce.
const (
	DefaultMaxRetries    = 5
	DefaultBackoffFactor = 2
	DefaultBackoffJitter = 1.0
	DefaultTimeout       = 120 * time.Second
	// MaxRetriesLimit is _MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT's default.
	MaxRetriesLimit = 10
	// MaxBackoffFactorLimit is _MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT's
	// default.
	MaxBackoffFactorLimit = 120
	// maxBackoff is urllib3's Retry.DEFAULT_BACKOFF_MAX: no single wait is
	// longer.
	maxBackoff = 120 * time.Second
)

// Config is how a Client reaches one MLflow server.
type Config struct {
	// TrackingURI is the server's base URL (http:// or https://, with an
	// optional path prefix).
	TrackingURI string
	// Username and Password send Basic authentication when both are set;
	// it wins over Token, as in MLflow's http_request.
	Username, Password string
	// Token is sent as "Authorization: Bearer <token>" when Basic is not.
	Token string
	// InsecureTLS skips verification of the server's certificate
	// (MLFLOW_TRACKING_INSECURE_TLS); it excludes ServerCertPath.
	InsecureTLS bool
	// ServerCertPath is a PEM CA bundle that replaces the system roots for
	// verifying the server (requests' verify=<path>).
	ServerCertPath string
	// ClientCertPath is one PEM file holding the client certificate (and
	// its chain) and its private key (requests' cert=<path>).
	ClientCertPath string
	// MaxRetries is how many times a request is retried after a transient
	// failure (a connection error or a status in RetryStatuses).
	MaxRetries int
	// BackoffFactor and BackoffJitter shape the waits between retries:
	// none before the first retry, then factor·2^(n-1) seconds plus up to
	// jitter seconds, at most 120 s (urllib3's Retry).
	BackoffFactor float64
	BackoffJitter float64
	// Timeout bounds connecting and waiting for a response's headers
	// (requests' timeout=); streaming a body has no total deadline.
	Timeout time.Duration
	// RespectRetryAfter waits as long as a 413, 429 or 503's Retry-After
	// says instead of the backoff.
	RespectRetryAfter bool
	// NoRedirects stops following HTTP redirects
	// (MLFLOW_ALLOW_HTTP_REDIRECTS=false).
	NoRedirects bool
	// UserAgent is sent with every request ("caddy-mlflow" when empty).
	UserAgent string
}

// RetryStatuses are the statuses MLflow retries
// (request_utils._TRANSIENT_FAILURE_RESPONSE_CODES).
var RetryStatuses = map[int]bool{408: true, 429: true, 500: true, 502: true, 503: true, 504: true}

// LookupFunc reads one environment variable, as os.LookupEnv does.
type LookupFunc func(name string) (string, bool)

// ConfigFromEnv builds the Config the MLflow Python client would use for
// trackingURI ("" takes MLFLOW_TRACKING_URI) from the variables lookup
// returns (os.LookupEnv in production). Like MLflow's
// credentials.read_mlflow_creds, a username or password missing from the
// environment is taken from the [mlflow] section of
// $HOME/.mlflow/credentials. A malformed number or boolean is an error
// naming the variable, and MLFLOW_TRACKING_INSECURE_TLS together with
// MLFLOW_TRACKING_SERVER_CERT_PATH is an error, as in MLflow's
// MlflowHostCreds. Empty path variables count as unset.
func ConfigFromEnv(trackingURI string, lookup LookupFunc) (Config, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	if trackingURI == "" {
		trackingURI = get(EnvTrackingURI)
	}
	cfg := Config{
		TrackingURI:    trackingURI,
		Username:       get(EnvUsername),
		Password:       get(EnvPassword),
		Token:          get(EnvToken),
		ServerCertPath: get(EnvServerCertPath),
		ClientCertPath: get(EnvClientCertPath),
	}
	if cfg.Username == "" || cfg.Password == "" {
		if home := get("HOME"); home != "" {
			u, p, err := readCredentialsFile(filepath.Join(home, ".mlflow", "credentials"))
			if err != nil {
				return Config{}, err
			}
			if cfg.Username == "" {
				cfg.Username = u
			}
			if cfg.Password == "" {
				cfg.Password = p
			}
		}
	}
	var err error
	if cfg.InsecureTLS, err = envBool(lookup, EnvInsecureTLS, false); err != nil {
		return Config{}, err
	}
	if cfg.RespectRetryAfter, err = envBool(lookup, EnvRespectRetryAfter, true); err != nil {
		return Config{}, err
	}
	// request_utils reads MLFLOW_ALLOW_HTTP_REDIRECTS by hand: anything but
	// "true"/"1" (case-insensitive) turns redirects off.
	if v, ok := lookup(EnvAllowRedirects); ok {
		l := strings.ToLower(v)
		cfg.NoRedirects = l != "true" && l != "1"
	}
	retries, err := envInt(lookup, EnvMaxRetries, DefaultMaxRetries)
	if err != nil {
		return Config{}, err
	}
	cfg.MaxRetries = retries
	factor, err := envInt(lookup, EnvBackoffFactor, DefaultBackoffFactor)
	if err != nil {
		return Config{}, err
	}
	cfg.BackoffFactor = float64(factor)
	if cfg.BackoffJitter, err = envFloat(lookup, EnvBackoffJitter, DefaultBackoffJitter); err != nil {
		return Config{}, err
	}
	timeout, err := envInt(lookup, EnvTimeout, int(DefaultTimeout/time.Second))
	if err != nil {
		return Config{}, err
	}
	cfg.Timeout = time.Duration(timeout) * time.Second
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks what MLflow checks before a request: a tracking URI,
// not both InsecureTLS and ServerCertPath, retries within [0, 10] and a
// backoff factor within [0, 120].
func (c Config) Validate() error {
	if c.TrackingURI == "" {
		return errors.New("no tracking URI (set " + EnvTrackingURI + " or pass an http(s):// URL)")
	}
	u, err := url.Parse(c.TrackingURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("the tracking URI %q is not an http:// or https:// URL", redactURI(c.TrackingURI))
	}
	if c.InsecureTLS && c.ServerCertPath != "" {
		return fmt.Errorf("%s and %s are both set: only one of these environment variables may be set", EnvInsecureTLS, EnvServerCertPath)
	}
	if c.MaxRetries < 0 || c.MaxRetries > MaxRetriesLimit {
		return fmt.Errorf("%s=%d: must be between 0 and %d", EnvMaxRetries, c.MaxRetries, MaxRetriesLimit)
	}
	if c.BackoffFactor < 0 || c.BackoffFactor > MaxBackoffFactorLimit {
		return fmt.Errorf("%s=%g: must be between 0 and %d", EnvBackoffFactor, c.BackoffFactor, MaxBackoffFactorLimit)
	}
	return nil
}

// envBool reads an MLflow boolean variable: "true", "false", "1" or "0",
// case-insensitive; anything else (even empty) is an error.
func envBool(lookup LookupFunc, name string, def bool) (bool, error) {
	v, ok := lookup(name)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s value must be one of ['true', 'false', '1', '0'] (case-insensitive), but got %q", name, v)
}

// envInt reads an MLflow int variable (Python's int(): surrounding blanks
// allowed, no fractions).
func envInt(lookup LookupFunc, name string, def int) (int, error) {
	v, ok := lookup(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer", name, v)
	}
	return n, nil
}

func envFloat(lookup LookupFunc, name string, def float64) (float64, error) {
	v, ok := lookup(name)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a number", name, v)
	}
	return f, nil
}

// readCredentialsFile reads mlflow_tracking_username and
// mlflow_tracking_password from the [mlflow] section of an INI file (a
// missing file is no credentials).
func readCredentialsFile(path string) (user, pass string, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if section != "mlflow" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			k, v, ok = strings.Cut(line, ":")
		}
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "mlflow_tracking_username":
			user = strings.TrimSpace(v)
		case "mlflow_tracking_password":
			pass = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("reading %s: %w", path, err)
	}
	return user, pass, nil
}

// redactURI hides a URL's password (and a token-like userinfo).
func redactURI(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable URL>"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	return u.String()
}
