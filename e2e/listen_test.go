package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listenSite is a Caddyfile serving mlflow on port, with the bbolt file in
// dir, optionally bound to one address and answering version on /version.
func listenSite(dir string, port int, bind, version string) string {
	bindLine := ""
	if bind != "" {
		bindLine = "\tbind " + bind + "\n"
	}
	return fmt.Sprintf(`{
	admin off
	persist_config off
}

http://:%d {
%s	mlflow {
		backend_store_uri %s
		artifacts_destination %s
		mlflow_version %s
	}
}
`, port, bindLine, filepath.Join(dir, "mlflow.bolt"), filepath.Join(dir, "artifacts"), version)
}

// startRefused runs caddy with s's config and expects it to exit with an
// error before serving; it returns the process output.
func (s *server) startRefused() string {
	t := s.t
	t.Helper()
	cfg := filepath.Join(s.dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(s.caddyfile()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(s.dir, "home"))
	cmd.WaitDelay = 5 * time.Second
	done := make(chan error, 1)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("second server exited 0; log:\n%s", tail(out.String(), 4000))
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		t.Fatalf("second server on the same address kept running; log:\n%s", tail(out.String(), 4000))
	}
	return out.String()
}

// getVersion answers GET /version of base.
func getVersion(t *testing.T, base string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// createExperiment creates an experiment on base and returns its id.
func createExperiment(t *testing.T, base, name string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post(base+"/api/2.0/mlflow/experiments/create", "application/json",
		strings.NewReader(fmt.Sprintf(`{"name":%q}`, name)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ExperimentID string `json:"experiment_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("create experiment: %d %v", resp.StatusCode, err)
	}
	return out.ExperimentID
}

// TestSecondServerOnSameAddressRefuses starts two caddy processes with
// different bbolt files on one port: the second must refuse to start
// (without the guard, SO_REUSEPORT lets both bind and the kernel splits
// clients between two stores). A reload of the first (SIGUSR1 with a
// changed config) must still succeed, and after the first is killed with
// SIGKILL the port is free for another server at once.
func TestSecondServerOnSameAddressRefuses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the listen guard needs Linux")
	}
	dirA, dirB := t.TempDir(), t.TempDir()

	a := newServer(t, dirA, 0)
	a.prepare = func(s *server) { s.config = listenSite(dirA, s.port, "", "3.6.0") }
	a.start()
	port := a.port
	createExperiment(t, a.URL, "on-a")

	b := newServer(t, dirB, port)
	b.config = listenSite(dirB, port, "", "3.6.0")
	out := b.startRefused()
	want := fmt.Sprintf("address already in use by another mlflow server (pid %d)", a.cmd.Process.Pid)
	if !strings.Contains(out, want) {
		t.Fatalf("second server's output lacks %q:\n%s", want, tail(out, 4000))
	}
	if _, err := os.Stat(filepath.Join(dirB, "mlflow.bolt")); err == nil {
		t.Error("the refused server created its bbolt file")
	}

	// So does a server bound to one address of the port the first serves
	// on every interface.
	b.config = listenSite(dirB, port, "127.0.0.1", "3.6.0")
	if out := b.startRefused(); !strings.Contains(out, "address already in use by another mlflow server") {
		t.Fatalf("bound second server's output:\n%s", tail(out, 4000))
	}

	// Every client still reaches the one server: the experiment made
	// before is there on each of a handful of new connections.
	for i := range 8 {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(a.URL + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=on-a")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("connection %d reached a server without the experiment: %d", i, resp.StatusCode)
		}
	}

	// A reload of the first provisions its new config while the old one
	// still listens on the same address: it must not refuse itself.
	a.config = listenSite(dirA, port, "", "9.8.7")
	if err := os.WriteFile(filepath.Join(dirA, "Caddyfile"), []byte(a.config), 0o644); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGUSR1)
	deadline := time.Now().Add(20 * time.Second)
	for getVersion(t, a.URL) != "9.8.7" {
		if time.Now().After(deadline) {
			t.Fatalf("reload did not take effect; log:\n%s", tail(a.logs.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !a.logs.waitFor("successfully reloaded config from file", 1, 10*time.Second) {
		t.Fatalf("no reload success in the log:\n%s", tail(a.logs.String(), 4000))
	}
	// And once more, so the lock the first reload took over is the one
	// checked.
	a.config = listenSite(dirA, port, "", "9.8.8")
	os.WriteFile(filepath.Join(dirA, "Caddyfile"), []byte(a.config), 0o644)
	a.cmd.Process.Signal(syscall.SIGUSR1)
	for getVersion(t, a.URL) != "9.8.8" {
		if time.Now().After(deadline) {
			t.Fatalf("second reload did not take effect; log:\n%s", tail(a.logs.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Caddy logs the outcome of the second reload too; wait for it before
	// looking for a failure.
	if !a.logs.waitFor("successfully reloaded config from file", 2, 10*time.Second) {
		t.Fatalf("no second reload success in the log:\n%s", tail(a.logs.String(), 4000))
	}
	if strings.Contains(a.logs.String(), "failed to reload") {
		t.Fatalf("a reload failed:\n%s", tail(a.logs.String(), 4000))
	}

	// After kill -9 the lock is gone with the process: the second server
	// starts on the port right away (no retry on a taken port).
	a.kill()
	b.config = listenSite(dirB, port, "", "3.6.0")
	b.startOnce()
	if id := createExperiment(t, b.URL, "on-b"); id == "" {
		t.Fatal("no experiment id")
	}
}

// TestServersOnDifferentAddresses checks that the guard does not misfire
// on servers that share nothing: two ports, or two loopback addresses on
// one port; a wildcard listener on that port is refused next to them.
func TestServersOnDifferentAddresses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the listen guard needs Linux")
	}
	d1, d2, d3, d4 := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()

	s1 := newServer(t, d1, 0)
	s1.prepare = func(s *server) { s.config = listenSite(d1, s.port, "127.0.0.1", "3.6.0") }
	s1.start()
	port := s1.port

	s2 := newServer(t, d2, port)
	s2.URL = fmt.Sprintf("http://127.0.0.2:%d", port)
	s2.config = listenSite(d2, port, "127.0.0.2", "3.6.1")
	s2.start()

	s3 := newServer(t, d3, 0)
	s3.prepare = func(s *server) { s.config = listenSite(d3, s.port, "", "3.6.2") }
	s3.start()

	for url, want := range map[string]string{s1.URL: "3.6.0", s2.URL: "3.6.1", s3.URL: "3.6.2"} {
		if got := getVersion(t, url); got != want {
			t.Errorf("%s/version = %q, want %q", url, got, want)
		}
	}

	s4 := newServer(t, d4, port)
	s4.config = listenSite(d4, port, "", "3.6.3")
	out := s4.startRefused()
	if !strings.Contains(out, "address already in use by another mlflow server") ||
		!strings.Contains(out, fmt.Sprintf(":%d", port)) {
		t.Fatalf("wildcard server next to bound ones:\n%s", tail(out, 4000))
	}
}
