package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/term"

	"github.com/caddy-mlflow/caddy-mlflow/internal/importcmd"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
)

// importUsage is the usage line of `caddy mlflow import`.
const importUsage = "import --from <mlruns dir|sqlite:///mlflow.db> (--to <store uri> | --config <Caddyfile>) [--artifacts-from DIR] [--artifacts-to DIR|gs://bucket/prefix] [--experiment NAME|ID]... [--dry-run]"

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
	fs.String("artifacts-to", "", "import: the destination server's artifacts_destination (a directory or gs://bucket/prefix, behind its mlflow-artifacts:/ root); artifacts are copied there")
	fs.Var(&importExperiments, "experiment", "import: import only this experiment (name or id; repeatable)")
	fs.Bool("dry-run", false, "import: show what would be imported, write nothing")
}

// cmdImport runs `caddy mlflow import`: an MLflow file store or SQLite
// database into the store --to names (offline: a bbolt store must not be
// held by a running server), artifacts into --artifacts-to. Without --to,
// both come from the mlflow handler of --config (its backend_store_uri and
// local artifacts_destination); when a running server holds that bbolt
// store, the import runs in the server through its admin API.
func cmdImport(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 1 {
		return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow " + importUsage)
	}
	exps := []string(importExperiments)
	to, artifactsTo := fl.String("to"), fl.String("artifacts-to")
	gcsEndpoint := "" // the config's gcs_endpoint, with its gs:// destination
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if to == "" {
		cfg, _, _, err := caddycmd.LoadConfig(fl.String("config"), fl.String("adapter"))
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("no --to, and loading the config: %w", err)
		}
		store, dest, ep, err := importTargetGCS(cfg, fl.String("backend_store_uri"))
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("no --to: %w", err)
		}
		// A bbolt store held by a running server: the import runs in
		// that server, through its admin API (maint_import.go).
		if t, online, err := importOnline(fl); err != nil {
			return caddy.ExitCodeFailedStartup, err
		} else if online {
			if importcmd.IsRemote(fl.String("from")) {
				return caddy.ExitCodeFailedStartup, importcmd.ErrRemoteOnline
			}
			if artifactsTo != "" {
				return caddy.ExitCodeFailedStartup, errors.New("--artifacts-to: the running server copies artifacts into its own artifacts_destination; leave --artifacts-to out")
			}
			err := runOnlineImport(ctx, t, importRequest{
				From: fl.String("from"), ArtifactsFrom: fl.String("artifacts-from"), Experiments: exps, DryRun: fl.Bool("dry-run"),
			}, os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
			if err != nil {
				return caddy.ExitCodeFailedStartup, err
			}
			return caddy.ExitCodeSuccess, nil
		}
		to = store
		if artifactsTo == "" && dest != "" {
			artifactsTo, gcsEndpoint = dest, ep
		}
	}
	_, err := importcmd.Run(ctx, importcmd.Config{
		From:          fl.String("from"),
		To:            to,
		ArtifactsFrom: fl.String("artifacts-from"),
		ArtifactsTo:   artifactsTo,
		GCSEndpoint:   gcsEndpoint,
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

// importOnline reports whether the config's store is a bbolt file held by
// a running server (then the import goes through its admin API).
func importOnline(fl caddycmd.Flags) (*cliTarget, bool, error) {
	if fl.String("from") == "" {
		return nil, false, nil // importcmd.Run says what is missing
	}
	t, err := resolveCLITarget(fl)
	if err != nil || t.pgURI != "" {
		return nil, false, err
	}
	db, err := bolt.Open(t.storePath, 0o600, &bolt.Options{ReadOnly: true, Timeout: cliLockWait})
	switch {
	case err == nil:
		return nil, false, db.Close()
	case errors.Is(err, bolt.ErrTimeout):
		if t.adminAddr == "" {
			return nil, false, fmt.Errorf("the store %s is in use (a server is running?) and the config's admin API is off; enable `admin` or stop the server", t.storePath)
		}
		return t, true, nil
	}
	return nil, false, nil // a missing file: the offline import creates it
}

// importTargetFromConfig finds the mlflow handler of a JSON config (the
// one whose backend_store_uri is want, when want is set): its store, and
// the artifacts destination it serves (a local directory or a gs:// URI;
// "" for serve_artifacts off).
func importTargetFromConfig(cfg []byte, want string) (store, artifacts string, err error) {
	store, artifacts, _, err = importTargetGCS(cfg, want)
	return store, artifacts, err
}

// importTargetGCS is importTargetFromConfig with the handler's
// gcs_endpoint, for a gs:// destination.
func importTargetGCS(cfg []byte, want string) (store, artifacts, endpoint string, err error) {
	var root any
	if err := json.Unmarshal(cfg, &root); err != nil {
		return "", "", "", fmt.Errorf("reading the config: %w", err)
	}
	var found []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["handler"] == "mlflow" {
				if s, _ := x["backend_store_uri"].(string); want == "" || s == want {
					found = append(found, x)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(root)
	if len(found) == 0 {
		return "", "", "", errors.New("the config has no mlflow handler (or none with that --backend_store_uri)")
	}
	h := found[0]
	s, _ := h["backend_store_uri"].(string)
	d, _ := h["artifacts_destination"].(string)
	for _, o := range found[1:] {
		s2, _ := o["backend_store_uri"].(string)
		d2, _ := o["artifacts_destination"].(string)
		if s2 != s || d2 != d {
			return "", "", "", errors.New("the config has several mlflow handlers; choose one with --backend_store_uri or give --to")
		}
	}
	// As the server reads it: placeholders ({env.VAR}) replaced, the
	// default store when none is named.
	s = caddy.NewReplacer().ReplaceKnown(s, "")
	if strings.TrimSpace(s) == "" {
		s = DefaultBackendStorePath
	}
	if serve, ok := h["serve_artifacts"].(bool); ok && !serve {
		return s, "", "", nil
	}
	dir, err := ResolveArtifactsDestination(d)
	if err != nil {
		return "", "", "", err
	}
	ep := ""
	if schemeOf(dir) == "gs" {
		ep, _ = h["gcs_endpoint"].(string)
	}
	return s, dir, ep, nil
}
