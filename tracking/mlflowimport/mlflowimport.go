// Package mlflowimport brings the data of an MLflow installation into a
// caddy-mlflow store: experiments, runs with their ids and full metric
// histories, dataset inputs, logged models, traces, the model registry
// and the artifacts of runs, logged models and traces.
//
// A Source reads one kind of MLflow installation (the file store under
// filestore, the SQL schema under sqlsource; a REST source plugs in the
// same way) and hands over records, streaming: a run's metric history
// comes in bounded chunks and artifacts are ArtifactTrees opened file by
// file. Import writes them through the store's tracking.Importer, which
// keeps ids and timestamps.
//
// Import is idempotent and resumable without holding histories. The
// destination marks a run "import pending" in the transaction that
// writes it (ImportRun) and clears the mark when its last history chunk
// is in (FinishRunImport). A run is complete in the destination when it
// is present, not pending, and its info, params, tags, latest metrics
// and dataset inputs equal the source's: such a run is skipped (its
// artifacts are still compared, and missing or changed files copied);
// any other run (absent, cut off
// by an interrupted import, or one that gained data in the source since)
// is written again whole. Logged models and traces are skipped when the
// destination holds them equal. A bad source record is reported as a
// Problem and skipped, never half-written.
package mlflowimport

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// Destination is the store imported into.
type Destination interface {
	tracking.Store
	tracking.ImportTarget
}

// Options tune Import.
type Options struct {
	// Experiments, when not empty, limits the import to experiments with
	// these names or ids (and the registry to versions of their runs).
	Experiments []string
	// DryRun reads everything and reports what would be imported,
	// writing nothing.
	DryRun bool
	// ArtifactsTo, when set, is the local directory (or the
	// gs://bucket/prefix, see OpenSink) behind the
	// destination's mlflow-artifacts:/ root: artifacts are copied to
	// <ArtifactsTo>/<experiment id>/<run id>/artifacts (logged models
	// to .../models/<model id>/artifacts, traces to
	// .../traces/<trace id>/artifacts) and locations rewritten to
	// mlflow-artifacts:/... When empty, artifact locations are kept as
	// they are and nothing is copied.
	ArtifactsTo string
	// GCSEndpoint, for a gs:// ArtifactsTo, is the server's gcs_endpoint
	// (an emulator or private endpoint); "" uses GCS itself.
	GCSEndpoint string
	// Progress, when set, is called after every record with the counts
	// so far (never twice at once).
	Progress func(phase string, c storecopy.Counts)
	// Status, when set, is called as Progress is, with the whole state
	// (bytes, skipped records and the source's estimate).
	Status func(Status)
}

// Status is the state of a running import.
type Status struct {
	// Phase is what is being imported ("experiments", "logged models",
	// "runs", "traces", "registry", "artifacts").
	Phase string
	// Counts are the records written so far.
	Counts storecopy.Counts
	// Skipped counts runs, logged models, traces and registered models
	// found complete in the destination.
	Skipped int64
	// RunsDone are the runs written or found complete.
	RunsDone int64
	// ArtifactFiles and ArtifactBytes are the artifact files and bytes
	// done (copied or found there).
	ArtifactFiles, ArtifactBytes int64
	// Estimate is the source's guess of its size (zero when unknown).
	Estimate Estimate
}

// Report is what an import did.
type Report struct {
	// Imported counts the records written (or, with DryRun, that would
	// be written).
	Imported storecopy.Counts
	// SkippedRuns are runs already complete in the destination.
	SkippedRuns int64
	// SkippedLoggedModels and SkippedTraces are logged models and
	// traces the destination already held as they are.
	SkippedLoggedModels, SkippedTraces int64
	// SkippedModels are registered models already in the destination
	// with every version.
	SkippedModels int64
	// ArtifactFiles and ArtifactBytes count the files copied;
	// ArtifactsSkipped the files already present and the same.
	ArtifactFiles, ArtifactBytes, ArtifactsSkipped int64
	// Remapped maps source experiment ids to the destination ids they
	// got (an id held by another experiment, or the name already held).
	Remapped map[string]string
	// Problems are the source records skipped, with the reason.
	Problems []Problem
}

