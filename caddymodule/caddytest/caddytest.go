// Package caddytest runs a real, in-process Caddy with the mlflow handler
// for tests in any package of this module:
//
//	srv := caddytest.Start(t, caddytest.Options{})
//	resp, err := http.Get(srv.URL + "/health")
//
// Start writes a Caddyfile into t.TempDir() (a fresh bbolt file and
// artifacts directory), picks a free 127.0.0.1 port, loads the config with
// the admin endpoint off, waits for /health, and stops Caddy when the test
// ends. Options.Backend = BackendPostgres stores tracking data in a fresh
// PostgreSQL database instead (internal/pgtest: skipped without
// MLFLOW_TEST_POSTGRES_URI, failed under CI=true).
//
// Caddy runs one config per process. A Server is therefore process-global:
// do not call Start from parallel tests (t.Parallel) of the same package,
// and stop one Server before starting another. Start fails the test if a
// Server is already running. Tests in different packages run in different
// processes and do not interfere.
package caddytest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp"         // the http app
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"       // storage file_system

	_ "github.com/caddy-mlflow/caddy-mlflow/caddymodule" // the mlflow handler
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

// Backends of Options.Backend.
const (
	// BackendBolt stores tracking data in a fresh bbolt file in the
	// server's Dir (the default).
	BackendBolt = "bbolt"
	// BackendPostgres stores tracking data in a fresh PostgreSQL database
	// made by pgtest.NewDatabase (and dropped when the test ends).
	BackendPostgres = "postgres"

	// EnvBackend names the environment variable that sets the backend of
	// servers whose Options leave Backend empty: MLFLOW_TEST_BACKEND=postgres
	// runs a package's caddytest servers on PostgreSQL (tests that look at
	// the bbolt file itself then fail).
	EnvBackend = "MLFLOW_TEST_BACKEND"
)

// Options configures a test server.
type Options struct {
	// Directives are extra lines inside the mlflow block, such as
	// "serve_artifacts off" or "max_upload_size 1MiB". Start adds
	// backend_store_uri and artifacts_destination pointing into the
	// server's Dir unless a directive sets them; it leaves
	// backend_store_uri out when a directive turns artifacts_only on.
	Directives []string

	// Site are extra lines in the site block, before the mlflow directive
	// (the directive order decides where they run). Only modules linked
	// into the test binary can be used; this package links the http app
	// and the mlflow handler.
	Site []string

	// LogLevel is Caddy's log level (DEBUG, INFO, WARN, ERROR). Default
	// ERROR.
	LogLevel string

	// HealthTimeout bounds the wait for /health after a load. Default 15s.
	HealthTimeout time.Duration

	// TLS, when set, serves the site over HTTPS (https://localhost:PORT,
	// listening on 127.0.0.1; automatic redirects off) and is the client configuration of
	// Client() and the health check. The Site lines must then configure
	// the certificate (a tls directive).
	TLS *tls.Config

	// Global are extra lines in the global options block, such as a named
	// log (log audit { ... }).
	Global []string

	// Admin turns Caddy's admin endpoint on, on a free 127.0.0.1 port
	// (Server.AdminURL), for tests of its /metrics or /config. Default
	// off.
	Admin bool
	// Backend is the tracking store Start sets backend_store_uri to
	// (unless a directive sets it): BackendBolt or BackendPostgres; ""
	// takes $MLFLOW_TEST_BACKEND, else BackendBolt. It is chosen once, by
	// Start; Reload and Restart keep the same store.
	Backend string

	// LogFile, when set, is the file Caddy's default log is written to
	// (JSON lines) instead of stderr, for tests that read the logs.
	LogFile string
}

// Server is a running in-process Caddy serving the mlflow handler.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT, with no
	// trailing slash: the MLFLOW_TRACKING_URI for clients.
	URL string
	// Port is the TCP port the server listens on.
	Port int
	// Dir is the server's own temporary directory.
	Dir string
	// BoltPath is the absolute path of the bbolt file (unused with
	// BackendPostgres).
	BoltPath string
	// BackendURI is the backend_store_uri Start chose: a bbolt:// URI of
	// BoltPath, or the PostgreSQL database's URI.
	BackendURI string
	// ArtifactsDir is the absolute path of the artifacts directory.
	ArtifactsDir string
	// Caddyfile is the Caddyfile last loaded.
	Caddyfile string
	// Config is the Caddy JSON config last loaded (the adapted Caddyfile).
	Config []byte
	// AdminURL is the admin endpoint's base URL (http://127.0.0.1:PORT)
	// when Options.Admin is set, chosen at the first load that needs it
	// and kept across reloads; "" otherwise.
	AdminURL string

	opts      Options
	client    *http.Client
	mu        sync.Mutex
	running   bool
	storage   string
	transport *http.Transport
}

