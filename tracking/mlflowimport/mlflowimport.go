// Package mlflowimport brings the data of an MLflow installation into a
// caddy-mlflow store: experiments, runs with their ids and full metric
// histories, dataset inputs, the model registry and the runs' artifacts.
//
// A Source reads one kind of MLflow installation (the file store under
// filestore, the SQL schema under sqlsource; a REST source plugs in the
// same way) and hands over records; Import writes them through the
// store's tracking.Importer, which keeps ids and timestamps. Import is
// idempotent (a run already complete in the destination is skipped) and
// resumable (a run interrupted half-way is written again whole), and a
// bad source record is reported and skipped, never half-written.
package mlflowimport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"sync"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// Problem is a source record that could not be read; it is skipped.
type Problem struct {
	// Kind is the kind of record ("experiment", "run", "registered
	// model", "model version", "artifact").
	Kind string
	// ID names the record (an id, a path or a name).
	ID string
	// Err is why it was skipped.
	Err error
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %v", p.Kind, p.ID, p.Err) }

// Run is one source run: the run (info, params, tags, latest metrics,
// inputs), its whole metric history, and where its artifacts are.
type Run struct {
	Run     *tracking.Run
	History []tracking.Metric
	// ArtifactDir is a local directory holding the run's artifacts, or
	// "" when there are none to copy.
	ArtifactDir string
	// ArtifactsUnreadable is set when the run's artifact location cannot
	// be read from here (the source reports it; the run is imported
	// without its artifacts).
	ArtifactsUnreadable bool
}

// Model is one registered model with all its versions.
type Model struct {
	Model    *tracking.RegisteredModel
	Versions []*tracking.ModelVersion
	// DeletedVersions are numbers the model had and deleted: not
	// imported, but never reused.
	DeletedVersions []string
}

// Source reads an MLflow installation. Every method reports unreadable
// records through report and goes on; a returned error stops the import.
type Source interface {
	// Name describes the source for messages.
	Name() string
	// Experiments lists every experiment, active and deleted, with tags.
	Experiments(ctx context.Context, report func(Problem)) ([]*tracking.Experiment, error)
	// Runs calls fn with each run of the experiment, active and deleted.
	Runs(ctx context.Context, exp *tracking.Experiment, report func(Problem), fn func(*Run) error) error
	// Models calls fn with each registered model and its versions.
	Models(ctx context.Context, report func(Problem), fn func(*Model) error) error
	// Close releases the source.
	Close() error
}

// Destination is the store imported into.
type Destination interface {
	tracking.Store
	tracking.Importer
	// FinishImport moves sequences past imported ids and syncs.
	FinishImport(ctx context.Context) error
}

// Options tune Import.
type Options struct {
	// Experiments, when not empty, limits the import to experiments with
	// these names or ids (and the registry to versions of their runs).
	Experiments []string
	// DryRun reads everything and reports what would be imported,
	// writing nothing.
	DryRun bool
	// ArtifactsTo, when set, is the local directory behind the
	// destination's mlflow-artifacts:/ root: artifacts are copied to
	// <ArtifactsTo>/<experiment id>/<run id>/artifacts and locations
	// rewritten to mlflow-artifacts:/... When empty, artifact locations
	// are kept as they are and nothing is copied.
	ArtifactsTo string
	// Progress, when set, is called after every record with the counts
	// so far.
	Progress func(phase string, c storecopy.Counts)
}

// Report is what an import did.
type Report struct {
	// Imported counts the records written (or, with DryRun, that would
	// be written).
	Imported storecopy.Counts
	// SkippedRuns are runs already complete in the destination.
	SkippedRuns int64
	// SkippedModels are registered models already in the destination
	// with every version.
	SkippedModels int64
	// ArtifactFiles and ArtifactBytes count the files copied;
	// ArtifactsSkipped the files already present with the same size.
	ArtifactFiles, ArtifactBytes, ArtifactsSkipped int64
	// Remapped maps source experiment ids to the destination ids they
	// got (an id held by another experiment, or the name already held).
	Remapped map[string]string
	// Problems are the source records skipped, with the reason.
	Problems []Problem
}

// historyChunk is how many metric points one ImportMetricHistory call
// carries.
const historyChunk = 5000

// Import reads src and writes it into dst.
func Import(ctx context.Context, src Source, dst Destination, opts Options) (*Report, error) {
	im := &importer{src: src, dst: dst, opts: opts, rep: &Report{Remapped: map[string]string{}}, counter: &storecopy.Counter{}}
	if opts.Progress == nil {
		im.opts.Progress = func(string, storecopy.Counts) {}
	}
	if err := im.run(ctx); err != nil {
		return im.rep, err
	}
	im.rep.Imported = im.counter.Snapshot()
	return im.rep, nil
}

type importer struct {
	src     Source
	dst     Destination
	opts    Options
	rep     *Report
	counter *storecopy.Counter
	mu      sync.Mutex
	runs    map[string]bool // run ids in scope, for the registry filter
}

func (im *importer) report(p Problem) {
	im.mu.Lock()
	im.rep.Problems = append(im.rep.Problems, p)
	im.mu.Unlock()
}

func (im *importer) progress(phase string) { im.opts.Progress(phase, im.counter.Snapshot()) }

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

func (im *importer) run(ctx context.Context) error {
	exps, err := im.src.Experiments(ctx, im.report)
	if err != nil {
		return fmt.Errorf("reading experiments from %s: %w", im.src.Name(), err)
	}
	sort.Slice(exps, func(i, j int) bool { return lessID(exps[i].ExperimentID, exps[j].ExperimentID) })
	im.runs = map[string]bool{}
	for _, e := range exps {
		if !im.wanted(e) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		id, err := im.experiment(ctx, e)
		if err != nil {
			var te *tracking.Error
			if errors.As(err, &te) {
				im.report(Problem{Kind: "experiment", ID: e.ExperimentID, Err: err})
				continue
			}
			return err
		}
		if err := im.src.Runs(ctx, e, im.report, func(r *Run) error { return im.oneRun(ctx, id, r) }); err != nil {
			return fmt.Errorf("reading the runs of experiment %s: %w", e.ExperimentID, err)
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
			im.counter.ImportExperiment(ctx, e)
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

// complete reports whether the destination already holds run r whole:
// present and with as many history points per key as the
// source has (exact duplicates once).
func (im *importer) complete(ctx context.Context, r *Run) (bool, error) {
	have, err := im.dst.GetRun(ctx, r.Run.Info.RunID)
	if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up run %s: %w", r.Run.Info.RunID, err)
	}
	_ = have
	want := distinctPerKey(r.History)
	for key, n := range want {
		got := 0
		err := im.dst.MetricHistory(ctx, r.Run.Info.RunID, key, 5000, func(ms []tracking.Metric) error {
			got += len(ms)
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("reading the history of %s in run %s: %w", key, r.Run.Info.RunID, err)
		}
		if got != n {
			return false, nil
		}
	}
	return true, nil
}

type pointKey struct {
	key      string
	value    uint64
	ts, step int64
}

func distinctPerKey(ms []tracking.Metric) map[string]int {
	seen := map[pointKey]bool{}
	out := map[string]int{}
	for _, m := range ms {
		k := pointKey{m.Key, math.Float64bits(tracking.ClampMetricValue(m.Value)), m.Timestamp, m.Step}
		if math.IsNaN(m.Value) {
			k.value = math.Float64bits(math.NaN())
		}
		if !seen[k] {
			seen[k] = true
			out[m.Key]++
		}
	}
	return out
}

func (im *importer) oneRun(ctx context.Context, expID string, r *Run) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	im.runs[r.Run.Info.RunID] = true
	done, err := im.complete(ctx, r)
	if err != nil {
		return err
	}
	if done {
		im.rep.SkippedRuns++
		return nil
	}
	run := *r.Run
	run.Info.ExperimentID = expID
	if im.opts.ArtifactsTo != "" {
		run.Info.ArtifactURI = "mlflow-artifacts:/" + expID + "/" + run.Info.RunID + "/artifacts"
	}
	_ = im.counter.ImportRun(ctx, &run)
	_ = im.counter.ImportMetricHistory(ctx, run.Info.RunID, r.History)
	if im.opts.DryRun {
		im.progress("runs")
		return nil
	}
	// Artifacts first: a run present in the destination has them.
	if im.opts.ArtifactsTo != "" && r.ArtifactDir != "" {
		dir := filepath.Join(im.opts.ArtifactsTo, expID, run.Info.RunID, "artifacts")
		if err := im.copyTree(ctx, r.ArtifactDir, dir); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			im.report(Problem{Kind: "run", ID: run.Info.RunID, Err: fmt.Errorf("copying artifacts: %w", err)})
			return nil
		}
	}
	// ImportRun writes info, params, tags, inputs and latest metrics in
	// one transaction; the history follows. An interruption in between
	// leaves fewer history points than the source has, which complete
	// sees on the next run, and the run is written again whole.
	if err := im.dst.ImportRun(ctx, &run); err != nil {
		if te := (*tracking.Error)(nil); errors.As(err, &te) {
			im.report(Problem{Kind: "run", ID: run.Info.RunID, Err: err})
			return nil
		}
		return fmt.Errorf("importing run %s: %w", run.Info.RunID, err)
	}
	for i := 0; i < len(r.History); i += historyChunk {
		j := min(i+historyChunk, len(r.History))
		if err := im.dst.ImportMetricHistory(ctx, run.Info.RunID, r.History[i:j]); err != nil {
			return fmt.Errorf("importing the metric history of run %s: %w", run.Info.RunID, err)
		}
	}
	im.progress("runs")
	return nil
}
