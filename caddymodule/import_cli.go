package caddymodule

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"golang.org/x/term"

	"github.com/caddy-mlflow/caddy-mlflow/internal/importcmd"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
)

// importUsage is the usage line of `caddy mlflow import`.
const importUsage = "import --from <mlruns dir|sqlite:///mlflow.db> --to <store uri> [--artifacts-from DIR] [--artifacts-to DIR] [--experiment NAME|ID]... [--dry-run]"

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// importExperiments collects the repeated --experiment values (Caddy
// wraps the standard flag set in a pflag one, so the value is reached
// through the flag.Value it was registered with).
var importExperiments stringList

// addImportFlags adds import's flags to the mlflow command's set (--from
// and --to are copy-store's).
func addImportFlags(fs *flag.FlagSet) {
	fs.String("artifacts-from", "", "import: the source server's --artifacts-destination directory (for mlflow-artifacts:/ locations)")
	fs.String("artifacts-to", "", "import: the destination server's artifact directory (behind its mlflow-artifacts:/ root); artifacts are copied there")
	fs.Var(&importExperiments, "experiment", "import: import only this experiment (name or id; repeatable)")
	fs.Bool("dry-run", false, "import: show what would be imported, write nothing")
}

// cmdImport runs `caddy mlflow import`: an MLflow file store or SQLite
// database into the store --to names (offline: a bbolt store must not be
// held by a running server), artifacts into --artifacts-to.
func cmdImport(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 1 {
		return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow " + importUsage)
	}
	exps := []string(importExperiments)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_, err := importcmd.Run(ctx, importcmd.Config{
		From:          fl.String("from"),
		To:            fl.String("to"),
		ArtifactsFrom: fl.String("artifacts-from"),
		ArtifactsTo:   fl.String("artifacts-to"),
		Experiments:   exps,
		DryRun:        fl.Bool("dry-run"),
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
