package caddymodule

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/internal/maint"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// Store maintenance commands: `caddy mlflow backup|gc|compact`. The logic
// is in internal/maint and tracking/boltstore; this file parses flags and
// picks the path: the bbolt file directly when no server holds it, else
// the running server's admin API (maint_admin.go).

// maintUsage is appended to the mlflow command's usage.
const maintUsage = ` | backup --to FILE|gs://bucket/object | gc [--older-than 30d] [--run-ids a,b] [--experiment-ids 1,2] [--uploads-older-than 24h] | compact`

// maintLong is appended to the mlflow command's help.
const maintLong = `

Store maintenance:

  caddy mlflow backup --config Caddyfile --to /backups/mlflow-$(date +%F).db
  caddy mlflow backup --config Caddyfile --to gs://bucket/mlflow/backup.db
      A consistent snapshot (one bbolt read transaction) while the server
      runs (through the admin API) or not; the copy is verified before it
      replaces --to.
  caddy mlflow gc --config Caddyfile [--older-than 30d] [--run-ids ...] [--experiment-ids ...]
      MLflow's mlflow gc: permanently deletes deleted runs and experiments
      with their artifacts, then abandoned multipart uploads older than
      --uploads-older-than (default: the config's multipart_gc_age, 24h).
      bbolt: through the admin API while the server runs; PostgreSQL: on
      the database directly, servers running or not.
  caddy mlflow compact --config Caddyfile
      Offline only (server stopped): rewrites the file without free pages.`

// addMaintFlags adds the maintenance commands' flags to the mlflow
// command's flag set. --to is shared with copy-store.
func addMaintFlags(fs *flag.FlagSet) {
	const toUsage = "backup: the file or gs://bucket/object to write"
	if f := fs.Lookup("to"); f != nil {
		f.Usage += "; " + toUsage
	} else {
		fs.String("to", "", toUsage)
	}
	fs.String("older-than", "", "gc: only runs and experiments deleted at least this long ago (MLflow's format: 30d, 2d8h5m20s)")
	fs.String("run-ids", "", "gc: comma-separated ids of deleted runs to delete")
	fs.String("experiment-ids", "", "gc: comma-separated ids of deleted experiments to delete")
	fs.String("uploads-older-than", "", "gc: remove multipart upload staging areas idle this long (default: the config's multipart_gc_age, 24h; at least 6h)")
}

// maintCommands are the maintenance subcommands by name.
var maintCommands = map[string]func(caddycmd.Flags) (int, error){
	"backup":  cmdBackup,
	"gc":      cmdGC,
	"compact": cmdCompact,
}

