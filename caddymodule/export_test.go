package caddymodule

import (
	"context"
	"errors"
	"io"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// DBReferences exposes the pool's reference count to the external tests.
var DBReferences = dbReferences

// The tests hash passwords at bcrypt's minimum cost: the authorization
// matrix sends hundreds of wrong passwords, each a full bcrypt comparison.
// authn.HashPassword refuses to go below bcrypt's default, so the tests
// hash directly, after the same checks.
func init() {
	bcryptCost = bcrypt.MinCost
	hashPassword = func(pw string) ([]byte, error) {
		if pw == "" || len(pw) > authn.MaxPasswordBytes {
			return authn.HashPassword(pw, 0) // its refusal
		}
		return bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	}
}

// PGReferences exposes the PostgreSQL pool's reference count of uri with
// the settings p to the external tests.
func PGReferences(uri string, p *PostgresConfig) int { return pgReferences(pgKey(uri, p.options())) }

// PGPool returns the pooled PostgreSQL connection pool of uri with the
// settings p (nil when none is open), so that tests can tell a reused pool
// from a new one.
func PGPool(uri string, p *PostgresConfig) any {
	key := pgKey(uri, p.options())
	var found any
	pgPool.Range(func(k, v any) bool {
		if k == key {
			found = v.(*sharedPG).pool
			return false
		}
		return true
	})
	return found
}

// ImportThroughAdmin runs `caddy mlflow import --config cfgFile --from
// from` as the CLI does, in this process, writing its output to stdout and
// stderr; it fails unless the CLI decides to go through the admin API (a
// running server holds the store).
func ImportThroughAdmin(ctx context.Context, cfgFile, from string, dryRun bool, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("mlflow", pflag.ContinueOnError)
	for _, name := range []string{"config", "adapter", "address", "backend_store_uri", "from"} {
		fs.String(name, "", "")
	}
	if err := fs.Parse([]string{"--config", cfgFile, "--from", from}); err != nil {
		return err
	}
	t, online, err := importOnline(caddycmd.Flags{FlagSet: fs})
	if err != nil {
		return err
	}
	if !online {
		return errors.New("the CLI would import offline")
	}
	return runOnlineImport(ctx, t, importRequest{From: from, DryRun: dryRun}, stdout, stderr, false)
}

// SetImportHook sets the function told about every progress update of an
// online import (nil: none).
func SetImportHook(f func(ctx context.Context, phase string, c storecopy.Counts)) {
	if f == nil {
		importHook.Store(nil)
		return
	}
	importHook.Store(&f)
}

// LiveStore is the store of the running handler whose bbolt file is path
// (nil if none).
func LiveStore(path string) tracking.Store {
	if h := liveHandler(path); h != nil {
		return h.store
	}
	return nil
}
