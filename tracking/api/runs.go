package api

import (
	"context"
	"net/http"
	"slices"
	"sort"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// DefaultSearchRunsMaxResults is search-runs' max_results when absent.
const DefaultSearchRunsMaxResults = 1000

var runStatuses = map[string]int{"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}

var runStatusNames = [...]string{1: tracking.StatusRunning, 2: tracking.StatusScheduled, 3: tracking.StatusFinished,
	4: tracking.StatusFailed, 5: tracking.StatusKilled}

type runResponse struct {
	Run *tracking.Run `json:"run"`
}

// createRunRequest is CreateRun.
type createRunRequest struct {
	ExperimentID, RunName, UserID string
	StartTime                     int64
	Tags                          []tracking.Tag
}

func (q *createRunRequest) decl() []spec {
	return []spec{
		idStr("experiment_id", &q.ExperimentID),
		int64Field("start_time", &q.StartTime, 0),
		str("run_name", &q.RunName),
		str("user_id", &q.UserID),
		tagList("tags", &q.Tags),
	}
}

// validate refuses a missing experiment id up front: MLflow 2.22.1 lets it
// through to the database, which fails with an SQL error surfaced as
// BAD_REQUEST (no database text here, same status class). Then each tag.
func (q *createRunRequest) validate() error {
	if q.ExperimentID == "" {
		return missingValue("experiment_id")
	}
	for i := range q.Tags {
		if err := validate.Tag(&q.Tags[i], ""); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *createRunRequest) error {
		exp, err := s.store.GetExperiment(r.Context(), q.ExperimentID)
		if err != nil {
			return err
		}
		if exp == nil {
			return tracking.Errorf(tracking.ResourceDoesNotExist, "No Experiment with id=%s exists", q.ExperimentID)
		}
		if err := q.reconcileRunName(exp.LifecycleStage == tracking.LifecycleActive); err != nil {
			return err
		}
		run, err := s.store.CreateRun(r.Context(), tracking.CreateRun{
			ExperimentID: q.ExperimentID,
			UserID:       q.UserID,
			RunName:      q.RunName,
			StartTime:    q.StartTime,
			Tags:         q.Tags,
		})
		return answer(w, runResponse{run}, err)
	})
}

// reconcileRunName settles run_name and the mlflow.runName tag as MLflow's
// store does after its experiment checks: both given must agree (for an
// active experiment), either one fills the other, and neither gets a
// generated name.
func (q *createRunRequest) reconcileRunName(active bool) error {
	tagIdx := slices.IndexFunc(q.Tags, func(t tracking.Tag) bool { return t.Key == tracking.TagRunName })
	tagName := ""
	if tagIdx >= 0 {
		tagName = q.Tags[tagIdx].Value
	}
	if active && q.RunName != "" && tagName != "" && q.RunName != tagName {
		return invalidParam("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "+
			"different values (run_name='%s', mlflow.runName='%s').", q.RunName, tagName)
	}
	if q.RunName == "" {
		q.RunName = tagName
	}
	if q.RunName == "" {
		q.RunName = generateRunName()
	}
	switch {
	case tagName != "":
	case tagIdx >= 0:
		q.Tags[tagIdx].Value = q.RunName
	default:
		q.Tags = append(q.Tags, tracking.Tag{Key: tracking.TagRunName, Value: q.RunName})
	}
	return nil
}

// runRequest is every request naming one run and nothing else: GetRun,
// DeleteRun, RestoreRun.
type runRequest struct{ ID string }

func (q *runRequest) decl() []spec { return []spec{runIDField(&q.ID)} }

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *runRequest) error {
		id := q.ID
		run, err := s.findRun(r.Context(), id)
		if err != nil {
			return err
		}
		normalizeRun(run)
		return answer(w, runResponse{run}, nil)
	})
}

// findRun is the store's run id, or MLflow's "Run with id=<id> not found".
func (s *Server) findRun(ctx context.Context, id string) (*tracking.Run, error) {
	run, err := s.store.GetRun(ctx, id)
	if err == nil && run == nil {
		err = runNotFound(id)
	}
	return run, err
}

func runNotFound(id string) *tracking.Error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Run with id=%s not found", id)
}

// updateRunRequest is UpdateRun: only the fields present are applied.
type updateRunRequest struct {
	ID      string
	EndTime *int64
	Status  int
	RunName string
}

func (q *updateRunRequest) decl() []spec {
	return []spec{
		runIDField(&q.ID),
		optInt64("end_time", &q.EndTime),
		enumStrField("status", &q.Status, runStatuses, 0),
		str("run_name", &q.RunName),
	}
}

func (s *Server) updateRun(w http.ResponseWriter, r *http.Request) error {
	var q updateRunRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	req := tracking.UpdateRun{EndTime: q.EndTime}
	if q.Status != 0 {
		name := runStatusNames[q.Status]
		req.Status = &name
	}
	if q.RunName != "" {
		req.RunName = &q.RunName
	}
	info, err := s.store.UpdateRun(r.Context(), q.ID, req)
	return answer(w, struct {
		RunInfo *tracking.RunInfo `json:"run_info"`
	}{info}, err)
}

