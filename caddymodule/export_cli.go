package caddymodule

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"golang.org/x/term"

	"github.com/caddy-mlflow/caddy-mlflow/internal/exportcmd"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
)

// exportUsage is the usage line of `caddy mlflow export`.
const exportUsage = "export --to <http(s)://MLflow server> --id-map FILE (--from <store uri> | --config <Caddyfile>) [--artifacts-from DIR|gs://...] [--experiment NAME|ID]... [--dry-run]"

// exportLong is the help text of `caddy mlflow export`.
const exportLong = `

  caddy mlflow export --config Caddyfile --to https://mlflow.example.com --id-map ids.jsonl

pushes experiments, runs (params, tags, full metric histories, dataset
inputs, status and times), the model registry and run artifacts into a
running MLflow server through its REST API, authenticating with the MLflow
client's variables (MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_TOKEN,
MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH,
MLFLOW_TRACKING_CLIENT_CERT_PATH). MLflow assigns new run ids: --id-map
records them (JSON lines) and lets an interrupted export continue.`

// addExportFlags adds export's own flags to the mlflow command's set
// (--from, --to, --artifacts-from, --experiment and --dry-run are shared
// with copy-store and import).
func addExportFlags(fs *flag.FlagSet) {
	fs.String("id-map", "", "export: the id map file (JSON lines, old id -> new id); an existing one is continued")
	fs.Int("workers", 0, "export: runs exported at once (default 4)")
}

// cmdExport runs `caddy mlflow export`: the store --from names (or the
// mlflow handler of --config) into the MLflow server --to names.
func cmdExport(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 1 {
		return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow " + exportUsage)
	}
	from, artifactsFrom := fl.String("from"), fl.String("artifacts-from")
	if from == "" {
		cfg, _, _, err := caddycmd.LoadConfig(fl.String("config"), fl.String("adapter"))
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("no --from, and loading the config: %w", err)
		}
		store, dest, err := importTargetFromConfig(cfg, fl.String("backend_store_uri"))
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("no --from: %w", err)
		}
		from = store
		if artifactsFrom == "" {
			artifactsFrom = dest
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_, err := exportcmd.Run(ctx, exportcmd.Config{
		From:          from,
		ArtifactsFrom: artifactsFrom,
		To:            fl.String("to"),
		IDMap:         fl.String("id-map"),
		Experiments:   []string(importExperiments),
		DryRun:        fl.Bool("dry-run"),
		Workers:       fl.Int("workers"),
		Lookup:        os.LookupEnv,
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
