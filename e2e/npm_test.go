package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

// TestNPMClient drives the server with the third-party `mlflow` npm package
// (e2e/npm/client_test.mjs). Without node and npm the test is skipped, except
// under CI=true, where a missing toolchain is a failure.
func TestNPMClient(t *testing.T) {
	npmClient(t, "")
}

// TestNPMClientPostgres is TestNPMClient with the tracking data in a fresh
// PostgreSQL database (skipped without MLFLOW_TEST_POSTGRES_URI, failed
// under CI=true).
func TestNPMClientPostgres(t *testing.T) {
	npmClient(t, pgtest.NewDatabase(t))
}

// npmClient runs the npm client's tests against a caddy process storing
// tracking data in the bbolt file of its data directory (backendURI "") or
// at backendURI.
func npmClient(t *testing.T, backendURI string) {
	var missing []string
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v not found in PATH; CI=true requires node and npm for the npm client e2e test", missing)
		}
		t.Skipf("skipping npm client e2e test: %v not found in PATH (install Node.js >= 20; under CI=true this fails)", missing)
	}

	npmDir := filepath.Join(repoRoot(t), "e2e", "npm")
	if _, err := os.Stat(filepath.Join(npmDir, "node_modules", "mlflow")); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := runCommand(ctx, npmDir, nil, "npm", "ci", "--no-audit", "--no-fund")
		if err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", npmDir, err, out)
		}
		t.Logf("npm ci:\n%s", out)
	}

	srv := newServer(t, t.TempDir(), 0)
	if backendURI != "" {
		srv.prepare = func(srv *server) {
			srv.config = fmt.Sprintf(`{
	admin off
	persist_config off
}

http://127.0.0.1:%d {
	mlflow {
		backend_store_uri %s
		artifacts_destination %s
	}
}
`, srv.port, strconv.Quote(backendURI), strconv.Quote(filepath.Join(srv.dir, "artifacts")))
		}
	}
	srv.start()
	defer srv.stop()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := runCommand(ctx, npmDir, []string{"MLFLOW_TRACKING_URI=" + srv.URL},
		"node", "--test", "--test-reporter=spec", "client_test.mjs")
	if err != nil {
		t.Errorf("node client_test.mjs against %s: %v\n%s", srv.URL, err, out)
		return
	}
	t.Logf("node client_test.mjs:\n%s", out)
}
