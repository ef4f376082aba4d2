package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy/storecopytest"
)

// copyStoreCaddyfile is a server on store with basic and token auth.
func copyStoreCaddyfile(port int, store, artifacts string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
}

http://127.0.0.1:%d {
	mlflow {
		backend_store_uri %s
		artifacts_destination %s
		auth {
			basic
			api_tokens
			default_permission READ
		}
	}
}
`, port, store, artifacts)
}

// runCaddy runs the built binary and returns stdout, stderr and the exit code.
func runCaddy(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBinary(t), args...)
	home := filepath.Join(dir, "home")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	cmd.Stdin = strings.NewReader("carol-password-123\n")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("caddy %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// TestCopyStoreCLI drives `caddy mlflow copy-store` as a process: a bbolt
// store with every kind of record and a user with a token is copied into a
// new bbolt file (refused while a server holds the source, refused into a
// non-empty destination without --force), the copy compares equal field by
// field, and a server started on the copy accepts the source's password
// and token.
func TestCopyStoreCLI(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.bolt"), filepath.Join(dir, "copy", "mlflow.bolt")
	s, err := boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := storecopytest.Fill(t, s, 2500)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, dir, 0)
	srv.prepare = func(s *server) { s.config = copyStoreCaddyfile(s.port, src, filepath.Join(dir, "artifacts")) }
	srv.pick()
	// The offline CLI reads the store from its own copy of the config.
	srcCfg := filepath.Join(dir, "src.Caddyfile")
	if err := os.WriteFile(srcCfg, []byte(srv.config), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, e, code := runCaddy(t, dir, "mlflow", "user", "add", "carol", "--config", srcCfg); code != 0 {
		t.Fatalf("user add: %s", e)
	}
	tok, e, code := runCaddy(t, dir, "mlflow", "token", "create", "--user", "carol", "--config", srcCfg)
	if code != 0 {
		t.Fatalf("token create: %s", e)
	}
	tok = strings.TrimSpace(tok)

	// A server holds the source: refused, saying why.
	srv.start()
	_, e, code = runCaddy(t, dir, "mlflow", "copy-store", "--from", src, "--to", dst)
	if code == 0 || !strings.Contains(e, "is in use") || !strings.Contains(e, "holds its lock") {
		t.Fatalf("copy from a store in use: exit %d, stderr:\n%s", code, e)
	}
	srv.stop()

	out, e, code := runCaddy(t, dir, "mlflow", "copy-store", "--from", src, "--to", "bbolt://copy/mlflow.bolt")
	if code != 0 {
		t.Fatalf("copy-store: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, e)
	}
	if !strings.Contains(out, "metric_points") || strings.Contains(out, "MISMATCH") || !strings.Contains(e, "records copied and verified") {
		t.Fatalf("copy-store output:\n%s\nstderr:\n%s", out, e)
	}
	// Not a terminal: plain lines, no redraws.
	if strings.Contains(e, "\r") || !strings.Contains(e, "copy-store: verifying the destination:") {
		t.Fatalf("progress on a pipe:\n%q", e)
	}
	for _, row := range []string{"users", "tokens", "runs", "model_versions", "traces"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			fs := strings.Fields(line)
			if len(fs) == 4 && fs[0] == row && fs[1] == fs[2] && fs[1] != "0" && fs[3] == "ok" {
				found = true
			}
		}
		if !found {
			t.Errorf("no verified non-zero %s row in:\n%s", row, out)
		}
	}

	// Again: the destination is not empty.
	_, e, code = runCaddy(t, dir, "mlflow", "copy-store", "--from", src, "--to", dst)
	if code == 0 || !strings.Contains(e, "already holds records") || !strings.Contains(e, "--force") {
		t.Fatalf("copy into a non-empty store: exit %d, stderr:\n%s", code, e)
	}
	if _, e, code = runCaddy(t, dir, "mlflow", "copy-store", "--from", src, "--to", dst, "--force"); code != 0 {
		t.Fatalf("copy-store --force: exit %d, stderr:\n%s", code, e)
	}

	a, err := boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := boltstore.Open(dst, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := storecopytest.Diff(storecopytest.Dump(t, a, f), storecopytest.Dump(t, b, f))
	a.Close()
	b.Close()
	if len(d) > 0 {
		t.Fatalf("the copy differs:\n%s", strings.Join(d, "\n"))
	}

	// A server on the copy knows the source's users and tokens.
	srv2 := newServer(t, filepath.Join(dir, "copy"), 0)
	srv2.prepare = func(s *server) { s.config = copyStoreCaddyfile(s.port, dst, filepath.Join(dir, "artifacts")) }
	srv2.start()
	get := func(authz string) int {
		req, _ := http.NewRequest("GET", srv2.URL+"/api/2.0/mlflow/experiments/get-by-name?experiment_name=alpha", nil)
		req.Header.Set("Authorization", authz)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("Bearer " + tok); got != 200 {
		t.Errorf("the source's token on the copy: status %d", got)
	}
	if got := get("Basic " + basicAuth("carol", "carol-password-123")); got != 200 {
		t.Errorf("the source's password on the copy: status %d", got)
	}
	if got := get("Basic " + basicAuth("carol", "wrong-password-123")); got != 401 {
		t.Errorf("a wrong password on the copy: status %d", got)
	}
}