// Import reads src and writes it into dst.
func Import(ctx context.Context, src Source, dst Destination, opts Options) (*Report, error) {
	im := &importer{src: src, dst: dst, opts: opts, rep: &Report{Remapped: map[string]string{}}, counter: &storecopy.Counter{}}
	if est, ok := src.(Estimator); ok && opts.Status != nil {
		if e, err := est.Estimate(ctx, opts.Experiments); err == nil {
			im.estimate = e
		}
	}
	if opts.ArtifactsTo != "" {
		sink, closeSink, err := OpenSink(ctx, opts.ArtifactsTo, opts.GCSEndpoint)
		if err != nil {
			return im.rep, fmt.Errorf("artifacts destination: %w", err)
		}
		defer func() { _ = closeSink() }()
		im.sink = sink
	}
	err := im.run(ctx)
	im.rep.Imported = im.counter.Snapshot()
	return im.rep, err
}

type importer struct {
	src       Source
	dst       Destination
	opts      Options
	rep       *Report
	counter   *storecopy.Counter
	estimate  Estimate
	bytesDone atomic.Int64
	mu        sync.Mutex
	cbMu      sync.Mutex      // serialises the progress callbacks
	runs      map[string]bool // run ids in scope, for the registry filter
	// moved maps the ids of runs and logged models whose artifacts were
	// copied to the destination's artifact root to their artifact
	// location in the source and in the destination, so registry
	// sources that point into them are rewritten (sources.go).
	moved map[string]movedLocation
	sink  ArtifactSink // behind ArtifactsTo (sink.go)
}

func (im *importer) report(p Problem) {
	im.mu.Lock()
	im.rep.Problems = append(im.rep.Problems, p)
	im.mu.Unlock()
}

// progress calls the callbacks, one call at a time (artifact files are
// copied by several goroutines).
func (im *importer) progress(phase string) {
	if im.opts.Progress == nil && im.opts.Status == nil {
		return
	}
	im.cbMu.Lock()
	defer im.cbMu.Unlock()
	c := im.counter.Snapshot()
	if im.opts.Progress != nil {
		im.opts.Progress(phase, c)
	}
	if im.opts.Status != nil {
		im.mu.Lock()
		st := Status{Phase: phase, Counts: c, Estimate: im.estimate, ArtifactBytes: im.bytesDone.Load(),
			Skipped:       im.rep.SkippedRuns + im.rep.SkippedLoggedModels + im.rep.SkippedTraces + im.rep.SkippedModels,
			RunsDone:      c.Runs + im.rep.SkippedRuns,
			ArtifactFiles: im.rep.ArtifactFiles + im.rep.ArtifactsSkipped}
		im.mu.Unlock()
		im.opts.Status(st)
	}
}

func (im *importer) wanted(e *tracking.Experiment) bool {
	if len(im.opts.Experiments) == 0 {
		return true
	}
	for _, w := range im.opts.Experiments {
		if w == e.Name || w == e.ExperimentID {
			return true
		}
	}
	return false
}

// isStoreErr reports whether err is the destination's verdict on a
// record (a tracking.Error), which makes that record a Problem rather
// than a reason to stop.
func isStoreErr(err error) bool {
	var te *tracking.Error
	return errors.As(err, &te)
}