func cmdBackup(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 1 {
		return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow backup --to FILE|gs://bucket/object")
	}
	to := fl.String("to")
	if to == "" {
		return caddy.ExitCodeFailedStartup, errors.New("backup needs --to FILE or --to gs://bucket/object")
	}
	t, err := resolveCLITarget(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	ctx := context.Background()
	rep, via, err := runBackup(ctx, t, to)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Printf("backup of %s written to %s (%s)\n", t.storePath, to, via)
	fmt.Printf("  size %d bytes, schema version %d, transaction %d, bbolt check passed\n", rep.Size, rep.SchemaVersion, rep.TxID)
	fmt.Printf("  %d experiments, %d runs, %d metric points, %d registered models, %d model versions\n",
		rep.Counts["exp"], rep.Counts["run"], rep.Counts["mhist"], rep.Counts["regmodel"], rep.Counts["modelver"])
	return caddy.ExitCodeSuccess, nil
}

// runBackup writes a verified snapshot of the store to to. via says how
// the snapshot was taken.
func runBackup(ctx context.Context, t *cliTarget, to string) (boltstore.FileReport, string, error) {
	// Where the snapshot comes from: the file when no server holds it,
	// else the admin API.
	var source func(w io.Writer) error
	via := "store file"
	db, err := bolt.Open(t.storePath, 0o600, &bolt.Options{ReadOnly: true, Timeout: cliLockWait})
	switch {
	case err == nil:
		defer db.Close()
		source = func(w io.Writer) error {
			_, err := boltstore.Snapshot(ctx, db, w, nil)
			return err
		}
	case errors.Is(err, bolt.ErrTimeout):
		if t.adminAddr == "" {
			return boltstore.FileReport{}, "", fmt.Errorf("the store %s is in use (a server is running?) and the config's admin API is off; enable `admin` or stop the server", t.storePath)
		}
		via = "running server, admin API " + t.adminAddr
		source = func(w io.Writer) error { return t.streamBackup(w) }
	default:
		return boltstore.FileReport{}, "", fmt.Errorf("opening the store %s: %w", t.storePath, err)
	}

	if !strings.HasPrefix(to, "gs://") {
		dst, err := filepath.Abs(to)
		if err != nil {
			return boltstore.FileReport{}, "", err
		}
		if dst == t.storePath {
			return boltstore.FileReport{}, "", errors.New("--to names the store itself")
		}
		rep, err := boltstore.WriteFileAtomic(ctx, dst, source)
		return rep, via, err
	}
	tmpDir, err := os.MkdirTemp("", "mlflow-backup-")
	if err != nil {
		return boltstore.FileReport{}, "", err
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "backup.db")
	rep, err := boltstore.WriteFileAtomic(ctx, tmp, source)
	if err != nil {
		return rep, "", err
	}
	if _, err := maint.UploadGCS(ctx, to, tmp, ""); err != nil {
		return rep, "", err
	}
	rep.Path = to
	return rep, via, nil
}

// streamBackup copies the running server's snapshot into w.
func (t *cliTarget) streamBackup(w io.Writer) error {
	body, _ := json.Marshal(adminRequest{Store: t.storePath})
	resp, err := caddycmd.AdminAPIRequest(t.adminAddr, http.MethodPost, "/mlflow/backup", nil, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the store is in use; asking the running server at %s for a snapshot: %w", t.adminAddr, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("receiving the snapshot: %w", err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("receiving the snapshot: got %d of %d bytes", n, resp.ContentLength)
	}
	return nil
}

func cmdCompact(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 1 {
		return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow compact")
	}
	t, err := resolveCLITarget(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	rep, err := boltstore.CompactFile(context.Background(), t.storePath, cliLockWait)
	if errors.Is(err, boltstore.ErrLocked) {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("the store %s is in use by a running server: compact works offline only; stop the server, compact, start it again (use `caddy mlflow backup` for a copy while it runs)", t.storePath)
	}
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	pct := 0.0
	if rep.Before > 0 {
		pct = 100 * float64(rep.Before-rep.After) / float64(rep.Before)
	}
	fmt.Printf("compacted %s: %d -> %d bytes (%.1f%% smaller), check passed, %d experiments, %d runs\n",
		t.storePath, rep.Before, rep.After, pct, rep.Counts["exp"], rep.Counts["run"])
	return caddy.ExitCodeSuccess, nil
}

func cmdGC(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 1 {
		return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow gc [--older-than 30d] [--run-ids a,b] [--experiment-ids 1,2]")
	}
	t, err := resolveCLITarget(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	ctx := context.Background()
	h, err := handlerConfig(fl, t)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	uploadsAge, err := h.multipartAge(fl.String("uploads-older-than"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	opts := maint.GCOptions{OlderThan: fl.String("older-than")}
	if opts.OlderThan != "" {
		if _, err := maint.ParseOlderThan(opts.OlderThan); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
	}
	if s := fl.String("run-ids"); s != "" {
		opts.RunIDs = strings.Split(s, ",")
	}
	if s := fl.String("experiment-ids"); s != "" {
		opts.ExperimentIDs = strings.Split(s, ",")
	}

	var arts artifact.Store
	if h.serveArtifacts() {
		if arts, err = h.cliArtifactStore(ctx); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		defer func() {
			if c, ok := arts.(io.Closer); ok {
				_ = c.Close()
			}
		}()
	}

	var gc tracking.GarbageCollector
	var s interface {
		tracking.GarbageCollector
		Close() error
	}
	if t.pgURI != "" {
		// PostgreSQL is shared by every replica: gc works on the database
		// directly, whether servers run or not.
		s, err = pgstore.Open(ctx, t.pgURI, pgdb.Options{MaxConns: 2, ApplicationName: "caddy-mlflow-cli"})
	} else {
		s, err = boltstore.Open(t.storePath, boltstore.Options{Timeout: cliLockWait})
	}
	switch {
	case err == nil:
		defer s.Close()
		gc = s
	case t.pgURI == "" && errors.Is(err, bolt.ErrTimeout):
		if t.adminAddr == "" {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("the store %s is in use (a server is running?) and the config's admin API is off; enable `admin` or stop the server", t.storePath)
		}
		gc = remoteGC{t: t}
	default:
		return caddy.ExitCodeFailedStartup, err
	}

	res, err := maint.CollectGarbage(ctx, gc, maint.StoreDeleter(arts, maint.DirectDeleter(h.GCSEndpoint)), opts, os.Stdout)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if sw, ok := arts.(artifact.Sweeper); ok {
		sr, err := sw.Sweep(ctx, artifact.SweepOptions{StagingAge: uploadsAge, TempAge: uploadsAge})
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("removing abandoned uploads: %w", err)
		}
		fmt.Printf("Removed %d abandoned multipart upload(s) and %d interrupted upload file(s) (%d bytes) idle for more than %s.\n",
			sr.Stagings, sr.Temps, sr.Bytes, uploadsAge)
	}
	fmt.Printf("Permanently deleted %d run(s) and %d experiment(s).\n", len(res.Runs), len(res.Experiments))
	return caddy.ExitCodeSuccess, nil
}

// handlerConfig returns the mlflow handler of the config whose store is
// t's (its bbolt file, or its PostgreSQL URI with placeholders replaced).
func handlerConfig(fl caddycmd.Flags, t *cliTarget) (*Handler, error) {
	cfg, _, _, err := caddycmd.LoadConfig(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return nil, fmt.Errorf("loading the config: %w", err)
	}
	var root any
	if err := json.Unmarshal(cfg, &root); err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	var found map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["handler"] == "mlflow" && found == nil {
				s, _ := x["backend_store_uri"].(string)
				if t.pgURI != "" {
					if caddy.NewReplacer().ReplaceKnown(s, "") == t.pgURI {
						found = x
					}
				} else if p, err := ResolveBackendStoreURI(s); err == nil && p == t.storePath {
					found = x
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
	if found == nil {
		return nil, fmt.Errorf("no mlflow handler of the config uses the store %s", cmp.Or(t.storePath, pgdb.Redact(t.pgURI)))
	}
	raw, _ := json.Marshal(found)
	h := new(Handler)
	if err := json.Unmarshal(raw, h); err != nil {
		return nil, fmt.Errorf("reading the mlflow handler's config: %w", err)
	}
	h.logger = zap.NewNop()
	return h, nil
}

// multipartAge is --uploads-older-than, else the config's
// multipart_gc_age, else the default; never less than the validity of
// part URLs.
func (h *Handler) multipartAge(flag string) (time.Duration, error) {
	age := artifact.DefaultStagingAge
	if h.Uploads != nil && h.Uploads.MultipartGCAge > 0 {
		age = time.Duration(h.Uploads.MultipartGCAge)
	}
	if flag != "" {
		d, err := caddy.ParseDuration(flag)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("--uploads-older-than %q: want a duration such as 24h", flag)
		}
		age = d
	}
	if age < artifact.PartURLTTL {
		return 0, fmt.Errorf("--uploads-older-than %s: must be at least %s, the validity of part URLs", age, artifact.PartURLTTL)
	}
	return age, nil
}

// cliArtifactStore opens the handler's proxied artifact store for the
// CLI (never with signed downloads: the CLI only lists and deletes).
func (h *Handler) cliArtifactStore(ctx context.Context) (artifact.Store, error) {
	var err error
	if h.artifactsDir, err = ResolveArtifactsDestination(h.ArtifactsDestination); err != nil {
		return nil, err
	}
	h.SignedURLDownloads = nil
	return h.openArtifactStore(ctx)
}

// remoteGC is a tracking.GarbageCollector on the running server's store,
// through the admin API.
type remoteGC struct{ t *cliTarget }

var _ tracking.GarbageCollector = remoteGC{}

func (r remoteGC) call(ctx context.Context, op, id string, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	body, _ := json.Marshal(gcRequest{Store: r.t.storePath, Op: op, ID: id})
	resp, err := caddycmd.AdminAPIRequest(r.t.adminAddr, http.MethodPost, "/mlflow/gc", nil, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the store is in use; asking the running server at %s: %w", r.t.adminAddr, err)
	}
	defer resp.Body.Close()
	var ans gcAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return fmt.Errorf("reading the admin API answer: %w", err)
	}
	if ans.ErrorCode != "" {
		return tracking.Errorf(tracking.ErrorCode(ans.ErrorCode), "%s", ans.Message)
	}
	if out != nil && len(ans.Result) > 0 {
		return json.Unmarshal(ans.Result, out)
	}
	return nil
}

func (r remoteGC) DeletedRuns(ctx context.Context) (out []tracking.GCRun, err error) {
	err = r.call(ctx, "deleted_runs", "", &out)
	return out, err
}

func (r remoteGC) DeletedExperiments(ctx context.Context) (out []tracking.GCExperiment, err error) {
	err = r.call(ctx, "deleted_experiments", "", &out)
	return out, err
}

func (r remoteGC) GCRun(ctx context.Context, id string) (out tracking.GCRun, err error) {
	err = r.call(ctx, "run", id, &out)
	return out, err
}

func (r remoteGC) GCExperiment(ctx context.Context, id string) (out tracking.GCExperiment, err error) {
	err = r.call(ctx, "experiment", id, &out)
	return out, err
}

func (r remoteGC) ExperimentRuns(ctx context.Context, id string) (out []tracking.GCRun, err error) {
	err = r.call(ctx, "experiment_runs", id, &out)
	return out, err
}

func (r remoteGC) HardDeleteRun(ctx context.Context, id string) error {
	return r.call(ctx, "hard_delete_run", id, nil)
}

func (r remoteGC) HardDeleteExperiment(ctx context.Context, id string) error {
	return r.call(ctx, "hard_delete_experiment", id, nil)
}
