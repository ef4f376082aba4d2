package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/internal/copystore"
	"github.com/caddy-mlflow/caddy-mlflow/internal/importcmd"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// Online import: `caddy mlflow import` with --config while the server
// runs. The bbolt file is locked by the server, so the CLI asks it, through
// the admin API (POST /mlflow/import), to run the import inside its own
// process, on its open database and the running handler's artifact
// directory. The
// answer is a stream of newline-delimited JSON importEvents: one start
// event, progress events, and one final event with the report. The import
// runs on the request's context: when the CLI goes away (Ctrl-C), the
// connection closes and the import stops between records, as an offline
// import does when interrupted; running the command again continues.

// importRequest is the body of POST /mlflow/import.
type importRequest struct {
	// Store is the absolute path of the running handler's bbolt file.
	Store string `json:"store"`
	// From is the MLflow source (absolute paths: the server's working
	// directory is not the CLI's).
	From string `json:"from"`
	// ArtifactsFrom is --artifacts-from (absolute or gs://).
	ArtifactsFrom string   `json:"artifacts_from,omitempty"`
	Experiments   []string `json:"experiments,omitempty"`
	DryRun        bool     `json:"dry_run,omitempty"`
}

// importEvent is one line of the /mlflow/import stream.
type importEvent struct {
	// Start: the source and destination, first line.
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination,omitempty"`
	// Note is a message for the user (e.g. artifacts not copied).
	Note string `json:"note,omitempty"`
	// Progress.
	Phase  string            `json:"phase,omitempty"`
	Counts *storecopy.Counts `json:"counts,omitempty"`
	// Final line: the report, and the error if the import failed.
	Report      *importReport `json:"report,omitempty"`
	Error       string        `json:"error,omitempty"`
	Interrupted bool          `json:"interrupted,omitempty"`
	Done        bool          `json:"done,omitempty"`
}

// importReport is mlflowimport.Report on the wire: every field of the
// report as it is (new fields included), except the problems, whose
// errors are sent as their messages.
type importReport struct {
	*mlflowimport.Report
	Problems []importProblem `json:"Problems"`
}

type importProblem struct {
	Kind  string `json:"kind"`
	ID    string `json:"id"`
	Error string `json:"error"`
}

func wireReport(r *mlflowimport.Report) *importReport {
	out := &importReport{Report: r}
	for _, p := range r.Problems {
		msg := ""
		if p.Err != nil {
			msg = p.Err.Error()
		}
		out.Problems = append(out.Problems, importProblem{Kind: p.Kind, ID: p.ID, Error: msg})
	}
	return out
}

func (r *importReport) report() *mlflowimport.Report {
	out := &mlflowimport.Report{}
	if r.Report != nil {
		*out = *r.Report
	}
	if out.Remapped == nil {
		out.Remapped = map[string]string{}
	}
	out.Problems = nil
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, mlflowimport.Problem{Kind: p.Kind, ID: p.ID, Err: errors.New(p.Error)})
	}
	return out
}

// liveHandlers are the provisioned mlflow handlers with a bbolt store, by
// store path, newest last: the admin routes run on the running server's
// own store and artifact directory.
var (
	liveMu       sync.Mutex
	liveHandlers = map[string][]*Handler{}
)

// registerLive records h until its config is unloaded.
func (h *Handler) registerLive(ctx caddy.Context) {
	if h.boltPath == "" || h.store == nil {
		return
	}
	path := h.boltPath
	liveMu.Lock()
	liveHandlers[path] = append(liveHandlers[path], h)
	liveMu.Unlock()
	ctx.OnCancel(func() {
		liveMu.Lock()
		defer liveMu.Unlock()
		hs := liveHandlers[path]
		for i, x := range hs {
			if x == h {
				hs = append(hs[:i:i], hs[i+1:]...)
				break
			}
		}
		if len(hs) == 0 {
			delete(liveHandlers, path)
		} else {
			liveHandlers[path] = hs
		}
	})
}

// liveHandler returns the newest running handler whose store is path.
func liveHandler(path string) *Handler {
	liveMu.Lock()
	defer liveMu.Unlock()
	if hs := liveHandlers[path]; len(hs) > 0 {
		return hs[len(hs)-1]
	}
	return nil
}

// importArtifactsDir is the artifacts destination imported artifacts are
// copied into (the local directory or gs:// URI behind
// mlflow-artifacts:/), or "" with a note when the handler serves none.
func (h *Handler) importArtifactsDir() (dir, note string) {
	if !h.serveArtifacts() {
		return "", "serve_artifacts is off: artifact locations are kept as they are, no artifact is copied"
	}
	return h.artifactsDir, ""
}

// importHook, when set (by tests), is called with every progress update
// of an online import, on the import's goroutine.
var importHook atomic.Pointer[func(ctx context.Context, phase string, c storecopy.Counts)]

// importStreamInterval bounds how often progress lines are sent.
const importStreamInterval = 100 * time.Millisecond

var _ mlflowimport.Destination = (*boltstore.Store)(nil)

