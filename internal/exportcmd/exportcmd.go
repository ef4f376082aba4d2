// Package exportcmd is `caddy mlflow export`: it opens a caddy-mlflow
// store (a bbolt file, offline, or PostgreSQL) and its artifacts, a
// client for the destination MLflow server configured from the MLflow
// client's environment variables, and the id map, runs
// internal/mlflowexport with copy-store's progress display on stderr,
// and prints the summary. The Caddy command glue lives in caddymodule.
package exportcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/internal/copystore"
	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowexport"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// Config is one export.
type Config struct {
	// From is the source store's backend_store_uri (a bbolt path,
	// bbolt:///abs/path, or postgresql://...). A bbolt store must not be
	// held by a running server.
	From string
	// ArtifactsFrom is the directory (or gs://bucket/prefix) behind the
	// source's mlflow-artifacts:/ root; "" exports no such artifacts.
	ArtifactsFrom string
	// To is the destination MLflow server (http:// or https://).
	To string
	// IDMap is the id map file (JSON lines), read to continue and
	// appended to as the export goes.
	IDMap string
	// Experiments limits the export (names or ids).
	Experiments []string
	// DryRun writes nothing.
	DryRun bool
	// Workers is how many runs are exported at once (4).
	Workers int
	// Lookup reads the MLflow client's environment variables
	// (os.LookupEnv).
	Lookup mlflowclient.LookupFunc
	// ResolveBolt turns a non-PostgreSQL From into a bbolt path.
	ResolveBolt func(string) (string, error)
	// Stdout gets the summary, Stderr the progress.
	Stdout, Stderr io.Writer
	// Terminal draws a live progress line.
	Terminal bool
	// Interval is the period of plain progress lines (5s).
	Interval time.Duration
}