func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *runRequest) error {
		return answerEmpty(w, s.store.DeleteRun(r.Context(), q.ID))
	})
}

func (s *Server) restoreRun(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *runRequest) error {
		return answerEmpty(w, s.store.RestoreRun(r.Context(), q.ID))
	})
}

// searchRunsRequest is SearchRuns. run_view_type has no schema in
// MLflow, so an unknown number is ignored (enumField).
type searchRunsRequest struct {
	ExperimentIDs     []string
	Filter, PageToken string
	MaxResults        int64
	OrderBy           []string
	ViewType          int

	filter  search.RunFilter
	orderBy []search.OrderKey
}

func (q *searchRunsRequest) decl() []spec {
	return []spec{
		idList("experiment_ids", &q.ExperimentIDs),
		str("filter", &q.Filter),
		int64Field("max_results", &q.MaxResults, DefaultSearchRunsMaxResults).check(atMost(&q.MaxResults, MaxSearchResults)),
		strList("order_by", &q.OrderBy),
		enumField("run_view_type", &q.ViewType, viewTypes, int(tracking.ActiveOnly)),
		str("page_token", &q.PageToken),
	}
}

// validate makes the store's checks: max_results positive
// (_validate_max_results_param), then the filter and order_by parse.
func (q *searchRunsRequest) validate() (err error) {
	if q.MaxResults < 1 {
		return invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", q.MaxResults)
	}
	if q.filter, err = search.ParseRunFilter(q.Filter); err != nil {
		return err
	}
	q.orderBy, err = search.ParseRunOrderBy(q.OrderBy)
	return err
}

func (s *Server) searchRuns(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *searchRunsRequest) error {
		maxResults, pageToken := q.MaxResults, q.PageToken
		page, err := s.store.SearchRuns(r.Context(), tracking.RunQuery{
			ExperimentIDs: q.ExperimentIDs,
			Filter:        q.filter,
			OrderBy:       q.orderBy,
			ViewType:      tracking.ViewType(q.ViewType),
			MaxResults:    int(maxResults),
			PageToken:     pageToken,
		})
		if err != nil {
			return err
		}
		next := page.NextPageToken // the store issues one for every full page, as MLflow does
		for _, run := range page.Runs {
			normalizeRun(run)
		}
		return answer(w, struct {
			Runs          []*tracking.Run `json:"runs,omitempty"`
			NextPageToken string          `json:"next_page_token,omitempty"`
		}{page.Runs, next}, nil)
	})
}

// metric declares a Metric message (log-metric's fields after run_id,
// and each of log-batch's metrics): key, value and timestamp required, then
// MLflow 3's model_id, dataset_name and dataset_digest. log-metric's schema
// checks the timestamp's type before its presence (timestampTypeFirst), while
// log-batch's _assert_metrics_fields_present checks presence alone.
func metric(m *tracking.ModelMetric, timestampTypeFirst bool) []spec {
	ts := int64Field("timestamp", &m.Timestamp, 0).req()
	if timestampTypeFirst {
		ts = ts.reqAfterType()
	}
	return []spec{
		str("key", &m.Key).req(),
		float64Field("value", &m.Value).req(),
		ts,
		int64Field("step", &m.Step, 0),
		str("model_id", &m.ModelID),
		str("dataset_name", &m.DatasetName),
		str("dataset_digest", &m.DatasetDigest),
	}
}

// batch splits decoded metrics into the run's metrics and, for those with
// a model_id, the metrics of logged models.
func batch(ms []tracking.ModelMetric, params []tracking.Param, tags []tracking.Tag) tracking.Batch {
	b := tracking.Batch{Params: params, Tags: tags}
	if len(ms) > 0 {
		b.Metrics = make([]tracking.Metric, len(ms))
	}
	for i, m := range ms {
		b.Metrics[i] = tracking.Metric{Key: m.Key, Value: m.Value, Timestamp: m.Timestamp, Step: m.Step}
		if m.ModelID != "" {
			b.ModelMetrics = append(b.ModelMetrics, m)
		}
	}
	return b
}

// clamp clamps the batch's metric values once validated, as MLflow's SQL
// store does.
func clamp(b *tracking.Batch) {
	for i := range b.Metrics {
		b.Metrics[i].Value = tracking.ClampMetricValue(b.Metrics[i].Value)
	}
	for i := range b.ModelMetrics {
		b.ModelMetrics[i].Value = tracking.ClampMetricValue(b.ModelMetrics[i].Value)
	}
}

// logMetricRequest is LogMetric.
type logMetricRequest struct {
	ID     string
	Metric tracking.ModelMetric
	batch  tracking.Batch
}

func (q *logMetricRequest) decl() []spec {
	return append([]spec{runIDField(&q.ID)}, metric(&q.Metric, true)...)
}

