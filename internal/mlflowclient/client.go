package mlflowclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client calls one MLflow tracking server. It is safe for concurrent use.
type Client struct {
	cfg   Config
	base  *url.URL // the tracking URI without userinfo, trailing slash cut
	hc    *http.Client
	auth  string // the Authorization header value, or ""
	sleep func(context.Context, time.Duration) error
}

// APIError is a failed call: the HTTP status and, when the server sent
// MLflow's error JSON, its error_code and message.
type APIError struct {
	// Method and Endpoint name the call (no query, no credentials).
	Method, Endpoint string
	// StatusCode is the HTTP status.
	StatusCode int
	// ErrorCode and Message are MLflow's {error_code, message}; for a body
	// that is not MLflow's JSON, ErrorCode is "" and Message holds the
	// start of the body.
	ErrorCode, Message string
}

func (e *APIError) Error() string {
	if e.ErrorCode != "" {
		return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Endpoint, e.StatusCode, e.ErrorCode, e.Message)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Endpoint, e.StatusCode, e.Message)
}

// IsNotFound reports whether err is a 404 or MLflow's
// RESOURCE_DOES_NOT_EXIST (the object, or the endpoint, is missing).
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.StatusCode == http.StatusNotFound || e.ErrorCode == "RESOURCE_DOES_NOT_EXIST")
}

// IsEndpointMissing reports whether err says the server does not serve
// the endpoint at all: a 404 without MLflow's RESOURCE_DOES_NOT_EXIST
// (Flask's HTML page on MLflow 2.x, ENDPOINT_NOT_FOUND elsewhere), or 501.
func IsEndpointMissing(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	if e.StatusCode == http.StatusNotImplemented || e.ErrorCode == "ENDPOINT_NOT_FOUND" {
		return true
	}
	return e.StatusCode == http.StatusNotFound && e.ErrorCode != "RESOURCE_DOES_NOT_EXIST"
}

// IsAlreadyExists reports whether err is MLflow's RESOURCE_ALREADY_EXISTS.
func IsAlreadyExists(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.ErrorCode == "RESOURCE_ALREADY_EXISTS"
}