// Run exports cfg.From into cfg.To and prints the summary.
func Run(ctx context.Context, cfg Config) (*mlflowexport.Report, error) {
	if cfg.From == "" || cfg.To == "" {
		return nil, errors.New("export needs --to <http(s)://MLflow server> and a source (--from <store uri> or --config)")
	}
	if !strings.HasPrefix(cfg.To, "http://") && !strings.HasPrefix(cfg.To, "https://") {
		return nil, fmt.Errorf("--to %s: the destination is an MLflow tracking server's http:// or https:// URL", cfg.To)
	}
	if cfg.IDMap == "" && !cfg.DryRun {
		return nil, errors.New("export needs --id-map FILE: MLflow gives the exported runs new ids, and the file records them (and lets an interrupted export continue)")
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
	if cfg.Lookup == nil {
		cfg.Lookup = os.LookupEnv
	}
	client, err := mlflowclient.NewFromEnv(cfg.To, cfg.Lookup)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	src, name, closeSrc, err := OpenSource(ctx, cfg.From, cfg.ResolveBolt)
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	arts, err := openArtifacts(ctx, cfg.ArtifactsFrom)
	if err != nil {
		return nil, err
	}
	var journal *mlflowexport.Journal
	if cfg.IDMap != "" {
		journal, err = mlflowexport.OpenJournal(cfg.IDMap, client.BaseURL(), cfg.DryRun)
		if err != nil {
			return nil, err
		}
		defer journal.Close()
	}
	verb := "exporting"
	if cfg.DryRun {
		verb = "dry run: reading"
	}
	fmt.Fprintf(cfg.Stderr, "export: %s %s into %s\n", verb, name, client.BaseURL())
	p := copystore.NewProgress(cfg.Stderr, "export: ", cfg.Terminal, cfg.Interval)
	rep, err := mlflowexport.Export(ctx, src, client, mlflowexport.Options{
		Experiments: cfg.Experiments, DryRun: cfg.DryRun, Journal: journal,
		ArtifactsRoot: arts, Workers: cfg.Workers, Progress: p.Update,
	})
	p.Done()
	if rep != nil {
		PrintReport(cfg.Stdout, rep, cfg.DryRun, cfg.IDMap)
	}
	if err != nil {
		if ctx.Err() != nil {
			return rep, errors.New("interrupted: run the same command again (same --id-map) to continue; runs already exported whole are skipped")
		}
		return rep, err
	}
	fmt.Fprintf(cfg.Stderr, "export: done in %s\n", p.Elapsed())
	return rep, nil
}

// OpenSource opens a backend_store_uri for reading: a bbolt file (not
// held by a running server) or a PostgreSQL database. resolve turns a
// non-PostgreSQL URI into a path (nil: a plain path or bbolt:// URI).
func OpenSource(ctx context.Context, uri string, resolve func(string) (string, error)) (tracking.Store, string, func() error, error) {
	if pgdb.IsURI(uri) {
		s, err := pgstore.Open(ctx, uri, pgdb.Options{ApplicationName: "caddy-mlflow export", MaxConns: 8})
		if err != nil {
			return nil, "", nil, fmt.Errorf("opening the source store %s: %w", pgdb.Redact(uri), err)
		}
		return s, pgdb.Redact(uri), s.Close, nil
	}
	if resolve == nil {
		resolve = func(u string) (string, error) {
			p := strings.TrimPrefix(u, "bbolt://")
			if strings.Contains(p, "://") {
				return "", fmt.Errorf("%q is neither a bbolt path nor a PostgreSQL URI", u)
			}
			return filepath.Abs(p)
		}
	}
	path, err := resolve(uri)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--from: %w", err)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, "", nil, fmt.Errorf("the source store %s: %w", path, err)
	}
	s, err := boltstore.Open(path, boltstore.Options{Timeout: copystore.DefaultLockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, "", nil, fmt.Errorf("the source store %s is in use: another process (a running server?) holds its lock; stop it first, or export from its PostgreSQL store", path)
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("opening the source store: %w", err)
	}
	return s, path, s.Close, nil
}

// openArtifacts opens the store behind the source's mlflow-artifacts:/
// root: a local directory or gs://bucket/prefix ("" opens none).
func openArtifacts(ctx context.Context, from string) (artifact.Store, error) {
	if from == "" {
		return nil, nil
	}
	if strings.HasPrefix(from, "gs://") {
		bucket, prefix, err := gcs.ParseURI(from)
		if err != nil {
			return nil, fmt.Errorf("--artifacts-from: %w", err)
		}
		s, err := gcs.New(ctx, gcs.Options{Bucket: bucket, Prefix: prefix})
		if err != nil {
			return nil, fmt.Errorf("--artifacts-from %s: %w", from, err)
		}
		return s, nil
	}
	dir := strings.TrimPrefix(from, "file://")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--artifacts-from %s: not a directory", from)
	}
	s, err := artifact.NewLocal(dir)
	if err != nil {
		return nil, fmt.Errorf("--artifacts-from %s: %w", from, err)
	}
	return s, nil
}

// PrintReport writes the summary: counts per kind, skipped records,
// experiment ids and problems.
func PrintReport(w io.Writer, rep *mlflowexport.Report, dryRun bool, idMap string) {
	head := "EXPORTED"
	if dryRun {
		head = "WOULD EXPORT"
	}
	copystore.PrintCounts(w, head, rep.Exported, rep.ArtifactFiles, rep.ArtifactBytes)
	fmt.Fprintf(w, "skipped (already exported): %d runs, %d registered models\n", rep.SkippedRuns, rep.SkippedModels)
	ids := make([]string, 0, len(rep.Experiments))
	for id := range rep.Experiments {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "experiment %s exported as %s\n", id, rep.Experiments[id])
	}
	if idMap != "" && !dryRun {
		fmt.Fprintf(w, "id map: %s (%d runs)\n", idMap, rep.Runs)
	}
	fmt.Fprintf(w, "problems: %d\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
