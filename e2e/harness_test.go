// Package e2e holds end-to-end tests that build ./cmd/caddy, start it as a
// child process with an mlflow Caddyfile and drive it over HTTP: a
// third-party npm MLflow client (npm_test.go) and a kill -9 durability test
// (crash_test.go). bench.sh in this directory runs the load generator.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago;
// something else may take it before the caller binds it (server.start
// retries on another).
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

// Len is how many bytes were written so far.
func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// since returns what was written after the first off bytes.
func (s *syncBuffer) since(off int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b.Bytes()[off:])
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
//
// Ports: newServer with port 0 lets the harness pick the server's ports
// when it first launches. A port that was free when picked can be taken by
// another process before caddy binds it (CI runs many test packages at
// once), so when caddy exits saying an address is in use, start picks new
// ports and tries again (startAttempts times). Once the server has served,
// or when the caller fixed the port, a restart keeps its ports, waiting up
// to samePortWait for them to come free, and moves to new ports only when
// canMove says the test copes with a new URL.
type server struct {
	t   testing.TB
	bin string
	dir string
	// port is ports[0], the site start probes; URL is its base URL.
	port  int
	ports []int
	URL   string
	// nPorts is how many ports the harness picks (1 when zero); ports[1:]
	// are for the caller's config (an admin endpoint, a second site).
	nPorts int
	// fixed: the caller chose the port (newServer with a port); start
	// never moves the server to another.
	fixed bool
	// canMove: a restart whose ports stay taken for samePortWait may move
	// the server to new ports (the test reads URL/port after each start).
	canMove bool
	// samePortWait bounds how long a restart retries its own ports.
	samePortWait time.Duration
	// pickPort returns a port that was free a moment ago (freePort unless
	// a test hands the harness a taken one).
	pickPort func(testing.TB) int
	// prepare, when set, is called whenever the harness has chosen ports
	// (before the first launch and before a launch on new ports): it sets
	// config, env or URL for s.ports. URL is reset to
	// http://127.0.0.1:<port> before the call.
	prepare func(s *server)
	// served: the server has answered /health at its current ports.
	served bool
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
	// logFrom is the length of logs when the current process launched.
	logFrom int
	done    chan struct{}
}

const (
	// startAttempts bounds how many sets of new ports start tries.
	startAttempts = 5
	// startTimeout bounds one wait for a launched server to be healthy.
	startTimeout = 30 * time.Second
)

