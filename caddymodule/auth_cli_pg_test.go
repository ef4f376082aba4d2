package caddymodule

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/pflag"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/pgauth"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

// TestAuthCLIOnPostgres: `caddy mlflow user add` and `token revoke` with
// a PostgreSQL backend_store_uri work on the gateway tables directly, and
// what they do is what a replica's store sees.
func TestAuthCLIOnPostgres(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	t.Setenv("MLFLOW_CLI_TEST_DB", uri)
	cfg := map[string]any{
		"admin": map[string]any{"disabled": true},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"s": map[string]any{
			"listen": []string{"127.0.0.1:0"},
			"routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler": "mlflow", "backend_store_uri": "{env.MLFLOW_CLI_TEST_DB}",
			}}}},
		}}}},
	}
	data, _ := json.Marshal(cfg)
	file := filepath.Join(t.TempDir(), "caddy.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) {
		t.Helper()
		fs := flag.NewFlagSet("mlflow", flag.ContinueOnError)
		fs.String("config", "", "")
		fs.String("adapter", "", "")
		fs.String("address", "", "")
		fs.String("backend_store_uri", "", "")
		fs.String("user", "", "")
		fs.String("expires", "", "")
		fs.String("name", "", "")
		fs.Bool("admin", false, "")
		if stdin != "" {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			old := os.Stdin
			os.Stdin = r
			defer func() { os.Stdin = old; r.Close() }()
			if _, err := w.WriteString(stdin); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
		pf := pflag.NewFlagSet("mlflow", pflag.ContinueOnError)
		pf.AddGoFlagSet(fs)
		if err := pf.Parse(append([]string{"--config", file}, args...)); err != nil {
			t.Fatal(err)
		}
		if code, err := cmdMLflow(caddycmd.Flags{FlagSet: pf}); err != nil || code != 0 {
			t.Fatalf("caddy mlflow %v: exit %d, %v", args, code, err)
		}
	}
	run("carol-password-1\n", "user", "add", "carol")

	pool, err := pgdb.Open(ctx, uri, pgdb.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := pgauth.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	basic, _ := authn.NewBasic(s, authn.BasicOptions{})
	if _, err := basic.Authenticate(ctx, "carol", "carol-password-1"); err != nil {
		t.Fatalf("user added by the CLI: %v", err)
	}
	tok, rec, err := s.CreateToken(ctx, "carol", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	run("", "token", "revoke", rec.ID)
	tv, _ := authn.NewTokenVerifier(s, s, nil)
	if _, err := tv.Verify(ctx, tok); err == nil {
		t.Fatal("token revoked by the CLI still verifies")
	}
}
