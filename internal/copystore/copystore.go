// Package copystore is `caddy mlflow copy-store`: it opens two stores
// named by backend_store_uri values (bbolt files, PostgreSQL databases),
// copies every record of the first into the second with
// tracking/storecopy (the gateway's users, tokens, grants and sessions
// included), shows progress on stderr, and prints the verification
// counts. The Caddy command glue lives in caddymodule.
package copystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/authstore/boltauth"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// DefaultLockTimeout is how long Run waits for a bbolt file's lock before
// deciding that another process (a running server) holds it.
const DefaultLockTimeout = time.Second

// Config is one copy.
type Config struct {
	// From and To are backend_store_uri values: a bbolt file path,
	// bbolt:///abs/path, or a postgresql:// URI.
	From, To string
	// Force copies into a destination that already holds records.
	Force bool
	// ResolveBolt turns a URI that is not PostgreSQL into a bbolt file
	// path (the server's own resolution of backend_store_uri).
	ResolveBolt func(uri string) (string, error)
	// LockTimeout bounds the wait for a bbolt file lock
	// (DefaultLockTimeout).
	LockTimeout time.Duration
	// Stdout gets the verification table, Stderr the progress.
	Stdout, Stderr io.Writer
	// Terminal draws a live progress line on Stderr (a TTY); otherwise
	// a plain line is written every Interval and at each phase change.
	Terminal bool
	// Interval is the period of plain progress lines (5s).
	Interval time.Duration
	// Read tunes page and chunk sizes.
	Read storecopy.ReadOptions
}

// endpoint is an opened store.
type endpoint struct {
	name  string // for messages (a PostgreSQL password redacted)
	store storecopy.Destination
	auth  storecopy.AuthStream
	close func() error
}

// Run copies cfg.From into cfg.To and returns the report. A verification
// mismatch is an error wrapping storecopy.ErrMismatch, with the report.
func Run(ctx context.Context, cfg Config) (*storecopy.Report, error) {
	if cfg.From == "" || cfg.To == "" {
		return nil, errors.New("copy-store needs --from <uri> and --to <uri>")
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = DefaultLockTimeout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.ResolveBolt == nil {
		cfg.ResolveBolt = resolveBolt
	}
	fromKey, err := identity(cfg.From, cfg.ResolveBolt)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	toKey, err := identity(cfg.To, cfg.ResolveBolt)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if fromKey == toKey {
		return nil, fmt.Errorf("--from and --to name the same store (%s)", fromKey)
	}
	src, err := open(ctx, cfg, cfg.From, true)
	if err != nil {
		return nil, err
	}
	defer src.close()
	dst, err := open(ctx, cfg, cfg.To, false)
	if err != nil {
		return nil, err
	}
	defer dst.close()

	p := newProgress(cfg.Stderr, cfg.Terminal, cfg.Interval)
	opts := storecopy.Options{ReadOptions: cfg.Read, Force: cfg.Force, Progress: p.update}
	if src.auth != nil && dst.auth != nil {
		opts.Auth = &storecopy.AuthPair{From: src.auth, To: dst.auth}
	}
	fmt.Fprintf(cfg.Stderr, "copy-store: copying %s into %s\n", src.name, dst.name)
	rep, err := storecopy.Copy(ctx, src.store, dst.store, opts)
	p.done()
	if errors.Is(err, storecopy.ErrNotEmpty) {
		return nil, fmt.Errorf("the destination %s already holds records; copy into an empty store, or pass --force to write over records with the same ids", dst.name)
	}
	if rep != nil {
		printReport(cfg.Stdout, rep)
	}
	if err != nil {
		if errors.Is(err, storecopy.ErrMismatch) {
			return rep, err
		}
		if ctx.Err() != nil {
			return rep, fmt.Errorf("interrupted: %s holds part of %s; run the same command with --force to complete the copy", dst.name, src.name)
		}
		return rep, fmt.Errorf("copying %s into %s: %w", src.name, dst.name, err)
	}
	if opts.Auth == nil {
		fmt.Fprintf(cfg.Stderr, "copy-store: the gateway's users, tokens and grants were not copied (not supported between %s and %s)\n", src.name, dst.name)
	}
	fmt.Fprintf(cfg.Stderr, "copy-store: done in %s: %s records copied and verified\n", p.elapsed(), humanize.Comma(rep.Source.Total()))
	return rep, nil
}

// resolveBolt is the default Config.ResolveBolt: a path, bbolt:///abs or
// bbolt://rel, made absolute.
func resolveBolt(uri string) (string, error) {
	p := uri
	if rest, ok := strings.CutPrefix(uri, "bbolt://"); ok {
		p = rest
	} else if strings.Contains(uri, "://") {
		return "", fmt.Errorf("%q is neither a bbolt path nor a PostgreSQL URI", uri)
	}
	if p == "" {
		return "", fmt.Errorf("%q names no file", uri)
	}
	return filepath.Abs(p)
}

// identity names the store a URI points at, to refuse copying a store
// onto itself.
func identity(uri string, resolve func(string) (string, error)) (string, error) {
	if pgdb.IsURI(uri) {
		return pgdb.Redact(uri), nil
	}
	return resolve(uri)
}

func open(ctx context.Context, cfg Config, uri string, source bool) (*endpoint, error) {
	role := "destination"
	if source {
		role = "source"
	}
	if pgdb.IsURI(uri) {
		return openPostgres(ctx, uri, role)
	}
	path, err := cfg.ResolveBolt(uri)
	if err != nil {
		return nil, err
	}
	if source {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("the source store %s: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("the destination store's directory: %w", err)
	}
	s, err := boltstore.Open(path, boltstore.Options{Timeout: cfg.LockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("the %s store %s is in use: another process (a running server?) holds its lock; stop it first, copy-store needs the store to itself", role, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the %s store: %w", role, err)
	}
	if !source {
		// copy-store holds the file's lock: nobody else reads or writes
		// it until the copy ends, so commits skip fsync and FinishImport
		// syncs once.
		s.BulkImport()
	}
	auth, err := boltauth.New(s.DB())
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("opening the %s store's users: %w", role, err)
	}
	return &endpoint{name: path, store: s, auth: authStream{auth}, close: s.Close}, nil
}

// printReport writes the verification table: per kind, what was read
// from the source and what the destination holds afterwards.
func printReport(w io.Writer, rep *storecopy.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KIND\tSOURCE\tDESTINATION\tCHECK\t")
	d := rep.Destination.Kinds()
	bad := map[string]bool{}
	for _, m := range rep.Mismatches {
		bad[m.Kind] = true
	}
	for i, k := range rep.Source.Kinds() {
		mark := "ok"
		if bad[k.Name] {
			mark = "MISMATCH"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", k.Name, k.Value, d[i].Value, mark)
	}
	_ = tw.Flush()
}

// PrintCounts writes the table an import or export ends with: one row per
// kind of record with a count (kinds at zero left out) under the heading
// head, then the artifact files and bytes copied.
func PrintCounts(w io.Writer, head string, c storecopy.Counts, artifactFiles, artifactBytes int64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "KIND\t%s\t\n", head)
	for _, k := range c.Kinds() {
		if k.Value != 0 {
			fmt.Fprintf(tw, "%s\t%d\t\n", k.Name, k.Value)
		}
	}
	fmt.Fprintf(tw, "artifact_files\t%d\t\n", artifactFiles)
	fmt.Fprintf(tw, "artifact_bytes\t%d\t\n", artifactBytes)
	_ = tw.Flush()
}