// New returns a client for cfg. It reads the certificate files now, so a
// bad path fails here rather than at the first call.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.TrackingURI)
	if err != nil {
		return nil, fmt.Errorf("the tracking URI: %w", err)
	}
	c := &Client{cfg: cfg, sleep: sleepCtx}
	// requests turns a URL's userinfo into Basic authentication that
	// replaces the Authorization header MLflow set; so does the client.
	var urlAuth string
	if u.User != nil {
		p, _ := u.User.Password()
		if u.User.Username() != "" || p != "" {
			urlAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+p))
		}
		u.User = nil
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""
	c.base = u
	switch {
	case cfg.Username != "" && cfg.Password != "":
		c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password))
	case cfg.Token != "":
		c.auth = "Bearer " + cfg.Token
	}
	if urlAuth != "" {
		c.auth = urlAuth
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.InsecureTLS {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // MLFLOW_TRACKING_INSECURE_TLS asks for it
	}
	if cfg.ServerCertPath != "" {
		data, err := os.ReadFile(cfg.ServerCertPath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvServerCertPath, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", EnvServerCertPath, cfg.ServerCertPath)
		}
		tlsCfg.RootCAs = pool
	}
	if cfg.ClientCertPath != "" {
		data, err := os.ReadFile(cfg.ClientCertPath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvClientCertPath, err)
		}
		cert, err := tls.X509KeyPair(data, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %s must hold the client certificate and its private key in PEM: %w", EnvClientCertPath, cfg.ClientCertPath, err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	c.hc = &http.Client{Transport: tr}
	if cfg.NoRedirects {
		c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c, nil
}

// NewFromEnv is New(ConfigFromEnv(trackingURI, lookup)).
func NewFromEnv(trackingURI string, lookup LookupFunc) (*Client, error) {
	cfg, err := ConfigFromEnv(trackingURI, lookup)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// Config is the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// BaseURL is the tracking URI without credentials or a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff is urllib3's Retry.get_backoff_time after failures consecutive
// failures: nothing before the first retry, then factor·2^(n-1) plus a
// random jitter, capped at 120 s.
func (c *Client) backoff(failures int) time.Duration {
	if failures <= 1 {
		return 0
	}
	s := c.cfg.BackoffFactor * math.Pow(2, float64(failures-1))
	if c.cfg.BackoffJitter > 0 {
		s += rand.Float64() * c.cfg.BackoffJitter
	}
	d := time.Duration(s * float64(time.Second))
	if d > maxBackoff || d < 0 {
		d = maxBackoff
	}
	return d
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) on the
// statuses urllib3 honours it for (413, 429, 503).
func retryAfter(resp *http.Response) (time.Duration, bool) {
	switch resp.StatusCode {
	case 413, 429, 503:
	default:
		return 0, false
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 {
			n = 0
		}
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// request is one call: the method, the endpoint path (from the tracking
// URI's root, e.g. /api/2.0/mlflow/runs/get), its query, and a body.
type request struct {
	method   string
	endpoint string // already escaped
	query    url.Values
	// body, when set, opens the body for each attempt; size is its length
	// (-1: unknown, sent chunked).
	body        func() (io.Reader, error)
	size        int64
	contentType string
	// once marks a body that cannot be sent twice: no retry once it has
	// been read.
	once bool
}

// send performs r with MLflow's retry policy and returns the first
// response that is not retried (any status). The caller closes its body.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	u := *c.base
	u.Path = c.base.Path + r.endpoint
	if strings.Contains(r.endpoint, "%") {
		raw := c.base.EscapedPath() + r.endpoint
		if p, err := url.PathUnescape(raw); err == nil {
			u.Path, u.RawPath = p, raw
		}
	}
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	target := u.String()
	failures := 0
	for {
		var body io.Reader
		if r.body != nil {
			b, err := r.body()
			if err != nil {
				return nil, err
			}
			body = b
		}
		req, err := http.NewRequestWithContext(ctx, r.method, target, body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, r.endpoint, err)
		}
		if r.body != nil {
			req.ContentLength = r.size
			if r.size == 0 {
				req.Body = http.NoBody
			}
			if r.contentType != "" {
				req.Header.Set("Content-Type", r.contentType)
			}
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		ua := c.cfg.UserAgent
		if ua == "" {
			ua = "caddy-mlflow"
		}
		req.Header.Set("User-Agent", ua)
		resp, err := c.hc.Do(req)
		canRetry := failures < c.cfg.MaxRetries && !r.once
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !canRetry || permanent(err) {
				return nil, fmt.Errorf("API request to %s %s failed: %w", r.method, redactURI(target), stripURL(err))
			}
			failures++
			if err := c.sleep(ctx, c.backoff(failures)); err != nil {
				return nil, err
			}
			continue
		}
		if !RetryStatuses[resp.StatusCode] || !canRetry {
			return resp, nil
		}
		wait, ok := time.Duration(0), false
		if c.cfg.RespectRetryAfter {
			wait, ok = retryAfter(resp)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		failures++
		if !ok {
			wait = c.backoff(failures)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// permanent reports transport errors that a retry cannot fix: the
// server's certificate does not verify, or the URL is malformed. (urllib3
// retries these too, for up to a minute with the defaults; failing at
// once says the same thing sooner.)
func permanent(err error) bool {
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var cerr x509.CertificateInvalidError
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr)
}

// stripURL keeps a *url.Error's cause (its URL is already in the message).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeError turns a non-2xx response into an *APIError.
func decodeError(method, endpoint string, resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &APIError{Method: method, Endpoint: endpoint, StatusCode: resp.StatusCode}
	var body struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(data, &body) == nil && (body.ErrorCode != "" || body.Message != "") {
		e.ErrorCode, e.Message = body.ErrorCode, body.Message
		return e
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	e.Message = msg
	return e
}

// call sends a JSON request (GET: query; others: JSON body) and decodes
// the JSON answer into out (nil: discard).
func (c *Client) call(ctx context.Context, method, endpoint string, query url.Values, in, out any) error {
	r := request{method: method, endpoint: endpoint, query: query}
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encoding the request: %w", method, endpoint, err)
		}
		r.body = func() (io.Reader, error) { return bytes.NewReader(data), nil }
		r.size = int64(len(data))
		r.contentType = "application/json"
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(method, endpoint, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the response: %w", method, endpoint, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding the response: %w", method, endpoint, err)
	}
	return nil
}

// get is a GET call.
func (c *Client) get(ctx context.Context, endpoint string, q url.Values, out any) error {
	return c.call(ctx, http.MethodGet, endpoint, q, nil, out)
}

// post is a POST call with a JSON body.
func (c *Client) post(ctx context.Context, endpoint string, in, out any) error {
	return c.call(ctx, http.MethodPost, endpoint, nil, in, out)
}

// Call sends one JSON request to any endpoint (a path from the tracking
// URI's root such as /api/2.0/mlflow/runs/get); GET sends query, other
// methods send in as JSON. out receives the decoded answer (nil:
// discarded). For endpoints without a typed helper.
func (c *Client) Call(ctx context.Context, method, endpoint string, query url.Values, in, out any) error {
	return c.call(ctx, method, endpoint, query, in, out)
}
