// Package e2e holds end-to-end tests that build ./cmd/caddy, start it as a
// child process with an mlflow Caddyfile and drive it over HTTP: a
// third-party npm MLflow client (npm_test.go) and a kill -9 durability test
// (crash_test.go). bench.sh in this directory runs the load generator.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	caddyBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// repoRoot is the module root; go test runs with the package directory as
// the working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	return root
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// caddyBinary builds ./cmd/caddy once per test binary into a temporary
// directory and returns the path of the executable. $CADDY_MLFLOW_E2E_BIN,
// when set, names a binary built from this checkout already (.ci/run sets
// it to the one it built with the same plain go build): linking the whole
// server again is most of this package's first test on a busy CI machine.
func caddyBinary(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		if bin := os.Getenv("CADDY_MLFLOW_E2E_BIN"); bin != "" {
			if _, buildErr = os.Stat(bin); buildErr == nil {
				caddyBin = bin
			}
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "caddy-mlflow-e2e-")
		if buildErr != nil {
			return
		}
		caddyBin = filepath.Join(buildDir, "caddy")
		cmd := exec.Command(goTool(), "build", "-o", caddyBin, "./cmd/caddy")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caddyBin
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for concurrent writes by os/exec's
// copying goroutines and reads by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the log holds want at least n times and reports
// whether it did within timeout. The process writes its log through a
// pipe that a goroutine copies here, so a line can arrive after the
// effect it reports is visible (a reloaded config already answering).
func (s *syncBuffer) waitFor(want string, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for strings.Count(s.String(), want) < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// server is one caddy child process serving the mlflow module on a data
// directory. Restarting on the same dir and port reuses the same files.
type server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	URL  string
	// config, when set, is the Caddyfile to run instead of the default
	// single mlflow site on port.
	config string
	// healthClient, when set, is the client start polls /health with
	// (for a TLS site with its own CA).
	healthClient *http.Client
	// backend, when set, is the backend_store_uri of the default config
	// (e.g. a PostgreSQL URI) instead of the bolt file in dir.
	backend string
	// env is added to the process environment (e.g. the {$VAR}s a
	// Caddyfile reads).
	env []string

	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// newServer prepares (but does not start) a server whose bolt file and
// artifacts live in dir.
func newServer(t testing.TB, dir string, port int) *server {
	t.Helper()
	s := &server{
		t:    t,
		bin:  caddyBinary(t),
		dir:  dir,
		port: port,
		URL:  fmt.Sprintf("http://127.0.0.1:%d", port),
	}
	t.Cleanup(func() {
		if s.running() {
			s.kill()
		}
		if t.Failed() && s.logs != nil {
			t.Logf("caddy log (tail):\n%s", tail(s.logs.String(), 8000))
		}
	})
	return s
}

func (s *server) dbPath() string { return filepath.Join(s.dir, "mlflow.bolt") }

func (s *server) caddyfile() string {
	if s.config != "" {
		return s.config
	}
	backend := s.dbPath()
	if s.backend != "" {
		backend = s.backend
	}
	return fmt.Sprintf(`{
	admin off
	persist_config off
}

http://127.0.0.1:%d {
	mlflow {
		backend_store_uri %s
		artifacts_destination %s
		serve_artifacts on
	}
}
`, s.port, backend, filepath.Join(s.dir, "artifacts"))
}

// start launches caddy and waits until /health answers 200.
func (s *server) start() {
	s.t.Helper()
	s.launch()
	s.waitHealthy(30 * time.Second)
}

// launch starts the caddy process without waiting for it to be healthy.
func (s *server) launch() {
	t := s.t
	t.Helper()
	if s.running() {
		t.Fatal("server already running")
	}
	cfg := filepath.Join(s.dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(s.caddyfile()), 0o644); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(s.dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Dir = s.dir
	// Keep caddy's own storage (certificates, autosave) inside the test dir.
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
	)
	cmd.Env = append(cmd.Env, s.env...)
	if s.logs == nil {
		s.logs = &syncBuffer{}
	}
	fmt.Fprintf(s.logs, "----- start %s -----\n", time.Now().Format(time.RFC3339Nano))
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(s.done)
}

func (s *server) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *server) waitHealthy(timeout time.Duration) {
	t := s.t
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	if s.healthClient != nil {
		c = s.healthClient
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			t.Fatalf("caddy exited before becoming healthy (%v); log:\n%s", s.cmd.ProcessState, tail(s.logs.String(), 8000))
		default:
		}
		resp, err := c.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				c.CloseIdleConnections()
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("caddy not healthy at %s/health after %v (last: %s); log:\n%s", s.URL, timeout, last, tail(s.logs.String(), 8000))
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	if !s.running() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop asks caddy to shut down gracefully and falls back to SIGKILL.
func (s *server) stop() {
	if !s.running() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Logf("caddy did not stop within 10s of SIGTERM; killing")
		s.kill()
	}
}

// runCommand runs a command with a timeout and returns its combined output.
func runCommand(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return strings.TrimRight(string(out), "\n"), err
}
