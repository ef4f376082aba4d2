// Package importcmd is `caddy mlflow import`: it opens an MLflow source
// (a file store directory, a SQLite database, or a running tracking
// server through its REST API), opens the destination store named by a
// backend_store_uri, runs tracking/mlflowimport with a progress display
// on stderr (a live bar on a terminal, periodic lines otherwise), and
// prints the summary. The
// Caddy command glue lives in caddymodule.
package importcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/copystore"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/filestore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/restsource"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/sqlsource"
)

// Config is one import.
type Config struct {
	// From is the MLflow source: an mlruns/ directory (a path or
	// file:///...), sqlite:///path/mlflow.db, or a tracking server
	// (http(s)://..., read with the MLFLOW_TRACKING_* environment).
	From string
	// To is the destination's backend_store_uri (a bbolt path or
	// postgresql://...); a bbolt store must not be in use.
	To string
	// ArtifactsFrom is the source server's --artifacts-destination
	// directory, for mlflow-artifacts:/ locations.
	ArtifactsFrom string
	// ArtifactsTo is the destination server's artifacts_destination (a
	// directory or gs://bucket/prefix, the one behind its
	// mlflow-artifacts:/ root); empty keeps locations and copies nothing.
	ArtifactsTo string
	// GCSEndpoint is the destination server's gcs_endpoint, for a gs://
	// ArtifactsTo ("" for GCS itself, or STORAGE_EMULATOR_HOST).
	GCSEndpoint string
	// Experiments limits the import (names or ids).
	Experiments []string
	// DryRun writes nothing.
	DryRun bool
	// ResolveBolt turns a non-PostgreSQL To into a bbolt path.
	ResolveBolt func(string) (string, error)
	// Stdout gets the summary, Stderr the progress.
	Stdout, Stderr io.Writer
	// Terminal draws a live progress line.
	Terminal bool
	// Interval is the period of plain progress lines (5s).
	Interval time.Duration
}

// IsRemote reports whether from names a running tracking server
// (http:// or https://). The online import (POST /mlflow/import) refuses
// such sources: the server would fetch a URL with credentials and
// certificate paths it would have to be handed, so the import from a
// server runs in the CLI, against a stopped destination.
func IsRemote(from string) bool { return restsource.IsURI(from) }

// ErrRemoteOnline is the refusal of an http(s) source by a running
// server.
var ErrRemoteOnline = errors.New("--from http(s)://: a running server does not fetch from other servers " +
	"(it would need your MLFLOW_TRACKING_* credentials and certificate files); stop it and run the import again: " +
	"the command then reads the source itself, with this shell's MLFLOW_TRACKING_* settings, into the stopped store")

// OpenSource opens the MLflow source a --from value names.
func OpenSource(ctx context.Context, from, artifactsFrom string) (mlflowimport.Source, error) {
	switch {
	case restsource.IsURI(from):
		if artifactsFrom != "" {
			return nil, errors.New("--artifacts-from: a tracking server's artifacts are read through its API; leave --artifacts-from out")
		}
		// The MLflow client's environment (MLFLOW_TRACKING_USERNAME,
		// _PASSWORD, _TOKEN, _INSECURE_TLS, _SERVER_CERT_PATH,
		// _CLIENT_CERT_PATH, the MLFLOW_HTTP_REQUEST_* retry settings)
		// of this process: the CLI's. A running server refuses http(s)
		// sources (IsRemote) rather than fetch with its own.
		return restsource.Open(ctx, from, os.LookupEnv)
	case sqlsource.IsURI(from):
		return sqlsource.Open(ctx, from, artifactsFrom)
	case pgdb.IsURI(from) || strings.Contains(from, "://") && !strings.HasPrefix(from, "file:"):
		return nil, fmt.Errorf("--from %s: not a supported MLflow source (an mlruns/ directory, file:///..., or sqlite:///...)", pgdb.Redact(from))
	default:
		return filestore.Open(from, artifactsFrom)
	}
}

// Run imports cfg.From into cfg.To and prints the summary.
func Run(ctx context.Context, cfg Config) (*mlflowimport.Report, error) {
	if cfg.From == "" || cfg.To == "" {
		return nil, errors.New("import needs --from <mlruns dir | sqlite:///mlflow.db | http(s)://server> and --to <store uri>")
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	src, err := OpenSource(ctx, cfg.From, cfg.ArtifactsFrom)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, name, closeDst, err := copystore.OpenDestination(ctx, cfg.To, cfg.ResolveBolt)
	if err != nil {
		return nil, err
	}
	defer closeDst()
	verb := "importing"
	if cfg.DryRun {
		verb = "dry run: reading"
	}
	fmt.Fprintf(cfg.Stderr, "import: %s %s into %s\n", verb, src.Name(), name)
	p := newProgress(cfg.Stderr, cfg.Terminal, cfg.Interval)
	rep, err := mlflowimport.Import(ctx, src, dst, mlflowimport.Options{
		Experiments: cfg.Experiments, DryRun: cfg.DryRun, ArtifactsTo: cfg.ArtifactsTo, GCSEndpoint: cfg.GCSEndpoint, Status: p.update,
	})
	p.done()
	if rep != nil {
		PrintReport(cfg.Stdout, rep, cfg.DryRun)
	}
	if err != nil {
		if ctx.Err() != nil {
			return rep, fmt.Errorf("interrupted: run the same command again to continue (runs already imported whole are skipped)")
		}
		return rep, err
	}
	fmt.Fprintf(cfg.Stderr, "import: done in %s\n", p.elapsed())
	return rep, nil
}

// PrintReport writes the summary: counts per kind, skipped records,
// remapped experiment ids and problems.
func PrintReport(w io.Writer, rep *mlflowimport.Report, dryRun bool) {
	head := "IMPORTED"
	if dryRun {
		head = "WOULD IMPORT"
	}
	copystore.PrintCounts(w, head, rep.Imported, rep.ArtifactFiles, rep.ArtifactBytes)
	fmt.Fprintf(w, "skipped (already imported): %d runs, %d logged models, %d traces, %d registered models, %d artifact files\n",
		rep.SkippedRuns, rep.SkippedLoggedModels, rep.SkippedTraces, rep.SkippedModels, rep.ArtifactsSkipped)
	ids := make([]string, 0, len(rep.Remapped))
	for id := range rep.Remapped {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "experiment %s imported as %s\n", id, rep.Remapped[id])
	}
	byKind := map[string]int{}
	for _, p := range rep.Problems {
		byKind[p.Kind]++
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%d %s", byKind[k], k)
	}
	if len(kinds) > 0 {
		fmt.Fprintf(w, "problems: %d (%s), skipped:\n", len(rep.Problems), strings.Join(kinds, ", "))
	} else {
		fmt.Fprintf(w, "problems: 0\n")
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