func serveImport(w http.ResponseWriter, r *http.Request) error {
	var req importRequest
	if err := decodeAdmin(r, &req); err != nil {
		return err
	}
	if req.From == "" {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("import needs from")}
	}
	if importcmd.IsRemote(req.From) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: importcmd.ErrRemoteOnline}
	}
	h := liveHandler(req.Store)
	if h == nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no running mlflow handler uses the store %s", req.Store)}
	}
	// The pooled database's maintenance store, not the handler's own:
	// it outlives a config reload during the import (the pool keeps the
	// database open across reloads; the old handler's store is closed).
	dst, err := maintStore(h.boltPath)
	if err != nil {
		return err
	}
	dst.SetCommitObserver(metrics)
	ctx := r.Context()
	src, err := importcmd.OpenSource(ctx, req.From, req.ArtifactsFrom)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	defer src.Close()
	artsTo, note := h.importArtifactsDir()

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(ev importEvent) {
		mu.Lock()
		defer mu.Unlock()
		if enc.Encode(ev) == nil {
			_ = rc.Flush()
		}
	}
	send(importEvent{Source: src.Name(), Destination: h.boltPath, Note: note})

	log := caddy.Log().Named("mlflow.import")
	log.Info("import started", zap.String("store", h.boltPath), zap.String("source", src.Name()),
		zap.String("artifacts_to", artsTo), zap.Bool("dry_run", req.DryRun))
	rec := newImportRecorder(req.DryRun)
	var progressMu sync.Mutex // in case the importer reports from several goroutines
	var lastPhase string
	var lastSent time.Time
	progress := func(phase string, c storecopy.Counts) {
		rec.observe(c)
		if hook := importHook.Load(); hook != nil {
			(*hook)(ctx, phase, c)
		}
		progressMu.Lock()
		now := time.Now()
		if phase == lastPhase && now.Sub(lastSent) < importStreamInterval {
			progressMu.Unlock()
			return
		}
		lastPhase, lastSent = phase, now
		progressMu.Unlock()
		send(importEvent{Phase: phase, Counts: &c})
	}
	rep, err := mlflowimport.Import(ctx, src, dst, mlflowimport.Options{
		Experiments: req.Experiments, DryRun: req.DryRun, ArtifactsTo: artsTo, GCSEndpoint: h.GCSEndpoint, Progress: progress,
		Status: func(st mlflowimport.Status) { rec.artifactBytes(st.ArtifactBytes) },
	})
	progressMu.Lock()
	final := importEvent{Done: true, Phase: lastPhase}
	progressMu.Unlock()
	if rep != nil {
		if err == nil {
			rec.observe(rep.Imported)
		}
		final.Report = wireReport(rep)
	}
	if err != nil {
		final.Error = err.Error()
		final.Interrupted = ctx.Err() != nil
		log.Warn("import stopped", zap.String("store", h.boltPath), zap.Error(err), zap.Bool("interrupted", final.Interrupted))
	} else {
		log.Info("import done", zap.String("store", h.boltPath), zap.String("source", src.Name()))
	}
	send(final)
	return nil
}

// runOnlineImport runs the import on the running server through the
// admin API and prints what an offline import prints: progress on stderr,
// the summary on stdout.
func runOnlineImport(ctx context.Context, t *cliTarget, req importRequest, stdout, stderr io.Writer, tty bool) error {
	var err error
	if req.From, err = absSource(req.From); err != nil {
		return err
	}
	if req.ArtifactsFrom != "" && !strings.Contains(req.ArtifactsFrom, "://") {
		if req.ArtifactsFrom, err = filepath.Abs(req.ArtifactsFrom); err != nil {
			return err
		}
	}
	req.Store = t.storePath
	body, _ := json.Marshal(req)
	resp, err := caddycmd.AdminAPIRequest(t.adminAddr, http.MethodPost, "/mlflow/import", nil, strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("the store is in use; asking the running server at %s to import: %w", t.adminAddr, err)
	}
	// Closing the body before its end closes the connection: the server
	// sees it and stops the import.
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			resp.Body.Close()
		case <-stopped:
		}
	}()
	defer resp.Body.Close()

	p := copystore.NewProgress(stderr, "import: ", tty, 5*time.Second)
	dec := json.NewDecoder(resp.Body)
	var final *importEvent
	for {
		var ev importEvent
		if err := dec.Decode(&ev); err != nil {
			p.Done()
			if ctx.Err() != nil {
				return errors.New("interrupted: run the same command again to continue (runs already imported whole are skipped)")
			}
			if errors.Is(err, io.EOF) && final != nil {
				break
			}
			return fmt.Errorf("reading the running server's import stream: %w", err)
		}
		switch {
		case ev.Done:
			final = &ev
		case ev.Source != "":
			verb := "importing"
			if req.DryRun {
				verb = "dry run: reading"
			}
			fmt.Fprintf(stderr, "import: %s %s into %s (running server, admin API %s)\n", verb, ev.Source, ev.Destination, t.adminAddr)
			if ev.Note != "" {
				fmt.Fprintf(stderr, "import: %s\n", ev.Note)
			}
		case ev.Counts != nil:
			p.Update(ev.Phase, *ev.Counts)
		}
		if final != nil {
			break
		}
	}
	p.Done()
	if final.Report != nil {
		importcmd.PrintReport(stdout, final.Report.report(), req.DryRun)
	}
	if final.Interrupted {
		return errors.New("interrupted: run the same command again to continue (runs already imported whole are skipped)")
	}
	if final.Error != "" {
		return errors.New(final.Error)
	}
	fmt.Fprintf(stderr, "import: done in %s\n", p.Elapsed())
	return nil
}

// absSource makes a --from path absolute: the server resolves it in its own
// working directory otherwise.
func absSource(from string) (string, error) {
	switch {
	case strings.HasPrefix(from, "sqlite:///"):
		rest := strings.TrimPrefix(from, "sqlite:///")
		if strings.HasPrefix(rest, "/") || rest == "" {
			return from, nil
		}
		q := ""
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			rest, q = rest[:i], rest[i:]
		}
		abs, err := filepath.Abs(filepath.FromSlash(rest))
		if err != nil {
			return "", err
		}
		return "sqlite:///" + filepath.ToSlash(abs) + q, nil
	case strings.Contains(from, "://") || strings.HasPrefix(from, "file:"):
		return from, nil
	}
	return filepath.Abs(from)
}
