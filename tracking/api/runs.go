package api

import (
	"net/http"
	"sort"
	"strconv"

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

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	expID, _, err := f.strAt("experiment_id", "experiment_id", true)
	if err != nil {
		return err
	}
	startTime, _, err := f.int64("start_time")
	if err != nil {
		return err
	}
	runName, _, err := f.str("run_name")
	if err != nil {
		return err
	}
	userID, _, err := f.str("user_id")
	if err != nil {
		return err
	}
	tags, err := readTags(f, "tags")
	if err != nil {
		return err
	}
	// MLflow 2.22.1 lets a missing experiment id through to the database,
	// which fails with an SQL error surfaced as BAD_REQUEST. We refuse it
	// up front instead (no database text, same status class).
	if expID == "" {
		return missingValue("experiment_id")
	}
	for i := range tags {
		if err := validate.Tag(&tags[i], ""); err != nil {
			return err
		}
	}
	exp, err := s.store.GetExperiment(r.Context(), expID)
	if err != nil {
		return err
	}
	if exp == nil {
		return tracking.Errorf(tracking.ResourceDoesNotExist, "No Experiment with id=%s exists", expID)
	}
	// Reconcile run_name with the mlflow.runName tag, as MLflow's store
	// does (after its experiment checks, which the store repeats).
	tagIdx := -1
	for i, t := range tags {
		if t.Key == tracking.TagRunName {
			tagIdx = i
			break
		}
	}
	tagName := ""
	if tagIdx >= 0 {
		tagName = tags[tagIdx].Value
	}
	if exp.LifecycleStage == tracking.LifecycleActive && runName != "" && tagName != "" && runName != tagName {
		return invalidParam("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "+
			"different values (run_name='%s', mlflow.runName='%s').", runName, tagName)
	}
	if runName == "" {
		runName = tagName
	}
	if runName == "" {
		runName = generateRunName()
	}
	if tagName == "" {
		if tagIdx >= 0 {
			tags[tagIdx].Value = runName
		} else {
			tags = append(tags, tracking.Tag{Key: tracking.TagRunName, Value: runName})
		}
	}
	run, err := s.store.CreateRun(r.Context(), tracking.CreateRun{
		ExperimentID: expID,
		UserID:       userID,
		RunName:      runName,
		StartTime:    startTime,
		Tags:         tags,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, runResponse{run})
	return nil
}

// runRequest is every request naming one run and nothing else: GetRun,
// DeleteRun, RestoreRun.
type runRequest struct{ ID string }

func (q *runRequest) decl() []spec { return []spec{runIDField(&q.ID)} }

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) error {
	var q runRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	id := q.ID
	run, err := s.store.GetRun(r.Context(), id)
	if err != nil {
		return err
	}
	if run == nil {
		return runNotFound(id)
	}
	normalizeRun(run)
	writeJSON(w, http.StatusOK, runResponse{run})
	return nil
}

func runNotFound(id string) *tracking.Error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Run with id=%s not found", id)
}

func (s *Server) updateRun(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.runID()
	if err != nil {
		return err
	}
	var req tracking.UpdateRun
	endTime, ok, err := f.int64("end_time")
	if err != nil {
		return err
	}
	if ok {
		req.EndTime = &endTime
	}
	status, ok, err := f.enum("status", runStatuses)
	if err != nil {
		return err
	}
	if ok {
		name := runStatusNames[status]
		req.Status = &name
	}
	runName, _, err := f.str("run_name")
	if err != nil {
		return err
	}
	if runName != "" {
		req.RunName = &runName
	}
	info, err := s.store.UpdateRun(r.Context(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		RunInfo *tracking.RunInfo `json:"run_info"`
	}{info})
	return nil
}

func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request) error {
	var q runRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	return answerEmpty(w, s.store.DeleteRun(r.Context(), q.ID))
}

func (s *Server) restoreRun(w http.ResponseWriter, r *http.Request) error {
	var q runRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	return answerEmpty(w, s.store.RestoreRun(r.Context(), q.ID))
}

