package caddymodule

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"golang.org/x/term"

	"github.com/caddy-mlflow/caddy-mlflow/internal/copystore"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
)

// copyStoreUsage is the usage line of `caddy mlflow copy-store`.
const copyStoreUsage = "copy-store --from <uri> --to <uri> [--force]"

// addCopyStoreFlags adds copy-store's flags to the mlflow command's set.
func addCopyStoreFlags(fs *flag.FlagSet) {
	fs.String("from", "", "copy-store: the store to copy (a bbolt path, bbolt:///abs/path or postgresql://...)")
	fs.String("to", "", "copy-store: the store to copy into (same forms)")
	fs.Bool("force", false, "copy-store: write into a destination that already holds records")
}

// cmdCopyStore runs `caddy mlflow copy-store`: every record of --from
// (tracking data, registry, logged models, traces and the gateway's
// users, tokens and grants) into --to, with progress on stderr and the
// verification counts on stdout; the exit status is non-zero when the
// counts read back from --to differ.
func cmdCopyStore(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 1 {
		return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow " + copyStoreUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_, err := copystore.Run(ctx, copystore.Config{
		From:  fl.String("from"),
		To:    fl.String("to"),
		Force: fl.Bool("force"),
		ResolveBolt: func(uri string) (string, error) {
			if pgdb.IsURI(uri) {
				return "", errors.New("not a bbolt store")
			}
			return ResolveBackendStoreURI(uri)
		},
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Terminal: term.IsTerminal(int(os.Stderr.Fd())),
	})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}
