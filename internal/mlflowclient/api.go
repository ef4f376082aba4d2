package mlflowclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// View types of searches (MLflow's ViewType).
const (
	ActiveOnly  = "ACTIVE_ONLY"
	DeletedOnly = "DELETED_ONLY"
	AllViews    = "ALL"
)

// MLflow's limits on one runs/log-batch (mlflow/utils/validation.py).
const (
	MaxMetricsPerBatch  = 1000
	MaxParamsPerBatch   = 100
	MaxTagsPerBatch     = 100
	MaxEntitiesPerBatch = 1000
)

// HistoryPageSize is the max_results the Python client sends to
// metrics/get-history (and follows next_page_token from).
const HistoryPageSize = 25000

const (
	v2 = "/api/2.0/mlflow"
	v3 = "/api/3.0/mlflow"
)

// ---- experiments ----

// ExperimentSearch is an experiments/search request.
type ExperimentSearch struct {
	MaxResults int64    `json:"max_results,omitempty"`
	PageToken  string   `json:"page_token,omitempty"`
	Filter     string   `json:"filter,omitempty"`
	OrderBy    []string `json:"order_by,omitempty"`
	ViewType   string   `json:"view_type,omitempty"`
}

// ExperimentPage is one page of experiments.
type ExperimentPage struct {
	Experiments   []Experiment `json:"experiments"`
	NextPageToken string       `json:"next_page_token"`
}