func (q *logMetricRequest) validate() error {
	q.batch = batch([]tracking.ModelMetric{q.Metric}, nil, nil)
	if err := validate.Metric(q.batch.Metrics[0], ""); err != nil {
		return err
	}
	clamp(&q.batch)
	return nil
}

func (s *Server) logMetric(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *logMetricRequest) error {
		return answerEmpty(w, s.store.LogBatch(r.Context(), q.ID, q.batch))
	})
}

// logParamRequest is LogParam.
type logParamRequest struct {
	ID    string
	Param tracking.Param
}

func (q *logParamRequest) decl() []spec {
	return append([]spec{runIDField(&q.ID)}, keyValue(&q.Param.Key, &q.Param.Value)...)
}

func (q *logParamRequest) validate() error { return validate.Param(&q.Param, "") }

func (s *Server) logParam(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *logParamRequest) error {
		return answerEmpty(w, s.store.LogParam(r.Context(), q.ID, q.Param))
	})
}

// runTagRequest is SetTag and DeleteTag (which has no value).
type runTagRequest struct {
	ID  string
	Tag tracking.Tag
	set bool
}

func (q *runTagRequest) decl() []spec {
	d := append([]spec{runIDField(&q.ID)}, keyValue(&q.Tag.Key, &q.Tag.Value)...)
	if !q.set {
		d = d[:2]
	}
	return d
}

func (q *runTagRequest) validate() error {
	if !q.set {
		return nil
	}
	return validate.Tag(&q.Tag, "")
}

func (s *Server) setTag(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &runTagRequest{set: true}, func(q *runTagRequest) error {
		return answerEmpty(w, s.store.LogBatch(r.Context(), q.ID, tracking.Batch{Tags: []tracking.Tag{q.Tag}}))
	})
}

func (s *Server) deleteTag(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *runTagRequest) error {
		return answerEmpty(w, s.store.DeleteTag(r.Context(), q.ID, q.Tag.Key))
	})
}

// logBatchRequest is LogBatch.
type logBatchRequest struct {
	ID      string
	Metrics []tracking.ModelMetric
	Params  []tracking.Param
	Tags    []tracking.Tag
	batch   tracking.Batch
}

func (q *logBatchRequest) decl() []spec {
	return []spec{
		batchRunIDField(&q.ID),
		msgList("metrics", &q.Metrics, func(m *tracking.ModelMetric) []spec { return metric(m, false) }),
		msgList("params", &q.Params, func(p *tracking.Param) []spec { return keyValue(&p.Key, &p.Value) }),
		msgList("tags", &q.Tags, func(t *tracking.Tag) []spec { return keyValue(&t.Key, &t.Value) }),
	}
}

// validate makes MLflow's _validate_batch_log_data checks, then clamps the
// metric values.
func (q *logBatchRequest) validate() error {
	q.batch = batch(q.Metrics, q.Params, q.Tags)
	if err := validate.Batch(q.ID, &q.batch); err != nil {
		return err
	}
	clamp(&q.batch)
	return nil
}

func (s *Server) logBatch(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *logBatchRequest) error {
		return answerEmpty(w, s.store.LogBatch(r.Context(), q.ID, q.batch))
	})
}

// logInputsRequest is LogInputs. MLflow 3 made datasets optional (2.x
// required it): mlflow.log_metric with a model_id sends models only.
type logInputsRequest struct {
	ID       string
	Datasets []tracking.DatasetInput
	Models   []tracking.ModelInput
}

func (q *logInputsRequest) decl() []spec {
	return []spec{
		batchRunIDField(&q.ID),
		msgList("datasets", &q.Datasets, func(in *tracking.DatasetInput) []spec {
			d := &in.Dataset
			return []spec{
				msgList("tags", &in.Tags, func(t *tracking.Tag) []spec { return keyValue(&t.Key, &t.Value) }),
				msg("dataset", []spec{
					str("name", &d.Name), str("digest", &d.Digest), str("source_type", &d.SourceType),
					str("source", &d.Source), str("schema", &d.Schema), str("profile", &d.Profile),
				}),
			}
		}),
		msgList("models", &q.Models, func(m *tracking.ModelInput) []spec {
			return []spec{str("model_id", &m.ModelID).req()}
		}),
	}
}

func (q *logInputsRequest) validate() error {
	if err := validate.RunID(q.ID, "run_id"); err != nil {
		return err
	}
	return validate.DatasetInputs(q.Datasets)
}

func (s *Server) logInputs(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *logInputsRequest) error {
		return answerEmpty(w, s.store.LogInputs(r.Context(), q.ID, q.Datasets, q.Models))
	})
}

// normalizeRun orders each dataset input's tags by key, as MLflow's SQL
// store returns them.
func normalizeRun(run *tracking.Run) {
	if run == nil {
		return
	}
	for i := range run.Inputs.DatasetInputs {
		tags := run.Inputs.DatasetInputs[i].Tags
		sort.SliceStable(tags, func(a, b int) bool { return tags[a].Key < tags[b].Key })
	}
}