func (im *importer) run(ctx context.Context) error {
	exps, err := im.src.Experiments(ctx, im.report)
	if err != nil {
		return fmt.Errorf("reading experiments from %s: %w", im.src.Name(), err)
	}
	sort.Slice(exps, func(i, j int) bool { return lessID(exps[i].ExperimentID, exps[j].ExperimentID) })
	im.runs = map[string]bool{}
	im.moved = map[string]movedLocation{}
	for _, e := range exps {
		if !im.wanted(e) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		id, err := im.experiment(ctx, e)
		if err != nil {
			if isStoreErr(err) {
				im.report(Problem{Kind: "experiment", ID: e.ExperimentID, Err: err})
				continue
			}
			return err
		}
		// Logged models before runs (runs name them as inputs and
		// outputs), traces after (they link runs).
		if err := im.src.LoggedModels(ctx, e, im.report, func(m *LoggedModel) error { return im.loggedModel(ctx, id, m) }); err != nil {
			return fmt.Errorf("reading the logged models of experiment %s: %w", e.ExperimentID, err)
		}
		if err := im.src.Runs(ctx, e, im.report, func(r *Run) error { return im.oneRun(ctx, id, r) }); err != nil {
			return fmt.Errorf("reading the runs of experiment %s: %w", e.ExperimentID, err)
		}
		if err := im.src.Traces(ctx, e, im.report, func(t *Trace) error { return im.trace(ctx, id, t) }); err != nil {
			return fmt.Errorf("reading the traces of experiment %s: %w", e.ExperimentID, err)
		}
	}
	if err := im.src.Models(ctx, im.report, func(m *Model) error { return im.model(ctx, m) }); err != nil {
		return fmt.Errorf("reading the registry: %w", err)
	}
	if im.opts.DryRun {
		return nil
	}
	if err := im.dst.FinishImport(ctx); err != nil {
		return fmt.Errorf("finishing the import: %w", err)
	}
	return nil
}

// experiment writes e (or finds it already there) and returns its id in
// the destination.
func (im *importer) experiment(ctx context.Context, e *tracking.Experiment) (string, error) {
	out := *e
	byName, err := im.dst.GetExperimentByName(ctx, e.Name)
	if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		return "", fmt.Errorf("looking up experiment %q: %w", e.Name, err)
	}
	if byName != nil && err == nil {
		// Same name: imported before (or the destination's own
		// experiment of that name, such as Default): runs go there.
		if byName.ExperimentID != e.ExperimentID {
			im.rep.Remapped[e.ExperimentID] = byName.ExperimentID
		}
		return byName.ExperimentID, nil
	}
	held, err := im.dst.GetExperiment(ctx, e.ExperimentID)
	switch {
	case err == nil && held != nil:
		// The id belongs to another experiment: take a new one.
		if im.opts.DryRun {
			im.rep.Remapped[e.ExperimentID] = "(new)"
			_ = im.counter.ImportExperiment(ctx, e)
			return e.ExperimentID, nil
		}
		id, err := im.dst.CreateExperiment(ctx, tracking.CreateExperiment{Name: e.Name, ArtifactLocation: e.ArtifactLocation})
		if err != nil {
			return "", fmt.Errorf("creating experiment %q: %w", e.Name, err)
		}
		im.rep.Remapped[e.ExperimentID] = id
		out.ExperimentID = id
	case err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist):
		return "", fmt.Errorf("looking up experiment %s: %w", e.ExperimentID, err)
	}
	if im.opts.ArtifactsTo != "" {
		out.ArtifactLocation = "mlflow-artifacts:/" + out.ExperimentID
	}
	_ = im.counter.ImportExperiment(ctx, &out)
	if !im.opts.DryRun {
		if err := im.dst.ImportExperiment(ctx, &out); err != nil {
			return "", fmt.Errorf("importing experiment %s: %w", e.ExperimentID, err)
		}
	}
	im.progress("experiments")
	return out.ExperimentID, nil
}

// artifactDir is where an entity's artifacts go in the sink, and
// its mlflow-artifacts:/ location: <exp>/<parts...>/artifacts.
func (im *importer) artifactDir(expID string, parts ...string) (dir, uri string) {
	rel := expID
	for _, p := range parts {
		rel += "/" + p
	}
	rel += "/artifacts"
	return rel, "mlflow-artifacts:/" + rel
}

