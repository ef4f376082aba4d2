// Package mlflowexport pushes the contents of a caddy-mlflow store into
// a running MLflow tracking server through its REST API (the endpoints
// the MLflow Python client uses, nothing specific to caddy-mlflow), so
// that leaving caddy-mlflow is one command: experiments, runs with their
// full metric histories, params, tags and dataset inputs, the model
// registry, and run artifacts streamed through the destination's
// artifact proxy.
//
// MLflow's API assigns new run ids, experiment ids and model version
// numbers, so the export keeps an id map (a Journal of JSON lines) that
// doubles as its progress record: a second export with the same map
// continues where the first one stopped and re-creates nothing.
package mlflowexport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// Defaults of Options.
const (
	DefaultWorkers      = 4
	DefaultHistoryChunk = mlflowclient.MaxMetricsPerBatch
	pageSize            = 200
	maxParentDepth      = 64
)

// Options tune an export.
type Options struct {
	// Experiments, when not empty, limits the export to experiments with
	// these names or ids, and the registry to versions of their runs.
	Experiments []string
	// DryRun reads everything and counts what would be exported, writing
	// nothing (not even the id map).
	DryRun bool
	// Journal is the id map; nil keeps it in memory only.
	Journal *Journal
	// ArtifactsRoot is the store behind the source server's
	// mlflow-artifacts:/ root (its artifacts_destination); nil reports
	// runs with such artifact locations as problems. Runs whose artifact
	// location is a local path or file:// URI are read there.
	ArtifactsRoot artifact.Store
	// Workers is how many runs are exported at once (DefaultWorkers).
	Workers int
	// HistoryChunk is how many metric points one log-batch carries
	// (DefaultHistoryChunk, MLflow's limit).
	HistoryChunk int
	// Progress, when set, is called as records are written.
	Progress func(phase string, c storecopy.Counts)
}

// Problem is a source record that was not exported (or not whole), with
// the reason; the export goes on without it.
type Problem struct {
	// Kind is "experiment", "run", "registered model", "model version" or
	// "artifact".
	Kind string
	// ID names the record.
	ID string
	// Err is what went wrong.
	Err error
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %v", p.Kind, p.ID, p.Err) }

// Report is what an export did.
type Report struct {
	// Exported counts what was written (with DryRun: would be).
	Exported storecopy.Counts
	// SkippedRuns and SkippedModels were already exported whole (per the
	// id map).
	SkippedRuns, SkippedModels int64
	// ArtifactFiles and ArtifactBytes count the files uploaded.
	ArtifactFiles, ArtifactBytes int64
	// Experiments maps source experiment ids to destination ids.
	Experiments map[string]string
	// Runs is how many runs the id map holds.
	Runs int
	// Problems lists what was left out.
	Problems []Problem
}

// errSkip marks a problem already reported.
var errSkip = errors.New("skipped")

type exporter struct {
	src tracking.Store
	dst *mlflowclient.Client
	o   Options
	j   *Journal

	mu       sync.Mutex
	rep      *Report
	phase    string
	failed   int                             // runs that ended as problems
	selected map[string]*tracking.Experiment // source experiments exported
	inflight map[string]*task                // source run id -> its export
	newURIs  map[string]string               // source run id -> destination artifact URI
	locals   map[string]artifact.Store
}

type task struct {
	done  chan struct{}
	newID string
	err   error
}

// Export pushes src into dst.
func Export(ctx context.Context, src tracking.Store, dst *mlflowclient.Client, opts Options) (*Report, error) {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.HistoryChunk <= 0 || opts.HistoryChunk > mlflowclient.MaxMetricsPerBatch {
		opts.HistoryChunk = DefaultHistoryChunk
	}
	if opts.Progress == nil {
		opts.Progress = func(string, storecopy.Counts) {}
	}
	x := &exporter{
		src: src, dst: dst, o: opts, j: opts.Journal,
		rep:      &Report{},
		selected: map[string]*tracking.Experiment{},
		inflight: map[string]*task{},
		newURIs:  map[string]string{},
		locals:   map[string]artifact.Store{},
	}
	if x.j == nil {
		x.j = newJournal()
	}
	err := x.run(ctx)
	x.rep.Experiments = x.j.Experiments()
	x.rep.Runs = len(x.j.Runs())
	return x.rep, err
}

func (x *exporter) count(phase string, fn func(c *storecopy.Counts)) {
	x.mu.Lock()
	if phase != "" {
		x.phase = phase
	}
	if fn != nil {
		fn(&x.rep.Exported)
	}
	ph, c := x.phase, x.rep.Exported
	x.mu.Unlock()
	x.o.Progress(ph, c)
}

func (x *exporter) problem(kind, id string, err error) {
	x.mu.Lock()
	x.rep.Problems = append(x.rep.Problems, Problem{Kind: kind, ID: id, Err: err})
	x.mu.Unlock()
}

// recoverable reports whether err is about one record (the destination
// refused it) rather than the export as a whole (unreachable server,
// cancelled, denied).
func recoverable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false
	}
	var e *mlflowclient.APIError
	if errors.As(err, &e) {
		switch e.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return false
		}
		return e.StatusCode >= 400 && e.StatusCode < 500
	}
	return errors.Is(err, errSkip)
}