// active is the Server running in this process, if any.
var (
	activeMu sync.Mutex
	active   *Server
)

// Start starts Caddy with the mlflow handler on a free 127.0.0.1 port and
// stops it when t ends. It fails t if Caddy cannot start.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := TryStart(t, opts)
	if err != nil {
		t.Fatalf("caddytest: starting caddy: %v\nCaddyfile:\n%s", err, s.Caddyfile)
	}
	return s
}

// TryStart is Start that returns the error of loading the config (a
// provisioning failure) instead of failing t; the Server is returned
// either way, for its Caddyfile and Dir. Other failures still fail t.
func TryStart(t testing.TB, opts Options) (*Server, error) {
	t.Helper()
	dir := t.TempDir()
	s := &Server{
		Dir:          dir,
		BoltPath:     filepath.Join(dir, "mlflow.bolt"),
		ArtifactsDir: filepath.Join(dir, "mlartifacts"),
		storage:      filepath.Join(dir, "caddy-storage"),
		opts:         opts,
	}
	backend := opts.Backend
	if backend == "" {
		backend = os.Getenv(EnvBackend)
	}
	switch backend {
	case "", BackendBolt:
		s.BackendURI = "bbolt://" + filepath.ToSlash(s.BoltPath)
	case BackendPostgres:
		s.BackendURI = pgtest.NewDatabase(t)
	default:
		t.Fatalf("caddytest: unknown Backend %q (want %q or %q)", backend, BackendBolt, BackendPostgres)
	}
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.transport.TLSClientConfig = opts.TLS
	s.client = &http.Client{Transport: s.transport, Timeout: 2 * time.Minute}

	activeMu.Lock()
	if active != nil {
		activeMu.Unlock()
		t.Fatalf("caddytest: a server is already running in this process (%s); Start must not be used by parallel tests of one package", active.URL)
	}
	active = s
	activeMu.Unlock()
	t.Cleanup(func() {
		s.Stop()
		activeMu.Lock()
		if active == s {
			active = nil
		}
		activeMu.Unlock()
	})

	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.Port, err = freePort(); err != nil {
			t.Fatalf("caddytest: %v", err)
		}
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.Port)
		if opts.TLS != nil {
			// A name, so that the client sends SNI matching Host (Caddy
			// answers 421 otherwise when client_auth is on).
			s.URL = fmt.Sprintf("https://localhost:%d", s.Port)
		}
		if err = s.load(opts); err == nil || !isAddrInUse(err) {
			break
		}
	}
	return s, err
}

// Reload loads a new config into the running Caddy, reusing the same port,
// bbolt file and artifacts directory; opts replaces the Options given to
// Start. Caddy provisions the new config before it cleans the old one up,
// which is what reuses the pooled bbolt handle. It fails t on error.
func (s *Server) Reload(t testing.TB, opts Options) {
	t.Helper()
	if err := s.TryReload(opts); err != nil {
		t.Fatalf("caddytest: reload: %v\nCaddyfile:\n%s", err, s.Caddyfile)
	}
}

// TryReload is Reload that returns the error instead of failing the test.
// When loading fails, Caddy keeps running the previous config.
func (s *Server) TryReload(opts Options) error {
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if !running {
		return errors.New("caddytest: server is not running")
	}
	return s.load(opts)
}

// Restart stops Caddy (closing the bbolt file) and starts it again with
// opts on the same port, bbolt file and artifacts directory. While another
// process holds the port (it was free between Stop and load), it tries
// again for up to restartPatience. It fails t on error.
func (s *Server) Restart(t testing.TB, opts Options) {
	t.Helper()
	s.Stop()
	deadline := time.Now().Add(restartPatience)
	for {
		err := s.load(opts)
		if err == nil {
			return
		}
		if !isAddrInUse(err) || time.Now().After(deadline) {
			t.Fatalf("caddytest: restart: %v\nCaddyfile:\n%s", err, s.Caddyfile)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restartPatience bounds how long Restart waits for its port to be free.
const restartPatience = 20 * time.Second

// Stop stops Caddy. It is safe to call more than once; Start registers it
// with t.Cleanup.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	s.running = false
	if err := caddy.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "caddytest: stopping caddy: %v\n", err)
	}
	s.transport.CloseIdleConnections()
}

