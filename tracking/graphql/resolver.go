package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// request is the state of one GraphQL request shared by its resolvers.
type request struct {
	h *Handler

	mu   sync.Mutex
	exps map[string]*experimentObj // run.experiment lookups, by id
}

type requestKey struct{}

func requestFrom(ctx context.Context) *request {
	q, _ := ctx.Value(requestKey{}).(*request)
	return q
}

// resolverError is an error reported in the answer's errors list: MLflow
// lists the message of the MlflowException its handler raised.
type resolverError struct{ msg string }

func (e *resolverError) Error() string { return e.msg }

const internalMessage = "Internal server error; see the server log."

// call runs one REST request against the tracking API and decodes its
// answer into out. A REST error becomes a resolverError with MLflow's
// message; the API's authorization filtering (searches return only what
// the caller may read) applies because ctx carries the caller.
func (q *request) call(ctx context.Context, method, target string, body any, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return q.internal(fmt.Errorf("graphql: encoding %s: %w", target, err))
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return q.internal(fmt.Errorf("graphql: building %s: %w", target, err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: make(http.Header)}
	q.h.opts.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status != http.StatusOK {
		var e tracking.Error
		if json.Unmarshal(rec.body.Bytes(), &e) == nil && e.Message != "" {
			return &resolverError{e.Message}
		}
		return q.internal(fmt.Errorf("graphql: %s answered %d", target, rec.status))
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return q.internal(fmt.Errorf("graphql: decoding the answer of %s: %w", target, err))
	}
	return nil
}

func (q *request) internal(err error) error {
	q.h.log.Error("GraphQL resolver failed", zap.Error(err))
	return &resolverError{internalMessage}
}

// recorder buffers an internal REST answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// ---- authorization ----

// canReadExperiment reports whether the caller may read the experiment;
// true without an Authorizer (no gateway in front).
func (q *request) canReadExperiment(ctx context.Context, id string) (bool, error) {
	a := q.h.authorizer(ctx)
	if a == nil {
		return true, nil
	}
	ok, err := a.CanReadExperiment(ctx, id)
	if err != nil {
		return false, q.internal(fmt.Errorf("graphql: checking experiment %s: %w", id, err))
	}
	return ok, nil
}

// canReadRun reports whether the caller may read the run's experiment. A
// run that does not exist is let through: the REST call answers MLflow's
// not-found error, as the gateway does for REST.
func (q *request) canReadRun(ctx context.Context, id string) (bool, error) {
	if q.h.authorizer(ctx) == nil {
		return true, nil
	}
	run, err := q.h.opts.Store.GetRun(ctx, id)
	if err != nil {
		if tracking.IsCode(err, tracking.ResourceDoesNotExist) || tracking.IsCode(err, tracking.InvalidParameterValue) {
			return true, nil
		}
		return false, q.internal(fmt.Errorf("graphql: reading run %s: %w", id, err))
	}
	if run == nil {
		return true, nil
	}
	return q.canReadExperiment(ctx, run.Info.ExperimentID)
}

// readable keeps the experiment ids the caller may read.
func (q *request) readable(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		ok, err := q.canReadExperiment(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// ---- root resolvers ----

// root resolves Query and Mutation.
type root struct{}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefList(l *[]*string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(*l))
	for _, s := range *l {
		if s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// Test echoes its input (MLflow's test query).
func (*root) Test(args struct{ InputString *string }) *testObj {
	return &testObj{Output: args.InputString}
}

// TestMutation echoes its input (MLflow's testMutation).
func (*root) TestMutation(args struct{ InputString *string }) *testObj {
	return &testObj{Output: args.InputString}
}

type getExperimentInput struct {
	ExperimentID *string
}

// MlflowGetExperiment answers GetExperiment. Without READ on the
// experiment the field is null, as MLflow's GraphQL authorization
// middleware answers.
func (*root) MlflowGetExperiment(ctx context.Context, args struct{ Input *getExperimentInput }) (*getExperimentResponse, error) {
	q := requestFrom(ctx)
	var id string
	if args.Input != nil {
		id = deref(args.Input.ExperimentID)
	}
	if id != "" {
		if ok, err := q.canReadExperiment(ctx, id); err != nil || !ok {
			return nil, err
		}
	}
	var out struct {
		Experiment tracking.Experiment `json:"experiment"`
	}
	if err := q.call(ctx, http.MethodGet, "/api/2.0/mlflow/experiments/get?"+url.Values{"experiment_id": {id}}.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &getExperimentResponse{Experiment: newExperiment(&out.Experiment)}, nil
}

type getRunInput struct {
	RunID   *string
	RunUUID *string
}

func runQuery(runID, runUUID string) url.Values {
	v := url.Values{}
	if runID != "" {
		v.Set("run_id", runID)
	}
	if runUUID != "" {
		v.Set("run_uuid", runUUID)
	}
	return v
}

// MlflowGetRun answers GetRun; null without READ on the run's experiment.
func (*root) MlflowGetRun(ctx context.Context, args struct{ Input *getRunInput }) (*getRunResponse, error) {
	q := requestFrom(ctx)
	var runID, runUUID string
	if args.Input != nil {
		runID, runUUID = deref(args.Input.RunID), deref(args.Input.RunUUID)
	}
	if id := firstNonEmpty(runID, runUUID); id != "" {
		if ok, err := q.canReadRun(ctx, id); err != nil || !ok {
			return nil, err
		}
	}
	var out struct {
		Run wireRun `json:"run"`
	}
	if err := q.call(ctx, http.MethodGet, "/api/2.0/mlflow/runs/get?"+runQuery(runID, runUUID).Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &getRunResponse{Run: newRun(q, &out.Run)}, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type searchRunsInput struct {
	ExperimentIDs *[]*string
	Filter        *string
	RunViewType   *string
	MaxResults    *int32
	OrderBy       *[]*string
	PageToken     *string
}

// MlflowSearchRuns answers SearchRuns over the experiments the caller may
// read; null when it may read none of those named (MLflow's middleware).
func (*root) MlflowSearchRuns(ctx context.Context, args struct{ Input *searchRunsInput }) (*searchRunsResponse, error) {
	q := requestFrom(ctx)
	in := args.Input
	if in == nil {
		in = &searchRunsInput{}
	}
	ids := derefList(in.ExperimentIDs)
	if len(ids) > 0 {
		var err error
		if ids, err = q.readable(ctx, ids); err != nil || len(ids) == 0 {
			return nil, err
		}
	}
	body := map[string]any{}
	if in.ExperimentIDs != nil {
		body["experiment_ids"] = ids
	}
	if in.Filter != nil {
		body["filter"] = *in.Filter
	}
	if in.RunViewType != nil {
		body["run_view_type"] = *in.RunViewType
	}
	if in.MaxResults != nil {
		body["max_results"] = *in.MaxResults
	}
	if in.OrderBy != nil {
		body["order_by"] = derefList(in.OrderBy)
	}
	if in.PageToken != nil {
		body["page_token"] = *in.PageToken
	}
	var out struct {
		Runs          []wireRun `json:"runs"`
		NextPageToken string    `json:"next_page_token"`
	}
	if err := q.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/search", body, &out); err != nil {
		return nil, err
	}
	runs := make([]*runObj, len(out.Runs))
	for i := range out.Runs {
		runs[i] = newRun(q, &out.Runs[i])
	}
	return &searchRunsResponse{Runs: &runs, NextPageToken: str(out.NextPageToken)}, nil
}

type listArtifactsInput struct {
	RunID     *string
	RunUUID   *string
	Path      *string
	PageToken *string
}

// MlflowListArtifacts answers ListArtifacts; null without READ on the
// run's experiment.
func (*root) MlflowListArtifacts(ctx context.Context, args struct{ Input *listArtifactsInput }) (*listArtifactsResponse, error) {
	q := requestFrom(ctx)
	in := args.Input
	if in == nil {
		in = &listArtifactsInput{}
	}
	runID, runUUID := deref(in.RunID), deref(in.RunUUID)
	if id := firstNonEmpty(runID, runUUID); id != "" {
		if ok, err := q.canReadRun(ctx, id); err != nil || !ok {
			return nil, err
		}
	}
	v := runQuery(runID, runUUID)
	if in.Path != nil {
		v.Set("path", *in.Path)
	}
	if in.PageToken != nil {
		v.Set("page_token", *in.PageToken)
	}
	var out struct {
		RootURI       string              `json:"root_uri"`
		Files         []tracking.FileInfo `json:"files"`
		NextPageToken string              `json:"next_page_token"`
	}
	if err := q.call(ctx, http.MethodGet, "/api/2.0/mlflow/artifacts/list?"+v.Encode(), nil, &out); err != nil {
		return nil, err
	}
	files := make([]*fileInfoObj, len(out.Files))
	for i, f := range out.Files {
		files[i] = &fileInfoObj{Path: str(f.Path), IsDir: boolean(f.IsDir), FileSize: long(f.FileSize)}
	}
	return &listArtifactsResponse{RootURI: str(out.RootURI), Files: &files, NextPageToken: str(out.NextPageToken)}, nil
}

type bulkIntervalInput struct {
	RunIDs     *[]*string
	MetricKey  *string
	StartStep  *int32
	EndStep    *int32
	MaxResults *int32
}

// MlflowGetMetricHistoryBulkInterval answers GetMetricHistoryBulkInterval;
// null when any of the runs is in an experiment the caller may not read.
func (*root) MlflowGetMetricHistoryBulkInterval(ctx context.Context, args struct{ Input *bulkIntervalInput }) (*bulkIntervalResponse, error) {
	q := requestFrom(ctx)
	in := args.Input
	if in == nil {
		in = &bulkIntervalInput{}
	}
	runIDs := derefList(in.RunIDs)
	for _, id := range runIDs {
		if id == "" {
			continue
		}
		if ok, err := q.canReadRun(ctx, id); err != nil || !ok {
			return nil, err
		}
	}
	v := url.Values{}
	for _, id := range runIDs {
		v.Add("run_ids", id)
	}
	if in.MetricKey != nil {
		v.Set("metric_key", *in.MetricKey)
	}
	for name, n := range map[string]*int32{"start_step": in.StartStep, "end_step": in.EndStep, "max_results": in.MaxResults} {
		if n != nil {
			v.Set(name, strconv.FormatInt(int64(*n), 10))
		}
	}
	var out struct {
		Metrics []wireMetric `json:"metrics"`
	}
	if err := q.call(ctx, http.MethodGet, "/api/2.0/mlflow/metrics/get-history-bulk-interval?"+v.Encode(), nil, &out); err != nil {
		return nil, err
	}
	metrics := make([]*metricWithRunIDObj, len(out.Metrics))
	for i, m := range out.Metrics {
		metrics[i] = &metricWithRunIDObj{
			Key: str(m.Key), Value: floatValue(float64(m.Value)),
			Timestamp: long(m.Timestamp), Step: long(m.Step), RunID: str(m.RunID),
		}
	}
	return &bulkIntervalResponse{Metrics: &metrics}, nil
}

type searchDatasetsInput struct {
	ExperimentIDs *[]*string
}

// MlflowSearchDatasets answers SearchDatasets over the experiments the
// caller may read; null when it may read none of them.
func (*root) MlflowSearchDatasets(ctx context.Context, args struct{ Input *searchDatasetsInput }) (*searchDatasetsResponse, error) {
	q := requestFrom(ctx)
	var ids []string
	if args.Input != nil {
		ids = derefList(args.Input.ExperimentIDs)
	}
	if len(ids) > 0 {
		var err error
		if ids, err = q.readable(ctx, ids); err != nil || len(ids) == 0 {
			return nil, err
		}
	}
	var out struct {
		DatasetSummaries []struct {
			ExperimentID string `json:"experiment_id"`
			Name         string `json:"name"`
			Digest       string `json:"digest"`
			Context      string `json:"context"`
		} `json:"dataset_summaries"`
	}
	if err := q.call(ctx, http.MethodPost, "/ajax-api/2.0/mlflow/experiments/search-datasets", map[string]any{"experiment_ids": ids}, &out); err != nil {
		return nil, err
	}
	sums := make([]*datasetSummaryObj, len(out.DatasetSummaries))
	for i, d := range out.DatasetSummaries {
		sums[i] = &datasetSummaryObj{str(d.ExperimentID), str(d.Name), str(d.Digest), str(d.Context)}
	}
	return &searchDatasetsResponse{DatasetSummaries: &sums}, nil
}

type searchModelVersionsInput struct {
	Filter     *string
	MaxResults *longString
	OrderBy    *[]*string
	PageToken  *string
}

// MlflowSearchModelVersions answers SearchModelVersions; versions of
// models the caller may not read are left out, as for REST.
func (*root) MlflowSearchModelVersions(ctx context.Context, args struct{ Input *searchModelVersionsInput }) (*searchModelVersionsResponse, error) {
	q := requestFrom(ctx)
	in := args.Input
	if in == nil {
		in = &searchModelVersionsInput{}
	}
	v := url.Values{}
	if in.Filter != nil {
		v.Set("filter", *in.Filter)
	}
	if in.MaxResults != nil {
		v.Set("max_results", strconv.FormatInt(int64(*in.MaxResults), 10))
	}
	for _, o := range derefList(in.OrderBy) {
		v.Add("order_by", o)
	}
	if in.PageToken != nil {
		v.Set("page_token", *in.PageToken)
	}
	versions, next, err := q.searchModelVersions(ctx, v)
	if err != nil {
		return nil, err
	}
	return &searchModelVersionsResponse{ModelVersions: versions, NextPageToken: str(next)}, nil
}

func (q *request) searchModelVersions(ctx context.Context, v url.Values) (*[]*modelVersionObj, string, error) {
	var out struct {
		ModelVersions []wireModelVersion `json:"model_versions"`
		NextPageToken string             `json:"next_page_token"`
	}
	target := "/api/2.0/mlflow/model-versions/search"
	if len(v) > 0 {
		target += "?" + v.Encode()
	}
	if err := q.call(ctx, http.MethodGet, target, nil, &out); err != nil {
		return nil, "", err
	}
	versions := make([]*modelVersionObj, len(out.ModelVersions))
	for i := range out.ModelVersions {
		versions[i] = newModelVersion(&out.ModelVersions[i])
	}
	return &versions, out.NextPageToken, nil
}

// ---- run extension fields ----

// Experiment resolves MlflowRunExtension.experiment: the run's experiment,
// readable since the run was.
func (r *runObj) Experiment(ctx context.Context) (*experimentObj, error) {
	q := r.q
	id := r.meta.ExperimentID
	q.mu.Lock()
	e, ok := q.exps[id]
	q.mu.Unlock()
	if ok {
		return e, nil
	}
	var out struct {
		Experiment tracking.Experiment `json:"experiment"`
	}
	if err := q.call(ctx, http.MethodGet, "/api/2.0/mlflow/experiments/get?"+url.Values{"experiment_id": {id}}.Encode(), nil, &out); err != nil {
		return nil, err
	}
	e = newExperiment(&out.Experiment)
	q.mu.Lock()
	q.exps[id] = e
	q.mu.Unlock()
	return e, nil
}

// ModelVersions resolves MlflowRunExtension.modelVersions: the versions
// registered from the run, of models the caller may read.
func (r *runObj) ModelVersions(ctx context.Context) (*[]*modelVersionObj, error) {
	filter := "run_id='" + strings.ReplaceAll(r.meta.RunID, "'", `\'`) + "'"
	versions, _, err := r.q.searchModelVersions(ctx, url.Values{"filter": {filter}})
	return versions, err
}
