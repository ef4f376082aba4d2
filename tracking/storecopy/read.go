// Package storecopy streams every record of a tracking store into a
// tracking.Importer, keeping ids, numbers and timestamps: it is how
// `caddy mlflow copy-store` moves a store between backends (bbolt and
// PostgreSQL), and the record stream other importers and exporters reuse.
//
// Read goes through the public tracking.Store interface only, one page
// of experiments, runs, models or traces at a time and each metric
// history in chunks, so nothing close to the whole store (or a whole
// metric history) is held in memory. Copy adds what moving a store needs:
// the refusal to write into a non-empty destination, progress reports
// and verification counts read back from the destination.
package storecopy

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Defaults of ReadOptions.
const (
	DefaultPageSize     = 200
	DefaultHistoryChunk = 5000
	DefaultWorkers      = 4
	// expBatch is how many experiments one logged-model or trace search
	// names.
	expBatch = 100
)

// Phases of a read, as passed to ReadOptions.OnRecord.
const (
	PhaseExperiments  = "experiments"
	PhaseLoggedModels = "logged models"
	PhaseRuns         = "runs"
	PhaseRegistry     = "registry"
	PhaseTraces       = "traces"
	PhaseAuth         = "auth"
)

// ReadOptions tune Read. Zero values take the defaults.
type ReadOptions struct {
	// PageSize is how many experiments, runs, models, versions or traces
	// one search page holds (DefaultPageSize).
	PageSize int
	// HistoryChunk is how many metric points one MetricHistory chunk
	// (and one ImportMetricHistory call) holds (DefaultHistoryChunk).
	HistoryChunk int
	// Workers is how many runs (each with its metric histories) are
	// copied at once (DefaultWorkers): concurrent writes share group
	// commits in bbolt and connections in PostgreSQL. The importer and
	// OnRecord must be safe for concurrent use.
	Workers int
	// OnRecord, when set, is called after each record is written, with
	// the phase the read is in.
	OnRecord func(phase string)
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.HistoryChunk <= 0 {
		o.HistoryChunk = DefaultHistoryChunk
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.OnRecord == nil {
		o.OnRecord = func(string) {}
	}
	return o
}

// promptFilters split registry searches into the two halves that
// together are every entity: not prompts (what an unfiltered search
// shows) and prompts (which it leaves out).
const (
	notPromptFilter = "tags.`" + tracking.TagIsPrompt + "` != 'true'"
	promptFilter    = "tags.`" + tracking.TagIsPrompt + "` = 'true'"
)

// Read streams every record of src into dst, parents first:
// experiments (every lifecycle stage), logged models, runs (every
// lifecycle stage) each followed by its metric histories, registered
// models, model versions, traces. The order within a kind is the
// store's search order.
func Read(ctx context.Context, src tracking.Store, dst tracking.Importer, opts ReadOptions) error {
	opts = opts.withDefaults()
	r := &reader{src: src, dst: dst, o: opts}
	expIDs, err := r.experiments(ctx)
	if err != nil {
		return err
	}
	if err := r.loggedModels(ctx, expIDs); err != nil {
		return err
	}
	for _, id := range expIDs {
		if err := r.runs(ctx, id); err != nil {
			return err
		}
	}
	if err := r.registry(ctx); err != nil {
		return err
	}
	return r.traces(ctx, expIDs)
}

type reader struct {
	src tracking.Store
	dst tracking.Importer
	o   ReadOptions
}

func (r *reader) experiments(ctx context.Context) ([]string, error) {
	var ids []string
	q := tracking.ExperimentQuery{ViewType: tracking.AllViews, MaxResults: r.o.PageSize}
	for {
		page, err := r.src.SearchExperiments(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("reading experiments: %w", err)
		}
		for _, e := range page.Experiments {
			if err := r.dst.ImportExperiment(ctx, e); err != nil {
				return nil, fmt.Errorf("writing experiment %s (%q): %w", e.ExperimentID, e.Name, err)
			}
			ids = append(ids, e.ExperimentID)
			r.o.OnRecord(PhaseExperiments)
		}
		if page.NextPageToken == "" || len(page.Experiments) == 0 {
			return ids, nil
		}
		q.PageToken = page.NextPageToken
	}
}

// batches cuts ids into slices of at most n.
func batches(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

func (r *reader) loggedModels(ctx context.Context, expIDs []string) error {
	for _, batch := range batches(expIDs, expBatch) {
		q := tracking.LoggedModelQuery{ExperimentIDs: batch, MaxResults: r.o.PageSize}
		for {
			page, err := r.src.SearchLoggedModels(ctx, q)
			if err != nil {
				return fmt.Errorf("reading logged models: %w", err)
			}
			for _, m := range page.Models {
				if err := r.dst.ImportLoggedModel(ctx, m); err != nil {
					return fmt.Errorf("writing logged model %s: %w", m.Info.ModelID, err)
				}
				r.o.OnRecord(PhaseLoggedModels)
			}
			if !page.More || len(page.Models) == 0 {
				break
			}
			q.After = page.Next
		}
	}
	return nil
}

func (r *reader) runs(ctx context.Context, expID string) error {
	q := tracking.RunQuery{ExperimentIDs: []string{expID}, ViewType: tracking.AllViews, MaxResults: r.o.PageSize}
	for {
		page, err := r.src.SearchRuns(ctx, q)
		if err != nil {
			return fmt.Errorf("reading runs of experiment %s: %w", expID, err)
		}
		if err := r.runPage(ctx, page.Runs); err != nil {
			return err
		}
		if page.NextPageToken == "" || len(page.Runs) == 0 {
			return nil
		}
		q.PageToken = page.NextPageToken
	}
}

// runPage copies one page of runs with up to Workers at once, and
// returns the first error once every started run is done.
func (r *reader) runPage(ctx context.Context, runs []*tracking.Run) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, r.o.Workers)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, run := range runs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := r.run(ctx, run); err != nil {
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

func (r *reader) run(ctx context.Context, run *tracking.Run) error {
	id := run.Info.RunID
	if err := r.dst.ImportRun(ctx, run); err != nil {
		return fmt.Errorf("writing run %s: %w", id, err)
	}
	r.o.OnRecord(PhaseRuns)
	for _, m := range run.Data.Metrics {
		err := r.src.MetricHistory(ctx, id, m.Key, r.o.HistoryChunk, func(points []tracking.Metric) error {
			if err := r.dst.ImportMetricHistory(ctx, id, points); err != nil {
				return fmt.Errorf("writing history of metric %q of run %s: %w", m.Key, id, err)
			}
			r.o.OnRecord(PhaseRuns)
			return nil
		})
		if err != nil {
			return fmt.Errorf("copying history of metric %q of run %s: %w", m.Key, id, err)
		}
	}
	if err := r.dst.FinishRunImport(ctx, id); err != nil {
		return fmt.Errorf("writing run %s: %w", id, err)
	}
	return nil
}

func (r *reader) registry(ctx context.Context) error {
	counter, _ := r.src.(tracking.ModelVersionCounter)
	for _, f := range []string{notPromptFilter, promptFilter} {
		filter, err := search.ParseRegisteredModelFilter(f)
		if err != nil {
			return fmt.Errorf("registered model filter %s: %w", f, err)
		}
		q := tracking.RegisteredModelQuery{Filter: filter, MaxResults: r.o.PageSize}
		for {
			page, err := r.src.SearchRegisteredModels(ctx, q)
			if err != nil {
				return fmt.Errorf("reading registered models: %w", err)
			}
			for _, m := range page.Models {
				var maxVersion int64
				if counter != nil {
					if maxVersion, err = counter.MaxModelVersion(ctx, m.Name); err != nil {
						return fmt.Errorf("reading the highest version of model %q: %w", m.Name, err)
					}
				}
				if err := r.dst.ImportRegisteredModel(ctx, m, maxVersion); err != nil {
					return fmt.Errorf("writing registered model %q: %w", m.Name, err)
				}
				r.o.OnRecord(PhaseRegistry)
			}
			if page.NextPageToken == "" || len(page.Models) == 0 {
				break
			}
			q.PageToken = page.NextPageToken
		}
	}
	for _, f := range []string{notPromptFilter, promptFilter} {
		filter, err := search.ParseModelVersionFilter(f)
		if err != nil {
			return fmt.Errorf("model version filter %s: %w", f, err)
		}
		q := tracking.ModelVersionQuery{Filter: filter, MaxResults: r.o.PageSize}
		for {
			page, err := r.src.SearchModelVersions(ctx, q)
			if err != nil {
				return fmt.Errorf("reading model versions: %w", err)
			}
			for _, v := range page.Versions {
				if err := r.dst.ImportModelVersion(ctx, v); err != nil {
					return fmt.Errorf("writing version %s of model %q: %w", v.Version, v.Name, err)
				}
				r.o.OnRecord(PhaseRegistry)
			}
			if page.NextPageToken == "" || len(page.Versions) == 0 {
				break
			}
			q.PageToken = page.NextPageToken
		}
	}
	return nil
}

func (r *reader) traces(ctx context.Context, expIDs []string) error {
	for _, batch := range batches(expIDs, expBatch) {
		q := tracking.TraceQuery{ExperimentIDs: batch, MaxResults: r.o.PageSize}
		for {
			page, err := r.src.SearchTraces(ctx, q)
			if err != nil {
				return fmt.Errorf("reading traces: %w", err)
			}
			for _, t := range page.Traces {
				if err := r.dst.ImportTrace(ctx, t); err != nil {
					return fmt.Errorf("writing trace %s: %w", t.RequestID, err)
				}
				r.o.OnRecord(PhaseTraces)
			}
			if page.NextPageToken == "" || len(page.Traces) == 0 {
				break
			}
			q.PageToken = page.NextPageToken
		}
	}
	return nil
}
