package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuthCLI drives `caddy mlflow user add` and `caddy mlflow token
// create|list|revoke` against the built binary: first with no server
// running (the CLI opens the bbolt file itself), then while the server runs
// and holds the file (the CLI goes through the admin API), and checks the
// users and tokens it makes work, and stop working, over HTTP.
func TestAuthCLI(t *testing.T) {
	bin := caddyBinary(t)
	dir := t.TempDir()
	// The server and the CLI share dir/Caddyfile: the harness writes it
	// for the ports it ends up on (the site and the admin endpoint).
	srv := newServer(t, dir, 0)
	srv.nPorts = 2
	srv.prepare = func(s *server) {
		s.config = fmt.Sprintf(`{
	admin 127.0.0.1:%d
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
`, s.ports[1], s.port, filepath.Join(dir, "mlflow.bolt"), filepath.Join(dir, "artifacts"))
	}
	srv.pick()
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(srv.config), 0o644); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	cli := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"mlflow"}, append(args, "--config", cfg)...)...)
		cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(stdin)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("caddy mlflow %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	status := func(authz string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/2.0/mlflow/experiments/get?experiment_id=0", nil)
		req.Header.Set("Authorization", authz)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// No server running: the CLI opens the store directly.
	cli("bob-password-123\n", "user", "add", "bob")
	offline := cli("", "token", "create", "--user", "bob")
	if !strings.HasPrefix(offline, "mlft_") || strings.Contains(offline, "\n") {
		t.Fatalf("token create printed %q, want only the token", offline)
	}

	srv.start()

	if got := status("Bearer " + offline); got != 200 {
		t.Fatalf("token made offline: status %d", got)
	}
	if got := status("Basic " + basicAuth("bob", "bob-password-123")); got != 200 {
		t.Fatalf("user added offline: status %d", got)
	}
	if got := status("Bearer mlft_not-a-real-token-0000000000000000000000000"); got != 401 {
		t.Fatalf("unknown token: status %d", got)
	}

	// Server running and holding the file: the CLI goes through the admin API.
	online := cli("", "token", "create", "--user", "bob", "--name", "ci")
	if got := status("Bearer " + online); got != 200 {
		t.Fatalf("token made online: status %d", got)
	}
	list := cli("", "token", "list", "--user", "bob")
	var onlineID string
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[2] == "ci" {
			onlineID = f[0]
		}
	}
	if onlineID == "" || strings.Contains(list, online) || strings.Contains(list, offline) {
		t.Fatalf("token list:\n%s", list)
	}
	cli("", "token", "revoke", onlineID, "--user", "bob")
	if got := status("Bearer " + online); got != 401 {
		t.Fatalf("revoked token: status %d", got)
	}
	if got := status("Bearer " + offline); got != 200 {
		t.Fatalf("the other token after a revoke: status %d", got)
	}
	if logs := srv.logs.String(); strings.Contains(logs, online) || strings.Contains(logs, "bob-password-123") {
		t.Fatal("a secret appears in the server log")
	}
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest("GET", "http://x", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}