func (x *exporter) run(ctx context.Context) error {
	exps, err := x.experiments(ctx)
	if err != nil {
		return err
	}
	x.count(storecopy.PhaseRuns, nil)
	for _, e := range exps {
		if err := x.experimentRuns(ctx, e); err != nil {
			return err
		}
	}
	x.count(storecopy.PhaseRegistry, nil)
	return x.registry(ctx)
}

// experiments selects the source experiments and makes sure each has a
// destination experiment.
func (x *exporter) experiments(ctx context.Context) ([]*tracking.Experiment, error) {
	x.count(storecopy.PhaseExperiments, nil)
	want := map[string]bool{}
	for _, e := range x.o.Experiments {
		want[e] = true
	}
	found := map[string]bool{}
	var out []*tracking.Experiment
	q := tracking.ExperimentQuery{ViewType: tracking.AllViews, MaxResults: pageSize}
	for {
		page, err := x.src.SearchExperiments(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("reading experiments: %w", err)
		}
		for _, e := range page.Experiments {
			if len(x.o.Experiments) > 0 && !want[e.ExperimentID] && !want[e.Name] {
				continue
			}
			found[e.ExperimentID], found[e.Name] = true, true
			out = append(out, e)
		}
		if page.NextPageToken == "" || len(page.Experiments) == 0 {
			break
		}
		q.PageToken = page.NextPageToken
	}
	if len(x.o.Experiments) > 0 {
		var missing []string
		for w := range want {
			if !found[w] {
				missing = append(missing, w)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			return nil, fmt.Errorf("no experiment in the source has the name or id %s", strings.Join(missing, ", "))
		}
	}
	for _, e := range out {
		x.selected[e.ExperimentID] = e
		if err := x.experiment(ctx, e); err != nil {
			if !recoverable(ctx, err) {
				return nil, fmt.Errorf("experiment %s (%q): %w", e.ExperimentID, e.Name, err)
			}
			x.problem("experiment", e.ExperimentID, err)
			delete(x.selected, e.ExperimentID)
		}
	}
	var kept []*tracking.Experiment
	for _, e := range out {
		if x.selected[e.ExperimentID] != nil {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// experiment creates (or finds again) the destination experiment of e,
// active so that runs can be created in it.
func (x *exporter) experiment(ctx context.Context, e *tracking.Experiment) error {
	if newID, ok := x.j.Experiment(e.ExperimentID); ok {
		if x.o.DryRun || x.j.ExperimentDone(e.ExperimentID) {
			return nil
		}
		return x.activate(ctx, newID)
	}
	if x.o.DryRun {
		x.count("", func(c *storecopy.Counts) { c.Experiments++; c.ExperimentTags += int64(len(e.Tags)) })
		return nil
	}
	tags := make([]mlflowclient.Tag, 0, len(e.Tags))
	for _, t := range e.Tags {
		tags = append(tags, mlflowclient.Tag{Key: t.Key, Value: t.Value})
	}
	newID, err := x.dst.CreateExperiment(ctx, e.Name, "", tags)
	if mlflowclient.IsAlreadyExists(err) {
		// The destination already has the name (its Default experiment,
		// or an export cut short before it was recorded): use it.
		got, gerr := x.dst.GetExperimentByName(ctx, e.Name)
		if gerr != nil {
			return fmt.Errorf("the name is taken and the experiment cannot be read: %w", gerr)
		}
		newID = got.ExperimentID
		for _, t := range tags {
			if err := x.dst.SetExperimentTag(ctx, newID, t.Key, t.Value); err != nil {
				return err
			}
		}
		if err := x.activate(ctx, newID); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := x.j.Append(Record{Kind: KindExperiment, Old: e.ExperimentID, New: newID}); err != nil {
		return err
	}
	x.count("", func(c *storecopy.Counts) { c.Experiments++; c.ExperimentTags += int64(len(e.Tags)) })
	return nil
}

// activate restores a deleted destination experiment.
func (x *exporter) activate(ctx context.Context, id string) error {
	got, err := x.dst.GetExperiment(ctx, id)
	if err != nil {
		return err
	}
	if got.LifecycleStage == tracking.LifecycleDeleted {
		return x.dst.RestoreExperiment(ctx, id)
	}
	return nil
}

// experimentRuns exports the runs of one experiment, then sets its
// lifecycle stage.
func (x *exporter) experimentRuns(ctx context.Context, e *tracking.Experiment) error {
	if x.j.ExperimentDone(e.ExperimentID) {
		return x.skipRuns(ctx, e)
	}
	before := x.failedCount()
	q := tracking.RunQuery{ExperimentIDs: []string{e.ExperimentID}, ViewType: tracking.AllViews, MaxResults: pageSize}
	for {
		page, err := x.src.SearchRuns(ctx, q)
		if err != nil {
			return fmt.Errorf("reading runs of experiment %s: %w", e.ExperimentID, err)
		}
		if err := x.runPage(ctx, page.Runs); err != nil {
			return err
		}
		if page.NextPageToken == "" || len(page.Runs) == 0 {
			break
		}
		q.PageToken = page.NextPageToken
	}
	if x.o.DryRun || x.failedCount() != before {
		return nil
	}
	newID, _ := x.j.Experiment(e.ExperimentID)
	if e.LifecycleStage == tracking.LifecycleDeleted {
		got, err := x.dst.GetExperiment(ctx, newID)
		if err != nil {
			return fmt.Errorf("experiment %s: %w", e.ExperimentID, err)
		}
		if got.LifecycleStage != tracking.LifecycleDeleted {
			if err := x.dst.DeleteExperiment(ctx, newID); err != nil {
				return fmt.Errorf("deleting experiment %s: %w", newID, err)
			}
		}
	}
	return x.j.Append(Record{Kind: KindExperimentDone, Old: e.ExperimentID})
}

// skipRuns counts the runs of an experiment exported whole before.
func (x *exporter) skipRuns(ctx context.Context, e *tracking.Experiment) error {
	q := tracking.RunQuery{ExperimentIDs: []string{e.ExperimentID}, ViewType: tracking.AllViews, MaxResults: pageSize}
	for {
		page, err := x.src.SearchRuns(ctx, q)
		if err != nil {
			return fmt.Errorf("reading runs of experiment %s: %w", e.ExperimentID, err)
		}
		x.mu.Lock()
		x.rep.SkippedRuns += int64(len(page.Runs))
		x.mu.Unlock()
		if page.NextPageToken == "" || len(page.Runs) == 0 {
			return nil
		}
		q.PageToken = page.NextPageToken
	}
}

func (x *exporter) failedCount() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.failed
}

// runPage exports one page of runs, Workers at once.
func (x *exporter) runPage(ctx context.Context, runs []*tracking.Run) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, x.o.Workers)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, r := range runs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := x.runOnce(ctx, r.Info.RunID, r, nil); err != nil && !errors.Is(err, errSkip) {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// runOnce exports a source run once, however many goroutines ask for it
// (a run is asked for by its own page and by its children). It returns
// the destination id. chain holds the runs waiting on this one (their
// parents are exported first).
func (x *exporter) runOnce(ctx context.Context, id string, run *tracking.Run, chain []string) (string, error) {
	x.mu.Lock()
	if t, ok := x.inflight[id]; ok {
		x.mu.Unlock()
		select {
		case <-t.done:
			return t.newID, t.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	t := &task{done: make(chan struct{})}
	x.inflight[id] = t
	x.mu.Unlock()
	t.newID, t.err = x.exportRun(ctx, id, run, chain)
	if t.err != nil && recoverable(ctx, t.err) {
		if !errors.Is(t.err, errSkip) {
			x.problem("run", id, t.err)
		}
		x.mu.Lock()
		x.failed++
		x.mu.Unlock()
		t.err = errSkip
	}
	close(t.done)
	return t.newID, t.err
}

// exportRun writes one run: create (recorded in the id map at once),
// params and tags, metric histories, dataset inputs, artifacts, status
// and end time, lifecycle; then marks it done. A run recorded but not
// done is continued: what MLflow would refuse or duplicate is skipped.
func (x *exporter) exportRun(ctx context.Context, id string, run *tracking.Run, chain []string) (string, error) {
	if newID, ok := x.j.Run(id); ok && x.j.RunDone(id) {
		x.mu.Lock()
		x.rep.SkippedRuns++
		x.mu.Unlock()
		return newID, nil
	}
	if run == nil {
		r, err := x.src.GetRun(ctx, id)
		if err != nil {
			return "", fmt.Errorf("reading run %s: %w", id, err)
		}
		run = r
	}
	newExp, ok := x.j.Experiment(run.Info.ExperimentID)
	if !ok && !x.o.DryRun {
		return "", fmt.Errorf("its experiment %s is not exported: %w", run.Info.ExperimentID, errSkip)
	}
	tags, err := x.runTags(ctx, run, chain)
	if err != nil {
		return "", err
	}
	if x.o.DryRun {
		return "", x.countDry(ctx, run)
	}
	newID, resumed := x.j.Run(id)
	var dstURI string
	if !resumed {
		// mlflow.log-model.history names the run: it is set once the new
		// id is known.
		createTags := make([]mlflowclient.Tag, 0, len(tags))
		for _, t := range tags {
			if t.Key != tracking.TagLogModelHistory {
				createTags = append(createTags, t)
			}
		}
		created, err := x.dst.CreateRun(ctx, mlflowclient.CreateRun{
			ExperimentID: newExp, UserID: run.Info.UserID, RunName: run.Info.RunName,
			StartTime: run.Info.StartTime, Tags: createTags,
		})
		if err != nil {
			return "", fmt.Errorf("creating the run: %w", err)
		}
		newID, dstURI = created.Info.ID(), created.Info.ArtifactURI
		if err := x.j.Append(Record{Kind: KindRun, Old: id, New: newID, Experiment: run.Info.ExperimentID}); err != nil {
			return "", err
		}
	} else {
		got, err := x.dst.GetRun(ctx, newID)
		if err != nil {
			return "", fmt.Errorf("reading back run %s: %w", newID, err)
		}
		dstURI = got.Info.ArtifactURI
		if got.Info.LifecycleStage == tracking.LifecycleDeleted {
			if err := x.dst.RestoreRun(ctx, newID); err != nil {
				return "", err
			}
		}
	}
	x.mu.Lock()
	x.newURIs[id] = dstURI
	x.mu.Unlock()
	params := make([]mlflowclient.Param, 0, len(run.Data.Params))
	for _, p := range run.Data.Params {
		params = append(params, mlflowclient.Param{Key: p.Key, Value: p.Value})
	}
	var again []mlflowclient.Tag
	for i, t := range tags {
		if t.Key == tracking.TagLogModelHistory {
			tags[i].Value = strings.ReplaceAll(t.Value, id, newID)
			if !resumed {
				again = append(again, tags[i])
			}
		}
	}
	if resumed {
		again = tags
	}
	if err := x.dst.LogBatchChunks(ctx, newID, nil, params, again); err != nil {
		return "", fmt.Errorf("logging params and tags: %w", err)
	}
	x.count("", func(c *storecopy.Counts) {
		c.Runs++
		c.Params += int64(len(params))
		c.RunTags += int64(len(tags))
		c.LatestMetrics += int64(len(run.Data.Metrics))
	})
	for _, m := range run.Data.Metrics {
		if err := x.history(ctx, id, newID, m.Key, resumed); err != nil {
			return "", fmt.Errorf("metric %q: %w", m.Key, err)
		}
	}
	if err := x.inputs(ctx, run, newID); err != nil {
		return "", err
	}
	if err := x.artifacts(ctx, run, dstURI); err != nil {
		return "", err
	}
	if run.Info.Status != tracking.StatusRunning || run.Info.EndTime != 0 {
		if _, err := x.dst.UpdateRun(ctx, mlflowclient.UpdateRun{RunID: newID, Status: run.Info.Status, EndTime: run.Info.EndTime}); err != nil {
			return "", fmt.Errorf("setting the status: %w", err)
		}
	}
	if run.Info.LifecycleStage == tracking.LifecycleDeleted {
		if err := x.dst.DeleteRun(ctx, newID); err != nil {
			return "", fmt.Errorf("deleting the run: %w", err)
		}
	}
	if err := x.j.Append(Record{Kind: KindRunDone, Old: id}); err != nil {
		return "", err
	}
	return newID, nil
}

// runTags are the run's tags for the destination: mlflow.parentRunId
// names the parent's new id (the parent is exported first). (The old run
// id inside mlflow.log-model.history is replaced by exportRun once the
// new id is known.)
func (x *exporter) runTags(ctx context.Context, run *tracking.Run, chain []string) ([]mlflowclient.Tag, error) {
	tags := make([]mlflowclient.Tag, 0, len(run.Data.Tags))
	for _, t := range run.Data.Tags {
		v := t.Value
		if t.Key == tracking.TagParentRunID && v != "" && v != run.Info.RunID && !x.o.DryRun {
			newParent, err := x.parent(ctx, v, append(chain, run.Info.RunID))
			if err != nil {
				return nil, err
			}
			if newParent != "" {
				v = newParent
			}
		}
		tags = append(tags, mlflowclient.Tag{Key: t.Key, Value: v})
	}
	return tags, nil
}

// parent exports the parent run (if it is part of the export) and
// returns its new id; "" keeps the tag as it is.
func (x *exporter) parent(ctx context.Context, parentID string, chain []string) (string, error) {
	if slices.Contains(chain, parentID) || len(chain) > maxParentDepth {
		return "", nil // a cycle in the parent tags: leave them
	}
	if done, ok := x.j.Run(parentID); ok && x.j.RunDone(parentID) {
		return done, nil
	}
	p, err := x.src.GetRun(ctx, parentID)
	if err != nil {
		var te *tracking.Error
		if errors.As(err, &te) && te.Code == tracking.ResourceDoesNotExist {
			return "", nil
		}
		return "", fmt.Errorf("reading parent run %s: %w", parentID, err)
	}
	if x.selected[p.Info.ExperimentID] == nil {
		return "", nil
	}
	// Detect a cycle further up before waiting on anyone.
	if x.cyclic(ctx, p, chain) {
		return "", nil
	}
	newID, err := x.runOnce(ctx, parentID, p, chain)
	if errors.Is(err, errSkip) {
		return "", nil
	}
	return newID, err
}

// cyclic walks the parent tags up from r and reports whether they come
// back to a run of chain or to themselves.
func (x *exporter) cyclic(ctx context.Context, r *tracking.Run, chain []string) bool {
	seen := map[string]bool{r.Info.RunID: true}
	for _, c := range chain {
		seen[c] = true
	}
	cur := r
	for range maxParentDepth {
		pid := ""
		for _, t := range cur.Data.Tags {
			if t.Key == tracking.TagParentRunID {
				pid = t.Value
			}
		}
		if pid == "" {
			return false
		}
		if seen[pid] {
			return true
		}
		seen[pid] = true
		next, err := x.src.GetRun(ctx, pid)
		if err != nil {
			return false
		}
		cur = next
	}
	return true
}

// countDry counts what a run would export.
func (x *exporter) countDry(ctx context.Context, run *tracking.Run) error {
	var points int64
	for _, m := range run.Data.Metrics {
		if err := x.src.MetricHistory(ctx, run.Info.RunID, m.Key, x.o.HistoryChunk, func(p []tracking.Metric) error {
			points += int64(len(p))
			return nil
		}); err != nil {
			return fmt.Errorf("reading metric %q: %w", m.Key, err)
		}
	}
	if store, root, ok, err := x.sourceArtifacts(run.Info.ArtifactURI); err != nil {
		x.problem("artifact", run.Info.RunID, err)
	} else if ok {
		files, size, err := listFiles(ctx, store, root)
		if err != nil {
			return fmt.Errorf("listing artifacts: %w", err)
		}
		x.mu.Lock()
		x.rep.ArtifactFiles += int64(len(files))
		x.rep.ArtifactBytes += size
		x.mu.Unlock()
	}
	x.count("", func(c *storecopy.Counts) {
		c.Runs++
		c.Params += int64(len(run.Data.Params))
		c.RunTags += int64(len(run.Data.Tags))
		c.LatestMetrics += int64(len(run.Data.Metrics))
		c.MetricPoints += points
		c.DatasetInputs += int64(len(run.Inputs.DatasetInputs))
	})
	return nil
}

// history copies one metric's history in log-batch chunks. When the run
// is continued, the points the destination already holds (the first
// ones, as each chunk is written whole and in order) are skipped.
func (x *exporter) history(ctx context.Context, oldID, newID, key string, resumed bool) error {
	skip := 0
	if resumed {
		if err := x.dst.EachMetricPage(ctx, newID, key, func(p []mlflowclient.Metric) error {
			skip += len(p)
			return nil
		}); err != nil && !mlflowclient.IsNotFound(err) {
			return fmt.Errorf("reading back the history: %w", err)
		}
	}
	return x.src.MetricHistory(ctx, oldID, key, x.o.HistoryChunk, func(points []tracking.Metric) error {
		if skip >= len(points) {
			skip -= len(points)
			return nil
		}
		points = points[skip:]
		skip = 0
		batch := make([]mlflowclient.Metric, len(points))
		for i, p := range points {
			batch[i] = mlflowclient.Metric{Key: p.Key, Value: mlflowclient.Float(p.Value), Timestamp: mlflowclient.Int64(p.Timestamp), Step: mlflowclient.Int64(p.Step)}
		}
		if err := x.dst.LogBatch(ctx, newID, batch, nil, nil); err != nil {
			return err
		}
		x.count("", func(c *storecopy.Counts) { c.MetricPoints += int64(len(batch)) })
		return nil
	})
}

// inputs logs the run's dataset inputs (MLflow keeps one input per
// dataset, so logging them again is harmless).
func (x *exporter) inputs(ctx context.Context, run *tracking.Run, newID string) error {
	in := run.Inputs.DatasetInputs
	for len(in) > 0 {
		n := min(len(in), 100)
		batch := make([]mlflowclient.DatasetInput, 0, n)
		for _, d := range in[:n] {
			di := mlflowclient.DatasetInput{Dataset: mlflowclient.Dataset{
				Name: d.Dataset.Name, Digest: d.Dataset.Digest, SourceType: d.Dataset.SourceType,
				Source: d.Dataset.Source, Schema: d.Dataset.Schema, Profile: d.Dataset.Profile,
			}}
			for _, t := range d.Tags {
				di.Tags = append(di.Tags, mlflowclient.Tag{Key: t.Key, Value: t.Value})
			}
			batch = append(batch, di)
		}
		if err := x.dst.LogInputs(ctx, newID, batch); err != nil {
			return fmt.Errorf("logging dataset inputs: %w", err)
		}
		x.count("", func(c *storecopy.Counts) { c.DatasetInputs += int64(n) })
		in = in[n:]
	}
	if len(run.Inputs.ModelInputs) > 0 {
		x.problem("run", run.Info.RunID, fmt.Errorf("%d logged-model inputs not exported (logged models are not exported)", len(run.Inputs.ModelInputs)))
	}
	return nil
}

// sourceArtifacts resolves where a source run's artifacts are: a store
// and the path of the run's root in it. ok is false when the run has no
// artifact location.
func (x *exporter) sourceArtifacts(uri string) (artifact.Store, string, bool, error) {
	if uri == "" {
		return nil, "", false, nil
	}
	if p, ok := artifact.URIPath(uri); ok {
		if x.o.ArtifactsRoot == nil {
			return nil, "", false, fmt.Errorf("artifacts at %s: the source's artifacts destination is unknown (pass --artifacts-from)", uri)
		}
		return x.o.ArtifactsRoot, p, true, nil
	}
	dir := ""
	switch {
	case strings.HasPrefix(uri, "file://"):
		u, err := url.Parse(uri)
		if err != nil {
			return nil, "", false, fmt.Errorf("artifact location %s: %w", uri, err)
		}
		dir = u.Path
	case filepath.IsAbs(uri):
		dir = uri
	default:
		return nil, "", false, fmt.Errorf("artifacts at %s: only the artifact proxy's root and local directories can be read", uri)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if s, ok := x.locals[dir]; ok {
		return s, "", true, nil
	}
	s, err := artifact.NewLocal(dir)
	if err != nil {
		// A run that never logged an artifact has no directory.
		return nil, "", false, nil
	}
	x.locals[dir] = s
	return s, "", true, nil
}

// artifacts streams every file of the run's artifact root to the
// destination run's root through the destination's artifact proxy.
func (x *exporter) artifacts(ctx context.Context, run *tracking.Run, dstURI string) error {
	store, root, ok, err := x.sourceArtifacts(run.Info.ArtifactURI)
	if err != nil {
		x.problem("artifact", run.Info.RunID, err)
		return nil
	}
	if !ok {
		return nil
	}
	files, _, err := listFiles(ctx, store, root)
	if err != nil {
		return fmt.Errorf("listing artifacts: %w", err)
	}
	if len(files) == 0 {
		return nil
	}
	dstRoot, ok := mlflowclient.ProxiedPath(dstURI)
	if !ok {
		x.problem("artifact", run.Info.RunID, fmt.Errorf("%d files not exported: the destination run's artifact location %s is not served through the destination's artifact proxy (mlflow server --serve-artifacts)", len(files), dstURI))
		return nil
	}
	for _, p := range files {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if err := x.upload(ctx, store, p, path.Join(dstRoot, rel)); err != nil {
			if errors.Is(err, errSource) {
				// A file the source cannot read is reported; the run is
				// still exported.
				x.problem("artifact", run.Info.RunID+"/"+rel, err)
				continue
			}
			return fmt.Errorf("artifact %s: %w", rel, err)
		}
	}
	return nil
}

// listFiles lists every file under root (paths in the store) and their
// total size.
func listFiles(ctx context.Context, store artifact.Store, root string) ([]string, int64, error) {
	var files []string
	var total int64
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if depth > 64 {
			return fmt.Errorf("artifact directories nest deeper than 64 under %q", dir)
		}
		list, err := store.List(ctx, dir)
		if err != nil {
			return err
		}
		for _, f := range list {
			if f.IsDir {
				if err := walk(f.Path, depth+1); err != nil {
					return err
				}
				continue
			}
			files = append(files, f.Path)
			total += f.FileSize
		}
		return nil
	}
	err := walk(root, 0)
	return files, total, err
}

// errSource marks an artifact the source store could not open.
var errSource = errors.New("unreadable in the source")

func (x *exporter) upload(ctx context.Context, store artifact.Store, from, to string) error {
	obj, err := store.Open(ctx, from)
	if err != nil {
		return fmt.Errorf("%w: %w", errSource, err)
	}
	defer obj.Close()
	size := obj.Info().Size
	if err := x.dst.UploadProxied(ctx, to, obj, size); err != nil {
		return err
	}
	x.mu.Lock()
	x.rep.ArtifactFiles++
	x.rep.ArtifactBytes += size
	x.mu.Unlock()
	x.count("", nil)
	return nil
}

var _ io.ReadSeeker = artifact.Object(nil)

// ---- registry ----

// registry exports registered models and their versions (in number
// order), stages, tags, descriptions and aliases.
func (x *exporter) registry(ctx context.Context) error {
	versions := map[string][]*tracking.ModelVersion{}
	for _, f := range []string{"tags.`" + tracking.TagIsPrompt + "` != 'true'", "tags.`" + tracking.TagIsPrompt + "` = 'true'"} {
		filter, err := search.ParseModelVersionFilter(f)
		if err != nil {
			return err
		}
		q := tracking.ModelVersionQuery{Filter: filter, MaxResults: pageSize}
		for {
			page, err := x.src.SearchModelVersions(ctx, q)
			if err != nil {
				return fmt.Errorf("reading model versions: %w", err)
			}
			for _, v := range page.Versions {
				versions[v.Name] = append(versions[v.Name], v)
			}
			if page.NextPageToken == "" || len(page.Versions) == 0 {
				break
			}
			q.PageToken = page.NextPageToken
		}
	}
	for _, f := range []string{"tags.`" + tracking.TagIsPrompt + "` != 'true'", "tags.`" + tracking.TagIsPrompt + "` = 'true'"} {
		filter, err := search.ParseRegisteredModelFilter(f)
		if err != nil {
			return err
		}
		q := tracking.RegisteredModelQuery{Filter: filter, MaxResults: pageSize}
		for {
			page, err := x.src.SearchRegisteredModels(ctx, q)
			if err != nil {
				return fmt.Errorf("reading registered models: %w", err)
			}
			for _, m := range page.Models {
				if err := x.model(ctx, m, versions[m.Name]); err != nil {
					if !recoverable(ctx, err) {
						return fmt.Errorf("registered model %q: %w", m.Name, err)
					}
					x.problem("registered model", m.Name, err)
				}
			}
			if page.NextPageToken == "" || len(page.Models) == 0 {
				break
			}
			q.PageToken = page.NextPageToken
		}
	}
	return nil
}

func versionNumber(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func (x *exporter) model(ctx context.Context, m *tracking.RegisteredModel, versions []*tracking.ModelVersion) error {
	if x.j.ModelDone(m.Name) {
		x.mu.Lock()
		x.rep.SkippedModels++
		x.mu.Unlock()
		return nil
	}
	sort.Slice(versions, func(a, b int) bool { return versionNumber(versions[a].Version) < versionNumber(versions[b].Version) })
	if len(x.o.Experiments) > 0 {
		// Only versions of exported runs.
		var keep []*tracking.ModelVersion
		for _, v := range versions {
			if _, ok := x.j.Run(v.RunID); ok && v.RunID != "" {
				keep = append(keep, v)
			} else if x.o.DryRun && v.RunID != "" && x.runSelected(ctx, v.RunID) {
				keep = append(keep, v)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		versions = keep
	}
	if x.o.DryRun {
		x.count("", func(c *storecopy.Counts) {
			c.RegisteredModels++
			c.RegisteredModelTags += int64(len(m.Tags))
			c.Aliases += int64(len(m.Aliases))
			c.ModelVersions += int64(len(versions))
			for _, v := range versions {
				c.ModelVersionTags += int64(len(v.Tags))
			}
		})
		return nil
	}
	tags := make([]mlflowclient.Tag, 0, len(m.Tags))
	for _, t := range m.Tags {
		tags = append(tags, mlflowclient.Tag{Key: t.Key, Value: t.Value})
	}
	_, err := x.dst.CreateRegisteredModel(ctx, m.Name, m.Description, tags)
	existed := mlflowclient.IsAlreadyExists(err)
	if existed {
		if m.Description != "" {
			if err := x.dst.UpdateRegisteredModel(ctx, m.Name, m.Description); err != nil {
				return err
			}
		}
		for _, t := range tags {
			if err := x.dst.SetRegisteredModelTag(ctx, m.Name, t.Key, t.Value); err != nil {
				return err
			}
		}
	} else if err != nil {
		return err
	}
	x.count("", func(c *storecopy.Counts) { c.RegisteredModels++; c.RegisteredModelTags += int64(len(tags)) })
	// Versions the destination holds that the id map does not name: a
	// version created just before an interruption. They are matched by
	// source and run rather than created twice.
	var orphans []mlflowclient.ModelVersion
	if existed {
		mapped := map[string]bool{}
		for _, n := range x.j.Versions(m.Name) {
			mapped[n] = true
		}
		filter := "name = '" + strings.ReplaceAll(m.Name, "'", "\\'") + "'"
		if err := x.dst.EachModelVersion(ctx, filter, func(v mlflowclient.ModelVersion) error {
			if !mapped[v.Version] {
				orphans = append(orphans, v)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("reading the destination's versions: %w", err)
		}
	}
	for _, v := range versions {
		if _, ok := x.j.Version(m.Name, v.Version); ok {
			continue
		}
		if err := x.version(ctx, v, &orphans); err != nil {
			if !recoverable(ctx, err) {
				return fmt.Errorf("version %s: %w", v.Version, err)
			}
			x.problem("model version", m.Name+"/"+v.Version, err)
		}
	}
	for _, a := range m.Aliases {
		newV, ok := x.j.Version(m.Name, a.Version)
		if !ok {
			x.problem("registered model", m.Name, fmt.Errorf("alias %q: version %s was not exported", a.Alias, a.Version))
			continue
		}
		if err := x.dst.SetRegisteredModelAlias(ctx, m.Name, a.Alias, newV); err != nil {
			return fmt.Errorf("alias %q: %w", a.Alias, err)
		}
		x.count("", func(c *storecopy.Counts) { c.Aliases++ })
	}
	return x.j.Append(Record{Kind: KindModelDone, Name: m.Name})
}

// runSelected reports whether a source run belongs to an exported
// experiment.
func (x *exporter) runSelected(ctx context.Context, runID string) bool {
	r, err := x.src.GetRun(ctx, runID)
	return err == nil && x.selected[r.Info.ExperimentID] != nil
}

func (x *exporter) version(ctx context.Context, v *tracking.ModelVersion, orphans *[]mlflowclient.ModelVersion) error {
	newRun, _ := x.j.Run(v.RunID)
	source, err := x.rewriteSource(ctx, v, newRun)
	if err != nil {
		return err
	}
	var created *mlflowclient.ModelVersion
	for i, o := range *orphans {
		if o.Source == source && o.RunID == newRun {
			created = &o
			*orphans = append((*orphans)[:i], (*orphans)[i+1:]...)
			break
		}
	}
	tags := make([]mlflowclient.Tag, 0, len(v.Tags))
	for _, t := range v.Tags {
		tags = append(tags, mlflowclient.Tag{Key: t.Key, Value: t.Value})
	}
	if created == nil {
		created, err = x.dst.CreateModelVersion(ctx, mlflowclient.CreateModelVersion{
			Name: v.Name, Source: source, RunID: newRun, Tags: tags, RunLink: v.RunLink, Description: v.Description,
		})
		if err != nil {
			return err
		}
	} else {
		for _, t := range tags {
			if err := x.dst.SetModelVersionTag(ctx, v.Name, created.Version, t.Key, t.Value); err != nil {
				return err
			}
		}
		if v.Description != "" {
			if err := x.dst.UpdateModelVersion(ctx, v.Name, created.Version, v.Description); err != nil {
				return err
			}
		}
	}
	if err := x.j.Append(Record{Kind: KindModelVersion, Name: v.Name, Old: v.Version, New: created.Version}); err != nil {
		return err
	}
	if v.CurrentStage != "" && !strings.EqualFold(v.CurrentStage, "None") && created.CurrentStage != v.CurrentStage {
		if _, err := x.dst.TransitionModelVersionStage(ctx, v.Name, created.Version, v.CurrentStage, false); err != nil {
			return fmt.Errorf("stage %s: %w", v.CurrentStage, err)
		}
	}
	x.count("", func(c *storecopy.Counts) { c.ModelVersions++; c.ModelVersionTags += int64(len(tags)) })
	return nil
}

// rewriteSource points a version's source at the exported run: runs:/<old>/p
// becomes runs:/<new>/p, and a location under the old run's artifact root
// moves under the new run's. Other sources are kept (and reported when
// they name the old run).
func (x *exporter) rewriteSource(ctx context.Context, v *tracking.ModelVersion, newRun string) (string, error) {
	src := v.Source
	if v.RunID == "" || newRun == "" {
		return src, nil
	}
	if rest, ok := strings.CutPrefix(src, "runs:/"+v.RunID); ok && (rest == "" || rest[0] == '/') {
		return "runs:/" + newRun + rest, nil
	}
	old, err := x.src.GetRun(ctx, v.RunID)
	if err != nil {
		return src, nil
	}
	x.mu.Lock()
	newURI, ok := x.newURIs[v.RunID]
	x.mu.Unlock()
	if !ok {
		got, err := x.dst.GetRun(ctx, newRun)
		if err != nil {
			return "", fmt.Errorf("reading the exported run %s: %w", newRun, err)
		}
		newURI = got.Info.ArtifactURI
		x.mu.Lock()
		x.newURIs[v.RunID] = newURI
		x.mu.Unlock()
	}
	oldURI := strings.TrimSuffix(old.Info.ArtifactURI, "/")
	if rest, ok := strings.CutPrefix(src, oldURI); ok && (rest == "" || rest[0] == '/') {
		return strings.TrimSuffix(newURI, "/") + rest, nil
	}
	// The same place written another way (mlflow-artifacts://host/... or
	// the proxy's http URL).
	if sp, ok := artifact.URIPath(src); ok {
		if op, ok := artifact.URIPath(oldURI); ok {
			if rest, ok := strings.CutPrefix(sp, op); ok && (rest == "" || rest[0] == '/') {
				return strings.TrimSuffix(newURI, "/") + rest, nil
			}
		}
	}
	if strings.Contains(src, v.RunID) {
		x.problem("model version", v.Name+"/"+v.Version, fmt.Errorf("source %s names the old run but is not under its artifacts; kept as is", src))
	}
	return src, nil
}
