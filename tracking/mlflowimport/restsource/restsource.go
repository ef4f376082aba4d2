// Package restsource reads a running MLflow tracking server (MLflow 2.x,
// 3.x, or another caddy-mlflow) through its REST API, as an
// mlflowimport.Source. It connects as MLflow's Python client does
// (internal/mlflowclient: MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN,
// INSECURE_TLS, SERVER_CERT_PATH, CLIENT_CERT_PATH, the retry settings)
// and streams: runs come a search page at a time, a run's metric history
// a get-history page at a time, artifacts file by file.
//
// What the REST API cannot give, and so is not imported:
//   - A deleted run's deletion time: RunInfo (mlflow/protos/service.proto)
//     has no deleted_time; runs arrive deleted with DeletedTime 0.
//   - Numbers of deleted model versions: model-versions/search and
//     registered-models/get leave them out (the SQL store filters the
//     Deleted_Internal stage), so the destination may hand such a number
//     out again. The registered model's and version's user_id and
//     status_message, and a logged model's creator_id, have no place in
//     the destination and are dropped as the other sources drop them.
//   - Runs a trace was linked to with link-to-run: TraceInfoV3
//     (mlflow/protos/service.proto) has no field for them; the trace's
//     mlflow.sourceRun metadata is kept.
//   - MLflow 2.x traces (the /api/2.0/mlflow/traces routes) and logged
//     models: only MLflow 3's routes are read; a server without them
//     (404, ENDPOINT_NOT_FOUND) has none to give.
//   - Trace spans a server keeps only in its database (no traces.json
//     artifact): the trace info is imported without data.
package restsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// IsURI reports whether from names a tracking server (http:// or
// https://).
func IsURI(from string) bool {
	return strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://")
}

// Source is a running tracking server.
type Source struct {
	c *mlflowclient.Client
	// HistoryPageSize is the max_results of each metrics/get-history
	// call (mlflowclient.HistoryPageSize, the Python client's, unless
	// set). A server that ignores it answers in one page.
	HistoryPageSize int
	// RunPageSize is the max_results of each runs/search call (1000).
	RunPageSize int
	// ThroughTrackingAPI reads every artifact through the tracking
	// routes (artifacts/list and get-artifact, the logged-model artifact
	// routes, get-trace-artifact) even where the location is served by
	// the mlflow-artifacts proxy.
	ThroughTrackingAPI bool
}

// Open connects to the server at uri with the MLflow client's
// environment read through lookup (os.LookupEnv for the real one), and
// checks that it answers an experiments search.
func Open(ctx context.Context, uri string, lookup mlflowclient.LookupFunc) (*Source, error) {
	c, err := mlflowclient.NewFromEnv(uri, lookup)
	if err != nil {
		return nil, fmt.Errorf("--from %s: %w", redact(uri), err)
	}
	s := New(c)
	if _, err := c.SearchExperiments(ctx, mlflowclient.ExperimentSearch{MaxResults: 1, ViewType: mlflowclient.AllViews}); err != nil {
		c.Close()
		return nil, fmt.Errorf("--from %s: the server does not answer an experiments search: %w", c.BaseURL(), err)
	}
	return s, nil
}

// New reads through an existing client.
func New(c *mlflowclient.Client) *Source {
	return &Source{c: c, HistoryPageSize: mlflowclient.HistoryPageSize, RunPageSize: 1000}
}

func redact(uri string) string {
	if i := strings.Index(uri, "://"); i >= 0 {
		rest := uri[i+3:]
		if j := strings.IndexByte(rest, '@'); j >= 0 && j < strings.IndexAny(rest+"/", "/?#") {
			return uri[:i+3] + "***@" + rest[j+1:]
		}
	}
	return uri
}

// Name implements mlflowimport.Source.
func (s *Source) Name() string { return s.c.BaseURL() }

// Close implements mlflowimport.Source.
func (s *Source) Close() error {
	s.c.Close()
	return nil
}