func (s *Server) searchRuns(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	ids, _, err := f.strList("experiment_ids", true)
	if err != nil {
		return err
	}
	filter, _, err := f.str("filter")
	if err != nil {
		return err
	}
	mv, present := f.lookup("max_results")
	maxResults, _, err := f.maxResults(DefaultSearchRunsMaxResults)
	if err != nil {
		return err
	}
	if present && (maxResults > MaxSearchResults || maxResults < 1) {
		return invalidType("max_results", mv)
	}
	orderBy, _, err := f.strList("order_by", false)
	if err != nil {
		return err
	}
	view, ok, err := f.enum("run_view_type", viewTypes)
	if err != nil {
		return err
	}
	if !ok {
		view = int(tracking.ActiveOnly)
	}
	pageToken, _, err := f.str("page_token")
	if err != nil {
		return err
	}
	filt, err := search.ParseRunFilter(filter)
	if err != nil {
		return err
	}
	keys, err := search.ParseRunOrderBy(orderBy)
	if err != nil {
		return err
	}
	page, err := s.store.SearchRuns(r.Context(), tracking.RunQuery{
		ExperimentIDs: ids,
		Filter:        filt,
		OrderBy:       keys,
		ViewType:      tracking.ViewType(view),
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
	writeJSON(w, http.StatusOK, struct {
		Runs          []*tracking.Run `json:"runs,omitempty"`
		NextPageToken string          `json:"next_page_token,omitempty"`
	}{page.Runs, next})
	return nil
}

// requiredFloat reads a required double: absent, null or "" is missing.
func requiredFloat(f *fields, name, path string) (float64, error) {
	v, ok := f.lookup(name)
	if !ok || (!v.query && string(v.raw) == `""`) || (v.query && v.q[0] == "") {
		return 0, missingValue(path)
	}
	return v.toFloat(path)
}

// requiredInt64 reads a required int64: absent, null or "" is missing.
func requiredInt64(f *fields, name, path string) (int64, error) {
	v, ok := f.lookup(name)
	if !ok || (!v.query && string(v.raw) == `""`) || (v.query && v.q[0] == "") {
		return 0, missingValue(path)
	}
	return v.toInt64(path)
}

func (s *Server) logMetric(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.runID()
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	val, err := requiredFloat(f, "value", "value")
	if err != nil {
		return err
	}
	ts, err := requiredInt64(f, "timestamp", "timestamp")
	if err != nil {
		return err
	}
	step, _, err := f.int64("step")
	if err != nil {
		return err
	}
	m := tracking.Metric{Key: key, Value: val, Timestamp: ts, Step: step}
	if err := validate.Metric(m, ""); err != nil {
		return err
	}
	m.Value = tracking.ClampMetricValue(m.Value)
	b := tracking.Batch{Metrics: []tracking.Metric{m}}
	mm, err := modelMetric(f, m, "")
	if err != nil {
		return err
	}
	if mm != nil {
		b.ModelMetrics = []tracking.ModelMetric{*mm}
	}
	if err := s.store.LogBatch(r.Context(), id, b); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) logParam(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.runID()
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	value, _, err := f.str("value")
	if err != nil {
		return err
	}
	p := tracking.Param{Key: key, Value: value}
	if err := validate.Param(&p, ""); err != nil {
		return err
	}
	if err := s.store.LogParam(r.Context(), id, p); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) setTag(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.runID()
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	value, _, err := f.str("value")
	if err != nil {
		return err
	}
	t := tracking.Tag{Key: key, Value: value}
	if err := validate.Tag(&t, ""); err != nil {
		return err
	}
	if err := s.store.LogBatch(r.Context(), id, tracking.Batch{Tags: []tracking.Tag{t}}); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) deleteTag(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.runID()
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	if err := s.store.DeleteTag(r.Context(), id, key); err != nil {
		return err
	}
	return writeEmpty(w)
}

// batchRunID reads the run id of log-batch and log-inputs: MLflow's
// presence check accepts run_uuid, but these endpoints then use run_id
// alone (an empty run_id fails the run-id pattern).
func batchRunID(f *fields) (string, error) {
	id, _, err := f.str("run_id")
	if err != nil {
		return "", err
	}
	if id == "" {
		legacy, _, err := f.strAt("run_uuid", "run_id", false)
		if err != nil {
			return "", err
		}
		if legacy == "" {
			return "", missingValue("run_id")
		}
	}
	return id, nil
}

func (s *Server) logBatch(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := batchRunID(f)
	if err != nil {
		return err
	}
	var b tracking.Batch
	metrics, _, err := f.array("metrics")
	if err != nil {
		return err
	}
	if len(metrics) > 0 {
		b.Metrics = make([]tracking.Metric, len(metrics))
	}
	var pathBuf []byte
	elemPath := func(list string, i int, name string) string {
		pathBuf = append(pathBuf[:0], list...)
		pathBuf = append(pathBuf, '[')
		pathBuf = strconv.AppendInt(pathBuf, int64(i), 10)
		pathBuf = append(pathBuf, "]."...)
		pathBuf = append(pathBuf, name...)
		return string(pathBuf)
	}
	for i, raw := range metrics {
		obj, perr := parseObject(raw)
		if perr != nil {
			return invalidType("metrics["+strconv.Itoa(i)+"]", value{raw: raw})
		}
		m := &fields{obj: obj}
		mt := &b.Metrics[i]
		if mt.Key, _, err = m.strAt("key", "\x00", false); err != nil {
			return fixPath(err, elemPath("metrics", i, "key"))
		}
		if mt.Key == "" {
			return missingValue(elemPath("metrics", i, "key"))
		}
		if mt.Value, err = requiredFloat(m, "value", "\x00"); err != nil {
			return fixPath(err, elemPath("metrics", i, "value"))
		}
		if mt.Timestamp, err = requiredInt64(m, "timestamp", "\x00"); err != nil {
			return fixPath(err, elemPath("metrics", i, "timestamp"))
		}
		if mt.Step, _, err = m.int64At("step", "\x00"); err != nil {
			return fixPath(err, elemPath("metrics", i, "step"))
		}
		if m.has("model_id") {
			mm, err := modelMetric(m, *mt, "metrics["+strconv.Itoa(i)+"].")
			if err != nil {
				return err
			}
			if mm != nil {
				b.ModelMetrics = append(b.ModelMetrics, *mm)
			}
		}
	}
	params, _, err := f.array("params")
	if err != nil {
		return err
	}
	if len(params) > 0 {
		b.Params = make([]tracking.Param, len(params))
	}
	for i, raw := range params {
		m, err := message(raw, "params["+strconv.Itoa(i)+"]")
		if err != nil {
			return err
		}
		if b.Params[i].Key, _, err = m.strAt("key", "\x00", false); err != nil {
			return fixPath(err, elemPath("params", i, "key"))
		}
		if b.Params[i].Key == "" {
			return missingValue(elemPath("params", i, "key"))
		}
		if b.Params[i].Value, _, err = m.strAt("value", "\x00", false); err != nil {
			return fixPath(err, elemPath("params", i, "value"))
		}
	}
	tags, _, err := f.array("tags")
	if err != nil {
		return err
	}
	if len(tags) > 0 {
		b.Tags = make([]tracking.Tag, len(tags))
	}
	for i, raw := range tags {
		m, err := message(raw, "tags["+strconv.Itoa(i)+"]")
		if err != nil {
			return err
		}
		if b.Tags[i].Key, _, err = m.strAt("key", "\x00", false); err != nil {
			return fixPath(err, elemPath("tags", i, "key"))
		}
		if b.Tags[i].Key == "" {
			return missingValue(elemPath("tags", i, "key"))
		}
		if b.Tags[i].Value, _, err = m.strAt("value", "\x00", false); err != nil {
			return fixPath(err, elemPath("tags", i, "value"))
		}
	}
	if err := validate.Batch(id, &b); err != nil {
		return err
	}
	for i := range b.Metrics {
		b.Metrics[i].Value = tracking.ClampMetricValue(b.Metrics[i].Value)
	}
	if err := s.store.LogBatch(r.Context(), id, b); err != nil {
		return err
	}
	return writeEmpty(w)
}

// modelMetric reads the MLflow 3 fields of a metric (model_id,
// dataset_name, dataset_digest); nil when it has no model_id.
func modelMetric(f *fields, m tracking.Metric, prefix string) (*tracking.ModelMetric, error) {
	modelID, _, err := f.strAt("model_id", prefix+"model_id", false)
	if err != nil || modelID == "" {
		return nil, err
	}
	name, _, err := f.strAt("dataset_name", prefix+"dataset_name", false)
	if err != nil {
		return nil, err
	}
	digest, _, err := f.strAt("dataset_digest", prefix+"dataset_digest", false)
	if err != nil {
		return nil, err
	}
	return &tracking.ModelMetric{Key: m.Key, Value: tracking.ClampMetricValue(m.Value), Timestamp: m.Timestamp,
		Step: m.Step, ModelID: modelID, DatasetName: name, DatasetDigest: digest}, nil
}

// fixPath replaces the placeholder path "\x00" in an error message built
// by a getter with the element's real path; building the path only on
// failure keeps the log-batch loop allocation-light.
func fixPath(err error, path string) error {
	if te, ok := tracking.AsError(err); ok {
		msg := []byte(te.Message)
		out := make([]byte, 0, len(msg)+len(path))
		for _, c := range msg {
			if c == 0 {
				out = append(out, path...)
			} else {
				out = append(out, c)
			}
		}
		return &tracking.Error{Code: te.Code, Message: string(out)}
	}
	return err
}

func (s *Server) logInputs(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := batchRunID(f)
	if err != nil {
		return err
	}
	// MLflow 3 made datasets optional (2.x required it): mlflow.log_metric
	// with a model_id sends log-inputs with models only.
	elems, _, err := f.array("datasets")
	if err != nil {
		return err
	}
	var datasets []tracking.DatasetInput
	for i, raw := range elems {
		path := "datasets[" + strconv.Itoa(i) + "]"
		m, err := message(raw, path)
		if err != nil {
			return err
		}
		var in tracking.DatasetInput
		if in.Tags, err = readTags(m, "tags"); err != nil {
			return err
		}
		for j := range in.Tags {
			if in.Tags[j].Key == "" {
				return missingValue(path + ".tags[" + strconv.Itoa(j) + "].key")
			}
		}
		if draw, ok := m.obj.get("dataset"); ok && kindOf(draw) != kindNull {
			d, err := message(draw, path+".dataset")
			if err != nil {
				return err
			}
			for _, fl := range []struct {
				name string
				dst  *string
			}{
				{"name", &in.Dataset.Name}, {"digest", &in.Dataset.Digest}, {"source_type", &in.Dataset.SourceType},
				{"source", &in.Dataset.Source}, {"schema", &in.Dataset.Schema}, {"profile", &in.Dataset.Profile},
			} {
				if *fl.dst, _, err = d.strAt(fl.name, path+".dataset."+fl.name, false); err != nil {
					return err
				}
			}
		}
		datasets = append(datasets, in)
	}
	var models []tracking.ModelInput
	melems, _, err := f.array("models")
	if err != nil {
		return err
	}
	for i, raw := range melems {
		path := "models[" + strconv.Itoa(i) + "]"
		m, err := message(raw, path)
		if err != nil {
			return err
		}
		mid, _, err := m.strAt("model_id", path+".model_id", false)
		if err != nil {
			return err
		}
		if mid == "" {
			return missingValue(path + ".model_id")
		}
		models = append(models, tracking.ModelInput{ModelID: mid})
	}
	if err := validate.RunID(id, "run_id"); err != nil {
		return err
	}
	if err := validate.DatasetInputs(datasets); err != nil {
		return err
	}
	if err := s.store.LogInputs(r.Context(), id, datasets, models); err != nil {
		return err
	}
	return writeEmpty(w)
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