// SearchExperiments is one experiments/search call.
func (c *Client) SearchExperiments(ctx context.Context, q ExperimentSearch) (*ExperimentPage, error) {
	var out ExperimentPage
	if err := c.post(ctx, v2+"/experiments/search", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EachExperiment calls fn for every experiment of viewType ("" is
// AllViews), following page tokens (pages of 1000).
func (c *Client) EachExperiment(ctx context.Context, viewType string, fn func(Experiment) error) error {
	if viewType == "" {
		viewType = AllViews
	}
	q := ExperimentSearch{MaxResults: 1000, ViewType: viewType}
	for {
		page, err := c.SearchExperiments(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range page.Experiments {
			if err := fn(e); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" || len(page.Experiments) == 0 {
			return nil
		}
		q.PageToken = page.NextPageToken
	}
}

// GetExperiment is experiments/get.
func (c *Client) GetExperiment(ctx context.Context, id string) (*Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	if err := c.get(ctx, v2+"/experiments/get", url.Values{"experiment_id": {id}}, &out); err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// GetExperimentByName is experiments/get-by-name; a missing experiment is
// an error IsNotFound accepts.
func (c *Client) GetExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	if err := c.get(ctx, v2+"/experiments/get-by-name", url.Values{"experiment_name": {name}}, &out); err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// CreateExperiment is experiments/create; it returns the new id.
func (c *Client) CreateExperiment(ctx context.Context, name, artifactLocation string, tags []Tag) (string, error) {
	in := struct {
		Name             string `json:"name"`
		ArtifactLocation string `json:"artifact_location,omitempty"`
		Tags             []Tag  `json:"tags,omitempty"`
	}{name, artifactLocation, tags}
	var out struct {
		ExperimentID string `json:"experiment_id"`
	}
	if err := c.post(ctx, v2+"/experiments/create", in, &out); err != nil {
		return "", err
	}
	return out.ExperimentID, nil
}

// SetExperimentTag is experiments/set-experiment-tag.
func (c *Client) SetExperimentTag(ctx context.Context, id, key, value string) error {
	return c.post(ctx, v2+"/experiments/set-experiment-tag",
		map[string]string{"experiment_id": id, "key": key, "value": value}, nil)
}

// DeleteExperiment is experiments/delete.
func (c *Client) DeleteExperiment(ctx context.Context, id string) error {
	return c.post(ctx, v2+"/experiments/delete", map[string]string{"experiment_id": id}, nil)
}

// RestoreExperiment is experiments/restore.
func (c *Client) RestoreExperiment(ctx context.Context, id string) error {
	return c.post(ctx, v2+"/experiments/restore", map[string]string{"experiment_id": id}, nil)
}

// ---- runs ----

// RunSearch is a runs/search request.
type RunSearch struct {
	ExperimentIDs []string `json:"experiment_ids"`
	Filter        string   `json:"filter,omitempty"`
	RunViewType   string   `json:"run_view_type,omitempty"`
	MaxResults    int64    `json:"max_results,omitempty"`
	OrderBy       []string `json:"order_by,omitempty"`
	PageToken     string   `json:"page_token,omitempty"`
}

// RunPage is one page of runs.
type RunPage struct {
	Runs          []Run  `json:"runs"`
	NextPageToken string `json:"next_page_token"`
}

// SearchRuns is one runs/search call.
func (c *Client) SearchRuns(ctx context.Context, q RunSearch) (*RunPage, error) {
	var out RunPage
	if err := c.post(ctx, v2+"/runs/search", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EachRun calls fn for every run of the experiments (viewType "" is
// AllViews), following page tokens (pages of 1000, MLflow's maximum
// with full data is 50000).
func (c *Client) EachRun(ctx context.Context, experimentIDs []string, viewType string, fn func(Run) error) error {
	if viewType == "" {
		viewType = AllViews
	}
	q := RunSearch{ExperimentIDs: experimentIDs, RunViewType: viewType, MaxResults: 1000}
	for {
		page, err := c.SearchRuns(ctx, q)
		if err != nil {
			return err
		}
		for _, r := range page.Runs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" || len(page.Runs) == 0 {
			return nil
		}
		q.PageToken = page.NextPageToken
	}
}

// GetRun is runs/get.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.get(ctx, v2+"/runs/get", url.Values{"run_id": {runID}}, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// CreateRun is a runs/create request.
type CreateRun struct {
	ExperimentID string `json:"experiment_id"`
	UserID       string `json:"user_id,omitempty"`
	RunName      string `json:"run_name,omitempty"`
	StartTime    int64  `json:"start_time,omitempty"`
	Tags         []Tag  `json:"tags,omitempty"`
}

// CreateRun is runs/create; it returns the new run.
func (c *Client) CreateRun(ctx context.Context, in CreateRun) (*Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.post(ctx, v2+"/runs/create", in, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// UpdateRun is a runs/update request; zero fields are left out.
type UpdateRun struct {
	RunID   string `json:"run_id"`
	Status  string `json:"status,omitempty"`
	EndTime int64  `json:"end_time,omitempty"`
	RunName string `json:"run_name,omitempty"`
}

// UpdateRun is runs/update.
func (c *Client) UpdateRun(ctx context.Context, in UpdateRun) (*RunInfo, error) {
	var out struct {
		RunInfo RunInfo `json:"run_info"`
	}
	if err := c.post(ctx, v2+"/runs/update", in, &out); err != nil {
		return nil, err
	}
	return &out.RunInfo, nil
}

// DeleteRun is runs/delete.
func (c *Client) DeleteRun(ctx context.Context, runID string) error {
	return c.post(ctx, v2+"/runs/delete", map[string]string{"run_id": runID}, nil)
}

// RestoreRun is runs/restore.
func (c *Client) RestoreRun(ctx context.Context, runID string) error {
	return c.post(ctx, v2+"/runs/restore", map[string]string{"run_id": runID}, nil)
}

// SetTag is runs/set-tag.
func (c *Client) SetTag(ctx context.Context, runID, key, value string) error {
	return c.post(ctx, v2+"/runs/set-tag", map[string]string{"run_id": runID, "key": key, "value": value}, nil)
}

// LogBatch is one runs/log-batch call; the caller keeps within MLflow's
// limits (LogBatchChunks cuts them).
func (c *Client) LogBatch(ctx context.Context, runID string, metrics []Metric, params []Param, tags []Tag) error {
	in := struct {
		RunID   string   `json:"run_id"`
		Metrics []Metric `json:"metrics,omitempty"`
		Params  []Param  `json:"params,omitempty"`
		Tags    []Tag    `json:"tags,omitempty"`
	}{runID, metrics, params, tags}
	return c.post(ctx, v2+"/runs/log-batch", in, nil)
}

// Batch is the content of one log-batch call.
type Batch struct {
	Metrics []Metric
	Params  []Param
	Tags    []Tag
}

// LogBatchChunks cuts metrics, params and tags into batches within
// MLflow's limits (1000 metrics, 100 params, 100 tags, 1000 in all),
// params and tags first, and sends them in order.
func (c *Client) LogBatchChunks(ctx context.Context, runID string, metrics []Metric, params []Param, tags []Tag) error {
	for _, b := range ChunkBatch(metrics, params, tags) {
		if err := c.LogBatch(ctx, runID, b.Metrics, b.Params, b.Tags); err != nil {
			return err
		}
	}
	return nil
}

// ChunkBatch cuts metrics, params and tags into batches within MLflow's
// log-batch limits. Params and tags go into the first batches; metric
// order is kept.
func ChunkBatch(metrics []Metric, params []Param, tags []Tag) []Batch {
	var out []Batch
	for len(metrics) > 0 || len(params) > 0 || len(tags) > 0 {
		var b Batch
		room := MaxEntitiesPerBatch
		n := min(len(params), MaxParamsPerBatch, room)
		b.Params, params = params[:n:n], params[n:]
		room -= n
		n = min(len(tags), MaxTagsPerBatch, room)
		b.Tags, tags = tags[:n:n], tags[n:]
		room -= n
		n = min(len(metrics), MaxMetricsPerBatch, room)
		b.Metrics, metrics = metrics[:n:n], metrics[n:]
		out = append(out, b)
	}
	return out
}

// LogInputs is runs/log-inputs (datasets).
func (c *Client) LogInputs(ctx context.Context, runID string, datasets []DatasetInput) error {
	in := struct {
		RunID    string         `json:"run_id"`
		Datasets []DatasetInput `json:"datasets"`
	}{runID, datasets}
	return c.post(ctx, v2+"/runs/log-inputs", in, nil)
}

// HistoryPage is one page of a metric's history.
type HistoryPage struct {
	Metrics       []Metric `json:"metrics"`
	NextPageToken string   `json:"next_page_token"`
}

// GetMetricHistoryPage is one metrics/get-history call (maxResults 0 is
// HistoryPageSize).
func (c *Client) GetMetricHistoryPage(ctx context.Context, runID, key string, maxResults int, pageToken string) (*HistoryPage, error) {
	if maxResults <= 0 {
		maxResults = HistoryPageSize
	}
	q := url.Values{"run_id": {runID}, "run_uuid": {runID}, "metric_key": {key}, "max_results": {strconv.Itoa(maxResults)}}
	if pageToken != "" {
		q.Set("page_token", pageToken)
	}
	var out HistoryPage
	if err := c.get(ctx, v2+"/metrics/get-history", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EachMetricPage calls fn with every page of a metric's history, in the
// server's order, following page tokens (a server that ignores
// max_results answers in one page).
func (c *Client) EachMetricPage(ctx context.Context, runID, key string, fn func([]Metric) error) error {
	token := ""
	for {
		page, err := c.GetMetricHistoryPage(ctx, runID, key, HistoryPageSize, token)
		if err != nil {
			return err
		}
		if len(page.Metrics) > 0 {
			if err := fn(page.Metrics); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" || len(page.Metrics) == 0 {
			return nil
		}
		token = page.NextPageToken
	}
}

// ---- model registry ----

// SearchPage is a registry search request (GET query parameters).
type SearchPage struct {
	Filter     string
	MaxResults int
	OrderBy    []string
	PageToken  string
}

func (s SearchPage) values() url.Values {
	q := url.Values{}
	if s.Filter != "" {
		q.Set("filter", s.Filter)
	}
	if s.MaxResults > 0 {
		q.Set("max_results", strconv.Itoa(s.MaxResults))
	}
	for _, o := range s.OrderBy {
		q.Add("order_by", o)
	}
	if s.PageToken != "" {
		q.Set("page_token", s.PageToken)
	}
	return q
}

// RegisteredModelPage is one page of registered models.
type RegisteredModelPage struct {
	RegisteredModels []RegisteredModel `json:"registered_models"`
	NextPageToken    string            `json:"next_page_token"`
}

// SearchRegisteredModels is one registered-models/search call.
func (c *Client) SearchRegisteredModels(ctx context.Context, q SearchPage) (*RegisteredModelPage, error) {
	var out RegisteredModelPage
	if err := c.get(ctx, v2+"/registered-models/search", q.values(), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EachRegisteredModel calls fn for every registered model matching
// filter, following page tokens (pages of 1000, MLflow's maximum).
func (c *Client) EachRegisteredModel(ctx context.Context, filter string, fn func(RegisteredModel) error) error {
	q := SearchPage{Filter: filter, MaxResults: 1000}
	for {
		page, err := c.SearchRegisteredModels(ctx, q)
		if err != nil {
			return err
		}
		for _, m := range page.RegisteredModels {
			if err := fn(m); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" || len(page.RegisteredModels) == 0 {
			return nil
		}
		q.PageToken = page.NextPageToken
	}
}

// GetRegisteredModel is registered-models/get.
func (c *Client) GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error) {
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	if err := c.get(ctx, v2+"/registered-models/get", url.Values{"name": {name}}, &out); err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// CreateRegisteredModel is registered-models/create.
func (c *Client) CreateRegisteredModel(ctx context.Context, name, description string, tags []Tag) (*RegisteredModel, error) {
	in := struct {
		Name        string `json:"name"`
		Tags        []Tag  `json:"tags,omitempty"`
		Description string `json:"description,omitempty"`
	}{name, tags, description}
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	if err := c.post(ctx, v2+"/registered-models/create", in, &out); err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// UpdateRegisteredModel is registered-models/update (the description).
func (c *Client) UpdateRegisteredModel(ctx context.Context, name, description string) error {
	return c.call(ctx, http.MethodPatch, v2+"/registered-models/update", nil,
		map[string]string{"name": name, "description": description}, nil)
}

// SetRegisteredModelTag is registered-models/set-tag.
func (c *Client) SetRegisteredModelTag(ctx context.Context, name, key, value string) error {
	return c.post(ctx, v2+"/registered-models/set-tag", map[string]string{"name": name, "key": key, "value": value}, nil)
}

// SetRegisteredModelAlias is registered-models/alias.
func (c *Client) SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error {
	return c.post(ctx, v2+"/registered-models/alias", map[string]string{"name": name, "alias": alias, "version": version}, nil)
}

// ModelVersionPage is one page of model versions.
type ModelVersionPage struct {
	ModelVersions []ModelVersion `json:"model_versions"`
	NextPageToken string         `json:"next_page_token"`
}

// SearchModelVersions is one model-versions/search call.
func (c *Client) SearchModelVersions(ctx context.Context, q SearchPage) (*ModelVersionPage, error) {
	var out ModelVersionPage
	if err := c.get(ctx, v2+"/model-versions/search", q.values(), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EachModelVersion calls fn for every model version matching filter
// (e.g. name='m'), following page tokens (pages of 10000, MLflow's
// maximum).
func (c *Client) EachModelVersion(ctx context.Context, filter string, fn func(ModelVersion) error) error {
	q := SearchPage{Filter: filter, MaxResults: 10000}
	for {
		page, err := c.SearchModelVersions(ctx, q)
		if err != nil {
			return err
		}
		for _, v := range page.ModelVersions {
			if err := fn(v); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" || len(page.ModelVersions) == 0 {
			return nil
		}
		q.PageToken = page.NextPageToken
	}
}

// GetModelVersion is model-versions/get.
func (c *Client) GetModelVersion(ctx context.Context, name, version string) (*ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := c.get(ctx, v2+"/model-versions/get", url.Values{"name": {name}, "version": {version}}, &out); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// CreateModelVersion is a model-versions/create request.
type CreateModelVersion struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	RunID       string `json:"run_id,omitempty"`
	Tags        []Tag  `json:"tags,omitempty"`
	RunLink     string `json:"run_link,omitempty"`
	Description string `json:"description,omitempty"`
	ModelID     string `json:"model_id,omitempty"`
}

// CreateModelVersion is model-versions/create; the server numbers the
// version.
func (c *Client) CreateModelVersion(ctx context.Context, in CreateModelVersion) (*ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := c.post(ctx, v2+"/model-versions/create", in, &out); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// TransitionModelVersionStage is model-versions/transition-stage.
func (c *Client) TransitionModelVersionStage(ctx context.Context, name, version, stage string, archiveExisting bool) (*ModelVersion, error) {
	in := struct {
		Name                    string `json:"name"`
		Version                 string `json:"version"`
		Stage                   string `json:"stage"`
		ArchiveExistingVersions bool   `json:"archive_existing_versions"`
	}{name, version, stage, archiveExisting}
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := c.post(ctx, v2+"/model-versions/transition-stage", in, &out); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// UpdateModelVersion is model-versions/update (the description).
func (c *Client) UpdateModelVersion(ctx context.Context, name, version, description string) error {
	return c.call(ctx, http.MethodPatch, v2+"/model-versions/update", nil,
		map[string]string{"name": name, "version": version, "description": description}, nil)
}

// SetModelVersionTag is model-versions/set-tag.
func (c *Client) SetModelVersionTag(ctx context.Context, name, version, key, value string) error {
	return c.post(ctx, v2+"/model-versions/set-tag",
		map[string]string{"name": name, "version": version, "key": key, "value": value}, nil)
}

// ---- logged models (MLflow 3) ----

// LoggedModelPage is one page of logged models.
type LoggedModelPage struct {
	Models        []LoggedModel `json:"models"`
	NextPageToken string        `json:"next_page_token"`
}

// SearchLoggedModels is one logged-models/search call. An MLflow 2.x
// server answers an error IsEndpointMissing accepts.
func (c *Client) SearchLoggedModels(ctx context.Context, experimentIDs []string, maxResults int, pageToken string) (*LoggedModelPage, error) {
	in := struct {
		ExperimentIDs []string `json:"experiment_ids"`
		MaxResults    int      `json:"max_results,omitempty"`
		PageToken     string   `json:"page_token,omitempty"`
	}{experimentIDs, maxResults, pageToken}
	var out LoggedModelPage
	if err := c.post(ctx, v2+"/logged-models/search", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EachLoggedModel calls fn for every logged model of the experiments;
// on a server without logged models (MLflow 2.x) it calls nothing and
// returns nil.
func (c *Client) EachLoggedModel(ctx context.Context, experimentIDs []string, fn func(LoggedModel) error) error {
	token := ""
	for {
		page, err := c.SearchLoggedModels(ctx, experimentIDs, 100, token)
		if IsEndpointMissing(err) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range page.Models {
			if err := fn(m); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" || len(page.Models) == 0 {
			return nil
		}
		token = page.NextPageToken
	}
}

// GetLoggedModel is GET logged-models/<id>.
func (c *Client) GetLoggedModel(ctx context.Context, modelID string) (*LoggedModel, error) {
	var out struct {
		Model LoggedModel `json:"model"`
	}
	if err := c.get(ctx, v2+"/logged-models/"+url.PathEscape(modelID), nil, &out); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// ---- traces (MLflow 3 API) ----

// TracePage is one page of traces/search (v3): TraceInfoV3 objects kept
// as JSON.
type TracePage struct {
	Traces        []json.RawMessage `json:"traces"`
	NextPageToken string            `json:"next_page_token"`
}

// SearchTracesV3 is one POST /api/3.0/mlflow/traces/search over the
// experiments. An MLflow 2.x server answers an error IsEndpointMissing
// accepts.
func (c *Client) SearchTracesV3(ctx context.Context, experimentIDs []string, maxResults int, pageToken string) (*TracePage, error) {
	type loc struct {
		Type             string            `json:"type"`
		MlflowExperiment map[string]string `json:"mlflow_experiment"`
	}
	in := struct {
		Locations  []loc  `json:"locations"`
		MaxResults int    `json:"max_results,omitempty"`
		PageToken  string `json:"page_token,omitempty"`
	}{MaxResults: maxResults, PageToken: pageToken}
	for _, id := range experimentIDs {
		in.Locations = append(in.Locations, loc{Type: "MLFLOW_EXPERIMENT", MlflowExperiment: map[string]string{"experiment_id": id}})
	}
	var out TracePage
	if err := c.post(ctx, v3+"/traces/search", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EachTraceV3 calls fn with every TraceInfoV3 of the experiments; on a
// server without the v3 trace API it calls nothing and returns nil.
func (c *Client) EachTraceV3(ctx context.Context, experimentIDs []string, fn func(json.RawMessage) error) error {
	token := ""
	for {
		page, err := c.SearchTracesV3(ctx, experimentIDs, 500, token)
		if IsEndpointMissing(err) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, t := range page.Traces {
			if err := fn(t); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" || len(page.Traces) == 0 {
			return nil
		}
		token = page.NextPageToken
	}
}

// GetTraceV3 is GET /api/3.0/mlflow/traces/get?trace_id=: the trace
// ({trace_info, spans}) as JSON.
func (c *Client) GetTraceV3(ctx context.Context, traceID string) (json.RawMessage, error) {
	var out struct {
		Trace json.RawMessage `json:"trace"`
	}
	if err := c.get(ctx, v3+"/traces/get", url.Values{"trace_id": {traceID}, "allow_partial": {"true"}}, &out); err != nil {
		return nil, err
	}
	if len(out.Trace) == 0 {
		return nil, fmt.Errorf("traces/get %s: no trace in the answer", traceID)
	}
	return out.Trace, nil
}

// GetTraceInfoV3 is GET /api/3.0/mlflow/traces/<id>: {trace_info} as JSON.
func (c *Client) GetTraceInfoV3(ctx context.Context, traceID string) (json.RawMessage, error) {
	var out struct {
		Trace struct {
			TraceInfo json.RawMessage `json:"trace_info"`
		} `json:"trace"`
	}
	if err := c.get(ctx, v3+"/traces/"+url.PathEscape(traceID), nil, &out); err != nil {
		return nil, err
	}
	return out.Trace.TraceInfo, nil
}