func tags(in []mlflowclient.Tag) []tracking.Tag {
	if len(in) == 0 {
		return nil
	}
	out := make([]tracking.Tag, len(in))
	for i, t := range in {
		out[i] = tracking.Tag{Key: t.Key, Value: t.Value}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func metric(m mlflowclient.Metric) tracking.Metric {
	return tracking.Metric{Key: m.Key, Value: float64(m.Value), Timestamp: int64(m.Timestamp), Step: int64(m.Step)}
}

// Experiments implements mlflowimport.Source: experiments/search over
// every view type, with their tags.
func (s *Source) Experiments(ctx context.Context, report func(mlflowimport.Problem)) ([]*tracking.Experiment, error) {
	var out []*tracking.Experiment
	err := s.c.EachExperiment(ctx, mlflowclient.AllViews, func(e mlflowclient.Experiment) error {
		if e.ExperimentID == "" || e.Name == "" {
			report(mlflowimport.Problem{Kind: "experiment", ID: e.ExperimentID + e.Name, Err: errors.New("no id or no name")})
			return nil
		}
		x := &tracking.Experiment{ExperimentID: e.ExperimentID, Name: e.Name, ArtifactLocation: e.ArtifactLocation,
			LifecycleStage: e.LifecycleStage, CreationTime: int64(e.CreationTime), LastUpdateTime: int64(e.LastUpdateTime),
			Tags: tags(e.Tags)}
		if x.LifecycleStage == "" {
			x.LifecycleStage = tracking.LifecycleActive
		}
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// runPage is a runs/search answer with each run kept as JSON, so that
// one bad record does not lose the page.
type runPage struct {
	Runs          []json.RawMessage `json:"runs"`
	NextPageToken string            `json:"next_page_token"`
}

// Runs implements mlflowimport.Source: runs/search over every view type,
// a page at a time. A run whose record does not decode is fetched again
// with runs/get; one that still fails is reported and skipped.
func (s *Source) Runs(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.Run) error) error {
	q := mlflowclient.RunSearch{ExperimentIDs: []string{exp.ExperimentID}, RunViewType: mlflowclient.AllViews,
		MaxResults: int64(s.RunPageSize)}
	if q.MaxResults <= 0 {
		q.MaxResults = 1000
	}
	seen := map[string]bool{}
	for {
		var page runPage
		if err := s.c.Call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/search", nil, q, &page); err != nil {
			return err
		}
		for _, raw := range page.Runs {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := s.decodeRun(ctx, raw)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				report(mlflowimport.Problem{Kind: "run", ID: runIDOf(raw), Err: err})
				continue
			}
			id := r.Info.ID()
			if seen[id] {
				continue // a page boundary moved under a concurrent write
			}
			seen[id] = true
			if err := fn(s.run(ctx, r, report)); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" || len(page.Runs) == 0 {
			return nil
		}
		if page.NextPageToken == q.PageToken {
			return fmt.Errorf("runs/search of experiment %s answered the page token it was given", exp.ExperimentID)
		}
		q.PageToken = page.NextPageToken
	}
}

// runIDOf digs the id out of a run record that does not decode whole.
func runIDOf(raw json.RawMessage) string {
	var r struct {
		Info struct {
			RunID   string `json:"run_id"`
			RunUUID string `json:"run_uuid"`
		} `json:"info"`
	}
	_ = json.Unmarshal(raw, &r)
	if r.Info.RunID != "" {
		return r.Info.RunID
	}
	if r.Info.RunUUID != "" {
		return r.Info.RunUUID
	}
	return "(unknown id)"
}

func (s *Source) decodeRun(ctx context.Context, raw json.RawMessage) (*mlflowclient.Run, error) {
	var r mlflowclient.Run
	err := json.Unmarshal(raw, &r)
	if err == nil && r.Info.ID() != "" {
		return &r, nil
	}
	id := runIDOf(raw)
	if id == "(unknown id)" {
		if err == nil {
			err = errors.New("no run_id")
		}
		return nil, fmt.Errorf("the search answered a run record that does not decode: %w", err)
	}
	got, gerr := s.c.GetRun(ctx, id)
	if gerr != nil {
		return nil, fmt.Errorf("the search answered a record that does not decode (%v), and runs/get failed: %w", err, gerr)
	}
	return got, nil
}

// run converts a run and attaches its history and artifacts.
func (s *Source) run(ctx context.Context, r *mlflowclient.Run, report func(mlflowimport.Problem)) *mlflowimport.Run {
	id := r.Info.ID()
	// RunInfo carries no deleted_time (service.proto), so a deleted
	// run's DeletedTime stays 0.
	run := &tracking.Run{Info: tracking.RunInfo{RunUUID: id, RunID: id, ExperimentID: r.Info.ExperimentID,
		RunName: r.Info.RunName, UserID: r.Info.UserID, Status: r.Info.Status, StartTime: int64(r.Info.StartTime),
		EndTime: int64(r.Info.EndTime), ArtifactURI: r.Info.ArtifactURI, LifecycleStage: r.Info.LifecycleStage}}
	if run.Info.LifecycleStage == "" {
		run.Info.LifecycleStage = tracking.LifecycleActive
	}
	if run.Info.Status == "" {
		run.Info.Status = tracking.StatusRunning
	}
	keys := make([]string, 0, len(r.Data.Metrics))
	for _, m := range r.Data.Metrics {
		run.Data.Metrics = append(run.Data.Metrics, metric(m))
		keys = append(keys, m.Key)
	}
	sort.Slice(run.Data.Metrics, func(i, j int) bool { return run.Data.Metrics[i].Key < run.Data.Metrics[j].Key })
	sort.Strings(keys)
	for _, p := range r.Data.Params {
		run.Data.Params = append(run.Data.Params, tracking.Param{Key: p.Key, Value: p.Value})
	}
	sort.Slice(run.Data.Params, func(i, j int) bool { return run.Data.Params[i].Key < run.Data.Params[j].Key })
	run.Data.Tags = tags(r.Data.Tags)
	if r.Inputs != nil {
		for _, d := range r.Inputs.DatasetInputs {
			run.Inputs.DatasetInputs = append(run.Inputs.DatasetInputs, tracking.DatasetInput{Tags: tags(d.Tags),
				Dataset: tracking.Dataset{Name: d.Dataset.Name, Digest: d.Dataset.Digest, SourceType: d.Dataset.SourceType,
					Source: d.Dataset.Source, Schema: d.Dataset.Schema, Profile: d.Dataset.Profile}})
		}
		for _, m := range r.Inputs.ModelInputs {
			run.Inputs.ModelInputs = append(run.Inputs.ModelInputs, tracking.ModelInput{ModelID: m.ModelID})
		}
	}
	if r.Outputs != nil && len(r.Outputs.ModelOutputs) > 0 {
		run.Outputs = &tracking.RunOutputs{}
		for _, m := range r.Outputs.ModelOutputs {
			run.Outputs.ModelOutputs = append(run.Outputs.ModelOutputs, tracking.ModelOutput{ModelID: m.ModelID, Step: int64(m.Step)})
		}
	}
	out := &mlflowimport.Run{Run: run, History: func(ctx context.Context, fn func([]tracking.Metric) error) error {
		return s.history(ctx, id, keys, fn)
	}}
	out.Artifacts = s.runTree(id, run.Info.ArtifactURI)
	return out
}

// history streams a run's metric history key by key (every key has a
// latest value, so the run's metrics name them all), one get-history
// page at a time, each page decoded as it arrives and handed over in
// chunks of at most mlflowimport.HistoryChunk points: a server that
// ignores max_results (MLflow's file store before paging; caddy-mlflow,
// which streams a whole history) is never held in memory either.
func (s *Source) history(ctx context.Context, runID string, keys []string, fn func([]tracking.Metric) error) error {
	size := s.HistoryPageSize
	if size <= 0 {
		size = mlflowclient.HistoryPageSize
	}
	buf := make([]tracking.Metric, 0, mlflowimport.HistoryChunk)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := fn(buf)
		buf = make([]tracking.Metric, 0, cap(buf))
		return err
	}
	for _, key := range keys {
		token := ""
		for {
			n := 0
			next, err := s.c.StreamMetricHistoryPage(ctx, runID, key, size, token, func(m mlflowclient.Metric) error {
				p := metric(m)
				if p.Key == "" {
					p.Key = key
				}
				if p.Key != key {
					return fmt.Errorf("get-history answered a point of %q", p.Key)
				}
				n++
				buf = append(buf, p)
				if len(buf) >= mlflowimport.HistoryChunk {
					return flush()
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("metric %q: %w", key, err)
			}
			if next == "" || n == 0 {
				break
			}
			if next == token {
				return fmt.Errorf("metric %q: get-history answered the page token it was given", key)
			}
			token = next
		}
	}
	return flush()
}