// complete reports whether the destination already holds run (as the
// import would write it) whole: present, not marked import pending, and
// equal in info, params, tags, latest metrics and dataset inputs.
func (im *importer) complete(ctx context.Context, run *tracking.Run) (bool, error) {
	id := run.Info.RunID
	pending, err := im.dst.RunImportPending(ctx, id)
	if err != nil {
		return false, fmt.Errorf("looking up run %s: %w", id, err)
	}
	if pending {
		return false, nil
	}
	have, err := im.dst.GetRun(ctx, id)
	if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up run %s: %w", id, err)
	}
	return sameRun(have, run), nil
}

func (im *importer) oneRun(ctx context.Context, expID string, r *Run) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	run := *r.Run
	run.Info.ExperimentID = expID
	if run.Info.RunID == "" {
		run.Info.RunID = run.Info.RunUUID
	}
	id := run.Info.RunID
	im.runs[id] = true
	if r.History == nil {
		r.History = func(context.Context, func([]tracking.Metric) error) error { return nil }
	}
	var artDir string
	if im.opts.ArtifactsTo != "" {
		artDir, run.Info.ArtifactURI = im.artifactDir(expID, id)
		im.noteMoved(id, r.Run.Info.ArtifactURI, run.Info.ArtifactURI)
	}
	done, err := im.complete(ctx, &run)
	if err != nil {
		return err
	}
	if done {
		if !im.opts.DryRun && artDir != "" && r.Artifacts != nil {
			if err := im.copyTree(ctx, r.Artifacts, artDir); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				im.report(Problem{Kind: "artifact", ID: id, Err: fmt.Errorf("copying artifacts from %s: %w", r.Artifacts.Location(), err)})
			}
		}
		im.mu.Lock()
		im.rep.SkippedRuns++
		im.mu.Unlock()
		im.progress("runs")
		return nil
	}
	if im.opts.DryRun {
		_ = im.counter.ImportRun(ctx, &run)
		err := r.History(ctx, func(ms []tracking.Metric) error { return im.counter.ImportMetricHistory(ctx, id, ms) })
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			im.report(Problem{Kind: "run", ID: id, Err: fmt.Errorf("metric history: %w", err)})
		}
		im.progress("runs")
		return nil
	}
	// Artifacts first: a run present and complete in the destination
	// has them.
	if artDir != "" && r.Artifacts != nil {
		if err := im.copyTree(ctx, r.Artifacts, artDir); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			im.report(Problem{Kind: "run", ID: id, Err: fmt.Errorf("copying artifacts from %s: %w", r.Artifacts.Location(), err)})
			return nil
		}
	}
	// ImportRun writes info, params, tags, inputs and latest metrics and
	// marks the run import pending, in one transaction; the history
	// follows in chunks, and FinishRunImport clears the mark. A run cut
	// off in between stays pending, and the next import writes it again.
	if err := im.dst.ImportRun(ctx, &run); err != nil {
		if isStoreErr(err) {
			im.report(Problem{Kind: "run", ID: id, Err: err})
			return nil
		}
		return fmt.Errorf("importing run %s: %w", id, err)
	}
	_ = im.counter.ImportRun(ctx, &run)
	var writeErr error
	err = r.History(ctx, func(ms []tracking.Metric) error {
		if len(ms) == 0 {
			return nil
		}
		if err := im.dst.ImportMetricHistory(ctx, id, ms); err != nil {
			writeErr = fmt.Errorf("importing the metric history of run %s: %w", id, err)
			return writeErr
		}
		_ = im.counter.ImportMetricHistory(ctx, id, ms)
		im.progress("runs")
		return nil
	})
	switch {
	case writeErr != nil:
		return writeErr
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		// The source's history broke off: the run stays marked
		// pending (not complete), and is written again whole by the
		// next import.
		im.report(Problem{Kind: "run", ID: id, Err: fmt.Errorf("metric history (the run is left incomplete): %w", err)})
		return nil
	}
	if err := im.dst.FinishRunImport(ctx, id); err != nil {
		return fmt.Errorf("finishing the import of run %s: %w", id, err)
	}
	im.progress("runs")
	return nil
}