// newServer prepares (but does not start) a server whose bolt file and
// artifacts live in dir. With port 0 the harness picks the port(s) at the
// first launch (read s.port or s.URL after start, or call pick first).
func newServer(t testing.TB, dir string, port int) *server {
	t.Helper()
	s := &server{
		t:            t,
		bin:          caddyBinary(t),
		dir:          dir,
		samePortWait: 20 * time.Second,
		pickPort:     freePort,
	}
	if port != 0 {
		s.fixed = true
		s.ports = []int{port}
		s.port = port
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
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

// pick chooses new ports for the server (distinct from each other and from
// the ones it had) and calls prepare.
func (s *server) pick() {
	t := s.t
	t.Helper()
	if s.fixed {
		t.Fatalf("server on fixed port %d cannot pick another", s.port)
	}
	n := max(s.nPorts, 1)
	old := map[int]bool{}
	for _, p := range s.ports {
		old[p] = true
	}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			t.Fatalf("no %d distinct free ports after %d tries", n, tries)
		}
		p := s.pickPort(t)
		if !old[p] {
			old[p] = true
			ports = append(ports, p)
		}
	}
	s.ports, s.port = ports, ports[0]
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	s.served = false
	if s.prepare != nil {
		s.prepare(s)
	}
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

// start launches caddy and waits until it serves /health, retrying on other
// ports (or, for a restart, the same ones) when an address is taken.
func (s *server) start() {
	s.t.Helper()
	s.launch()
	s.waitHealthy(startTimeout)
}

// startOnce launches caddy and waits until it serves /health, failing the
// test at once if the port is taken (for a test whose point is that the
// port is free).
func (s *server) startOnce() {
	t := s.t
	t.Helper()
	s.launch()
	if err := s.waitReady(startTimeout); err != nil {
		t.Fatal(err)
	}
}

// launch starts the caddy process without waiting for it to be healthy,
// picking the ports first if it has none yet.
func (s *server) launch() {
	t := s.t
	t.Helper()
	if s.running() {
		t.Fatal("server already running")
	}
	if s.ports == nil {
		s.pick()
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
	s.logFrom = s.logs.Len()
	fmt.Fprintf(s.logs, "----- start %s on ports %v -----\n", time.Now().Format(time.RFC3339Nano), s.ports)
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

// startError is why a launched server did not become healthy.
type startError struct {
	// exited: the process ended before it was healthy.
	exited bool
	// inUse: it ended because an address it needed was taken.
	inUse bool
	msg   string
}

func (e *startError) Error() string { return e.msg }

// waitHealthy waits until the launched server is healthy. When it exits
// because an address is in use, it launches it again: on new ports if it
// never served there (or, after samePortWait on its own ports, if canMove
// allows), else on the same ports until samePortWait has passed. Anything
// else, or running out of attempts, fails the test with the log tail.
func (s *server) waitHealthy(timeout time.Duration) {
	t := s.t
	t.Helper()
	var sameSince time.Time
	moves := 0
	for {
		err := s.waitReady(timeout)
		if err == nil {
			return
		}
		if !err.inUse {
			t.Fatal(err)
		}
		switch {
		case !s.fixed && !s.served:
			// Never served here: the ports were only ever a guess.
			moves++
			if moves >= startAttempts {
				t.Fatalf("%v\n(gave up after %d sets of ports were taken)", err, moves)
			}
			t.Logf("ports %v taken before caddy bound them; picking new ones", s.ports)
			s.pick()
		default:
			// A restart (or a fixed port): the address must stay the same
			// unless the test copes with a move.
			if sameSince.IsZero() {
				sameSince = time.Now()
			}
			if time.Since(sameSince) >= s.samePortWait {
				if s.fixed || !s.canMove {
					t.Fatalf("%v\n(ports %v still taken after retrying for %v; this test needs the same address)", err, s.ports, s.samePortWait)
				}
				t.Logf("ports %v still taken after %v; moving to new ones", s.ports, s.samePortWait)
				sameSince = time.Time{}
				s.pick()
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		s.launch()
	}
}

// waitReady waits up to timeout for the launched process to log that it
// serves its configuration (all its listeners are bound) and answer 200 on
// /health. It returns early when the process exits, with the tail of what
// it wrote since the launch.
func (s *server) waitReady(timeout time.Duration) *startError {
	c := &http.Client{Timeout: time.Second}
	if s.healthClient != nil {
		c = s.healthClient
	}
	defer c.CloseIdleConnections()
	// A probe in flight ends when the process does.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func(done chan struct{}) {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}(s.done)
	deadline := time.Now().Add(timeout)
	last := "no \"serving initial configuration\" in the log yet"
	for {
		select {
		case <-s.done:
			out := s.logs.since(s.logFrom)
			return &startError{
				exited: true,
				inUse:  strings.Contains(out, "address already in use"),
				msg:    fmt.Sprintf("caddy exited before becoming healthy on ports %v (%v); log:\n%s", s.ports, s.cmd.ProcessState, tail(out, 8000)),
			}
		default:
		}
		if time.Now().After(deadline) {
			return &startError{msg: fmt.Sprintf("caddy not healthy at %s/health after %v (last: %s); log:\n%s",
				s.URL, timeout, last, tail(s.logs.since(s.logFrom), 8000))}
		}
		// Until caddy says it serves, an answer on the port may come from
		// whoever else holds it.
		if strings.Contains(s.logs.since(s.logFrom), "serving initial configuration") {
			last = s.probe(ctx, c)
			if last == "" {
				s.served = true
				return nil
			}
		}
		select {
		case <-s.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probe GETs /health once and returns "" on 200, else what it got.
func (s *server) probe(ctx context.Context, c *http.Client) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/health", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return ""
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