// load renders opts, loads the config and waits for /health.
func (s *Server) load(opts Options) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts = opts
	if opts.Admin && s.AdminURL == "" {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.AdminURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	s.Caddyfile = s.render(opts)
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(s.Caddyfile), map[string]any{"filename": filepath.Join(s.Dir, "Caddyfile")})
	if err != nil {
		return fmt.Errorf("adapting the Caddyfile: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "caddytest: Caddyfile warning: %s\n", w.String())
	}
	s.Config = cfg
	if err := os.WriteFile(filepath.Join(s.Dir, "Caddyfile"), []byte(s.Caddyfile), 0o600); err != nil {
		return fmt.Errorf("writing the Caddyfile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "caddy.json"), cfg, 0o600); err != nil {
		return fmt.Errorf("writing the JSON config: %w", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("loading the config: %w", err)
	}
	s.running = true
	timeout := opts.HealthTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	return s.waitHealthy(timeout)
}

// render builds the Caddyfile for opts.
func (s *Server) render(opts Options) string {
	level := opts.LogLevel
	if level == "" {
		level = "ERROR"
	}
	sets := func(name string) bool {
		for _, d := range opts.Directives {
			f := strings.Fields(d)
			if len(f) > 0 && f[0] == name {
				return len(f) == 1 || (f[1] != "off" && f[1] != "false" && f[1] != "no")
			}
		}
		return false
	}
	var b strings.Builder
	admin := "off"
	if opts.Admin {
		admin = strings.TrimPrefix(s.AdminURL, "http://")
	}
	fmt.Fprintf(&b, "{\n\tadmin %s\n\tpersist_config off\n\tgrace_period 2s\n", admin)
	fmt.Fprintf(&b, "\tstorage file_system %s\n", quote(s.storage))
	if opts.TLS != nil {
		b.WriteString("\tauto_https disable_redirects\n")
	}
	for _, l := range opts.Global {
		fmt.Fprintf(&b, "\t%s\n", l)
	}
	b.WriteString("\tlog {\n")
	if opts.LogFile != "" {
		fmt.Fprintf(&b, "\t\toutput file %s\n", quote(opts.LogFile))
	}
	fmt.Fprintf(&b, "\t\tlevel %s\n\t}\n}\n\n", level)
	// No host in the site address (so any Host header matches, localhost
	// included), but listening on the loopback address only.
	fmt.Fprintf(&b, "%s://:%d {\n\tbind 127.0.0.1\n", scheme(opts), s.Port)
	for _, l := range opts.Site {
		fmt.Fprintf(&b, "\t%s\n", l)
	}
	b.WriteString("\tmlflow {\n")
	if !sets("backend_store_uri") && !sets("artifacts_only") {
		fmt.Fprintf(&b, "\t\tbackend_store_uri %s\n", quote(s.BackendURI))
	}
	if !sets("artifacts_destination") {
		fmt.Fprintf(&b, "\t\tartifacts_destination %s\n", quote(s.ArtifactsDir))
	}
	for _, d := range opts.Directives {
		fmt.Fprintf(&b, "\t\t%s\n", d)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// waitHealthy polls /health until it answers 200 or timeout passes.
func (s *Server) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Transport: s.transport, Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(s.URL + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /health: %s", resp.Status)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server not healthy after %s: %w", timeout, last)
}

// Client returns an HTTP client for the server; its idle connections are
// closed when the server stops.
func (s *Server) Client() *http.Client { return s.client }

// Do sends a request to the server: path is joined to URL, and body, when
// not nil, is sent as is when it is []byte, string or io.Reader, and as
// JSON (with Content-Type application/json) otherwise. It returns the
// response, with its body read into the second result. It fails t on a
// transport error.
func (s *Server) Do(t testing.TB, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	case io.Reader:
		r = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("caddytest: encoding request body: %v", err)
		}
		r = bytes.NewReader(data)
		contentType = "application/json"
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatalf("caddytest: %s %s: %v", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("caddytest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("caddytest: %s %s: reading body: %v", method, path, err)
	}
	return resp, data
}

// JSON sends req (as Do does) and decodes a JSON response into out (when
// out is not nil and the body is not empty). It returns the status code and
// fails t if the response is not JSON.
func (s *Server) JSON(t testing.TB, method, path string, req, out any) int {
	t.Helper()
	resp, data := s.Do(t, method, path, req)
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("caddytest: %s %s: %s: decoding %q: %v", method, path, resp.Status, data, err)
		}
	}
	return resp.StatusCode
}

// scheme is https with Options.TLS, else http.
func scheme(opts Options) string {
	if opts.TLS != nil {
		return "https"
	}
	return "http"
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// isAddrInUse reports whether err says the port was taken.
func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// quote renders s as a double-quoted Caddyfile token.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