// loggedModel writes a logged model and its artifacts unless the
// destination holds it equal.
func (im *importer) loggedModel(ctx context.Context, expID string, m *LoggedModel) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lm := *m.Model
	lm.Info.ExperimentID = expID
	id := lm.Info.ModelID
	var artDir string
	if im.opts.ArtifactsTo != "" {
		artDir, lm.Info.ArtifactURI = im.artifactDir(expID, "models", id)
		im.noteMoved(id, m.Model.Info.ArtifactURI, lm.Info.ArtifactURI)
	}
	have, err := im.dst.GetLoggedModel(ctx, id)
	if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		return fmt.Errorf("looking up logged model %s: %w", id, err)
	}
	same := err == nil && sameLoggedModel(have, &lm)
	if !im.opts.DryRun && artDir != "" && m.Artifacts != nil {
		if err := im.copyTree(ctx, m.Artifacts, artDir); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			im.report(Problem{Kind: "logged model", ID: id, Err: fmt.Errorf("copying artifacts from %s: %w", m.Artifacts.Location(), err)})
			return nil
		}
	}
	if same {
		im.mu.Lock()
		im.rep.SkippedLoggedModels++
		im.mu.Unlock()
		im.progress("logged models")
		return nil
	}
	if !im.opts.DryRun {
		if err := im.dst.ImportLoggedModel(ctx, &lm); err != nil {
			if isStoreErr(err) {
				im.report(Problem{Kind: "logged model", ID: id, Err: err})
				return nil
			}
			return fmt.Errorf("importing logged model %s: %w", id, err)
		}
	}
	_ = im.counter.ImportLoggedModel(ctx, &lm)
	im.progress("logged models")
	return nil
}

// trace writes a trace and its data artifacts unless the destination
// holds it equal.
func (im *importer) trace(ctx context.Context, expID string, t *Trace) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ti := *t.Trace
	ti.ExperimentID = expID
	id := ti.RequestID
	var artDir string
	if im.opts.ArtifactsTo != "" {
		var uri string
		artDir, uri = im.artifactDir(expID, "traces", id)
		tags := make([]tracking.Tag, 0, len(ti.Tags)+1)
		for _, tg := range ti.Tags {
			if tg.Key != tracking.TraceTagArtifactLocation {
				tags = append(tags, tg)
			}
		}
		ti.Tags = append(tags, tracking.Tag{Key: tracking.TraceTagArtifactLocation, Value: uri})
	}
	have, err := im.dst.GetTraceInfo(ctx, id)
	if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		return fmt.Errorf("looking up trace %s: %w", id, err)
	}
	same := err == nil && sameTrace(have, &ti)
	if !im.opts.DryRun && artDir != "" && t.Artifacts != nil {
		if err := im.copyTree(ctx, t.Artifacts, artDir); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			im.report(Problem{Kind: "trace", ID: id, Err: fmt.Errorf("copying artifacts from %s: %w", t.Artifacts.Location(), err)})
			return nil
		}
	}
	if same {
		im.mu.Lock()
		im.rep.SkippedTraces++
		im.mu.Unlock()
		im.progress("traces")
		return nil
	}
	if !im.opts.DryRun {
		if err := im.dst.ImportTrace(ctx, &ti); err != nil {
			if isStoreErr(err) {
				im.report(Problem{Kind: "trace", ID: id, Err: err})
				return nil
			}
			return fmt.Errorf("importing trace %s: %w", id, err)
		}
	}
	_ = im.counter.ImportTrace(ctx, &ti)
	im.progress("traces")
	return nil
}
