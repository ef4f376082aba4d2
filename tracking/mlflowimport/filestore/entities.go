package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// Folder and file names of MLflow 3's logged models and traces in the
// file store (FileStore's constants).
const (
	assessmentsDir     = "assessments"
	requestMetadataDir = "request_metadata"
	traceInfoFile      = "trace_info.yaml"
	outputsDir         = "outputs"
	deletedLifecycle   = "deleted"
)

// loggedModelMeta is <exp>/models/<model id>/meta.yaml: LoggedModel's
// to_dictionary() without tags, params and metrics, plus lifecycle_stage
// (FileStore.create_logged_model).
type loggedModelMeta struct {
	ModelID              string  `yaml:"model_id"`
	ExperimentID         string  `yaml:"experiment_id"`
	Name                 string  `yaml:"name"`
	ArtifactLocation     string  `yaml:"artifact_location"`
	CreationTimestamp    int64   `yaml:"creation_timestamp"`
	LastUpdatedTimestamp int64   `yaml:"last_updated_timestamp"`
	ModelType            *string `yaml:"model_type"`
	SourceRunID          *string `yaml:"source_run_id"`
	Status               any     `yaml:"status"`
	StatusMessage        *string `yaml:"status_message"`
	LifecycleStage       string  `yaml:"lifecycle_stage"`
}

// LoggedModels implements mlflowimport.Source: <exp>/models/<model id>/
// with meta.yaml, tags/, params/ and metrics/ (one file per key, lines
// "timestamp value step run_id [dataset_name dataset_digest]",
// FileStore._log_model_metric). Deleted models (lifecycle_stage
// deleted, which MLflow no longer serves) are left out.
func (s *Source) LoggedModels(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.LoggedModel) error) error {
	dirs, err := s.expDirs()
	if err != nil {
		return err
	}
	dir := filepath.Join(dirs[exp.ExperimentID], modelsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing logged models: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		m, deleted, err := s.readLoggedModel(ctx, filepath.Join(dir, e.Name()), e.Name(), exp.ExperimentID, report)
		if err != nil {
			report(mlflowimport.Problem{Kind: "logged model", ID: e.Name(), Err: err})
			continue
		}
		if deleted {
			continue
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

func loggedModelStatus(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return tracking.LoggedModelStatusUnspecified, nil
	case int:
		if x >= 0 && x < len(tracking.LoggedModelStatuses) {
			return tracking.LoggedModelStatuses[x], nil
		}
	case string:
		for _, st := range tracking.LoggedModelStatuses {
			if x == st || "LOGGED_MODEL_"+x == st {
				return st, nil
			}
		}
		if x == "FAILED" {
			return tracking.LoggedModelStatusUploadFailed, nil
		}
		if x == "UNSPECIFIED" {
			return tracking.LoggedModelStatusUnspecified, nil
		}
	}
	return "", fmt.Errorf("unknown logged model status %v", v)
}

func (s *Source) readLoggedModel(ctx context.Context, dir, name, expID string, report func(mlflowimport.Problem)) (*mlflowimport.LoggedModel, bool, error) {
	var m loggedModelMeta
	if err := readYAML(filepath.Join(dir, metaFile), &m); err != nil {
		return nil, false, err
	}
	if m.ModelID != name {
		return nil, false, fmt.Errorf("meta.yaml names logged model %q", m.ModelID)
	}
	if m.ExperimentID != expID {
		return nil, false, fmt.Errorf("meta.yaml names experiment %q", m.ExperimentID)
	}
	if m.LifecycleStage == deletedLifecycle {
		return nil, true, nil
	}
	status, err := loggedModelStatus(m.Status)
	if err != nil {
		return nil, false, err
	}
	tags, err := readKV(filepath.Join(dir, tagsDir))
	if err != nil {
		return nil, false, fmt.Errorf("tags: %w", err)
	}
	params, err := readKV(filepath.Join(dir, paramsDir))
	if err != nil {
		return nil, false, fmt.Errorf("params: %w", err)
	}
	lm := &tracking.LoggedModel{Info: tracking.LoggedModelInfo{
		ModelID: m.ModelID, ExperimentID: m.ExperimentID, Name: m.Name, ArtifactURI: m.ArtifactLocation,
		CreationTimestampMs: m.CreationTimestamp, LastUpdatedTimestampMs: m.LastUpdatedTimestamp, Status: status,
		ModelType: str(m.ModelType), SourceRunID: str(m.SourceRunID), StatusMessage: str(m.StatusMessage), Tags: tagList(tags),
	}}
	for k, v := range params {
		lm.Data.Params = append(lm.Data.Params, tracking.Param{Key: k, Value: v})
	}
	sort.Slice(lm.Data.Params, func(i, j int) bool { return lm.Data.Params[i].Key < lm.Data.Params[j].Key })
	if lm.Data.Metrics, err = readModelMetrics(filepath.Join(dir, metricsDir), m.ModelID); err != nil {
		return nil, false, fmt.Errorf("metrics: %w", err)
	}
	out := &mlflowimport.LoggedModel{Model: lm}
	out.Artifacts = s.resolve(ctx, "artifact", m.ModelID, m.ArtifactLocation, filepath.Join(dir, artifactDir), report)
	return out, false, nil
}

// readModelMetrics reads every line of a logged model's metric files
// (all points, as MLflow's SQL store keeps them; its file store serves
// the newest per dataset).
func readModelMetrics(dir, modelID string) ([]tracking.ModelMetric, error) {
	keys, err := metricFiles(dir)
	if err != nil {
		return nil, err
	}
	var out []tracking.ModelMetric
	for _, key := range keys {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
		if err != nil {
			return nil, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			f := strings.Split(line, " ")
			if len(f) != 4 && len(f) != 6 {
				return nil, fmt.Errorf("metric %q line %d: %d fields, want 4 or 6", key, i+1, len(f))
			}
			ts, err1 := strconv.ParseInt(f[0], 10, 64)
			v, err2 := ParseFloat(f[1])
			step, err3 := strconv.ParseInt(f[2], 10, 64)
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, fmt.Errorf("metric %q line %d: %w", key, i+1, err)
			}
			m := tracking.ModelMetric{Key: key, Value: v, Timestamp: ts, Step: step, ModelID: modelID, RunID: f[3]}
			if len(f) == 6 {
				m.DatasetName, m.DatasetDigest = f[4], f[5]
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// traceInfoMeta is traces/<id>/trace_info.yaml in either of the layouts
// MLflow wrote: 2.x's TraceInfo (request_id, timestamp_ms, status ...)
// or 3.x's TraceInfo.to_dict() (trace_id, request_time as an RFC 3339
// string, state, execution_duration_ms ...).
type traceInfoMeta struct {
	// 2.x
	RequestID       string `yaml:"request_id"`
	ExperimentID    any    `yaml:"experiment_id"`
	TimestampMs     *int64 `yaml:"timestamp_ms"`
	ExecutionTimeMs *int64 `yaml:"execution_time_ms"`
	Status          string `yaml:"status"`
	// 3.x
	TraceID         string `yaml:"trace_id"`
	ClientRequestID string `yaml:"client_request_id"`
	TraceLocation   struct {
		MlflowExperiment struct {
			ExperimentID string `yaml:"experiment_id"`
		} `yaml:"mlflow_experiment"`
	} `yaml:"trace_location"`
	RequestPreview      string `yaml:"request_preview"`
	ResponsePreview     string `yaml:"response_preview"`
	RequestTime         string `yaml:"request_time"`
	ExecutionDurationMs *int64 `yaml:"execution_duration_ms"`
	State               string `yaml:"state"`
}

// Traces implements mlflowimport.Source: <exp>/traces/<id>/ with
// trace_info.yaml, request_metadata/, tags/ and assessments/<id>.yaml
// (FileStore._save_trace_info, _save_assessment). The trace's data is
// below its mlflow.artifactLocation tag.
func (s *Source) Traces(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.Trace) error) error {
	dirs, err := s.expDirs()
	if err != nil {
		return err
	}
	dir := filepath.Join(dirs[exp.ExperimentID], tracesDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing traces: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := s.readTrace(ctx, filepath.Join(dir, e.Name()), e.Name(), exp, report)
		if err != nil {
			report(mlflowimport.Problem{Kind: "trace", ID: e.Name(), Err: err})
			continue
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) readTrace(ctx context.Context, dir, name string, exp *tracking.Experiment, report func(mlflowimport.Problem)) (*mlflowimport.Trace, error) {
	var m traceInfoMeta
	if err := readYAML(filepath.Join(dir, traceInfoFile), &m); err != nil {
		return nil, err
	}
	t := &tracking.TraceInfo{ExperimentID: exp.ExperimentID}
	switch {
	case m.TraceID != "":
		t.RequestID, t.ClientRequestID = m.TraceID, m.ClientRequestID
		t.RequestPreview, t.ResponsePreview = m.RequestPreview, m.ResponsePreview
		t.Status = m.State
		if t.Status == "" || t.Status == "STATE_UNSPECIFIED" {
			t.Status = tracking.TraceStatusUnspecified
		}
		if m.RequestTime != "" {
			ts, err := time.Parse(time.RFC3339Nano, m.RequestTime)
			if err != nil {
				return nil, fmt.Errorf("request_time: %w", err)
			}
			t.TimestampMs = ts.UnixMilli()
		}
		if m.ExecutionDurationMs != nil {
			t.ExecutionTimeMs = *m.ExecutionDurationMs
		}
		if id := m.TraceLocation.MlflowExperiment.ExperimentID; id != "" && id != exp.ExperimentID {
			return nil, fmt.Errorf("trace_info.yaml names experiment %q", id)
		}
	case m.RequestID != "":
		t.RequestID, t.Status = m.RequestID, m.Status
		if m.TimestampMs != nil {
			t.TimestampMs = *m.TimestampMs
		}
		if m.ExecutionTimeMs != nil {
			t.ExecutionTimeMs = *m.ExecutionTimeMs
		}
		if m.ExperimentID != nil && fmt.Sprint(m.ExperimentID) != exp.ExperimentID {
			return nil, fmt.Errorf("trace_info.yaml names experiment %v", m.ExperimentID)
		}
	default:
		return nil, errors.New("trace_info.yaml has no trace_id or request_id")
	}
	if t.RequestID != name {
		return nil, fmt.Errorf("trace_info.yaml names trace %q", t.RequestID)
	}
	md, err := readKV(filepath.Join(dir, requestMetadataDir))
	if err != nil {
		return nil, fmt.Errorf("request metadata: %w", err)
	}
	tags, err := readKV(filepath.Join(dir, tagsDir))
	if err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	t.RequestMetadata, t.Tags = tagList(md), tagList(tags)
	if t.Assessments, err = readAssessments(filepath.Join(dir, assessmentsDir)); err != nil {
		return nil, fmt.Errorf("assessments: %w", err)
	}
	// The data is where the mlflow.artifactLocation tag says; a moved
	// file store keeps it in the trace's own folder (the default
	// location, <experiment>/traces/<id>/artifacts).
	out := &mlflowimport.Trace{Trace: t}
	out.Artifacts = s.resolve(ctx, "artifact", t.RequestID, tags[tracking.TraceTagArtifactLocation], filepath.Join(dir, artifactDir), report)
	return out, nil
}

// readAssessments reads assessments/<id>.yaml: the Assessment proto as
// MessageToDict writes it (times as RFC 3339 strings, source, feedback,
// expectation and issue as nested objects).
func readAssessments(dir string) ([]tracking.Assessment, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []tracking.Assessment
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		var d map[string]any
		if err := readYAML(filepath.Join(dir, e.Name()), &d); err != nil {
			return nil, err
		}
		a, err := assessmentFrom(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AssessmentID < out[j].AssessmentID })
	return out, nil
}

func assessmentFrom(d map[string]any) (tracking.Assessment, error) {
	s := func(k string) string {
		v, _ := d[k].(string)
		return v
	}
	raw := func(k string) (json.RawMessage, error) {
		v, ok := d[k]
		if !ok || v == nil {
			return nil, nil
		}
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		return b, nil
	}
	a := tracking.Assessment{AssessmentID: s("assessment_id"), AssessmentName: s("assessment_name"), TraceID: s("trace_id"),
		SpanID: s("span_id"), Rationale: s("rationale"), Overrides: s("overrides"), Valid: true}
	if a.AssessmentID == "" || a.AssessmentName == "" {
		return a, errors.New("no assessment_id or assessment_name")
	}
	if v, ok := d["valid"].(bool); ok {
		a.Valid = v
	}
	var err error
	for _, f := range []struct {
		key string
		dst *json.RawMessage
	}{{"source", &a.Source}, {"feedback", &a.Feedback}, {"expectation", &a.Expectation}, {"issue", &a.Issue}, {"error", &a.Error}} {
		if *f.dst, err = raw(f.key); err != nil {
			return a, err
		}
	}
	for _, f := range []struct {
		key string
		dst *int64
	}{{"create_time", &a.CreateTimeMs}, {"last_update_time", &a.LastUpdateTimeMs}} {
		if v := s(f.key); v != "" {
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return a, fmt.Errorf("%s: %w", f.key, err)
			}
			*f.dst = ts.UnixMilli()
		}
	}
	if md, ok := d["metadata"].(map[string]any); ok {
		a.Metadata = map[string]string{}
		for k, v := range md {
			a.Metadata[k] = fmt.Sprint(v)
		}
	}
	return a, nil
}

// jsonable turns YAML-decoded values into ones encoding/json takes
// (maps keyed by any become maps keyed by string; non-finite floats
// become their proto JSON strings).
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case float64:
		switch {
		case math.IsNaN(x):
			return "NaN"
		case math.IsInf(x, 1):
			return "Infinity"
		case math.IsInf(x, -1):
			return "-Infinity"
		}
	}
	return v
}

// outputMeta is outputs/<model id>/meta.yaml (FileStore._FileStoreOutput).
type outputMeta struct {
	SourceType string `yaml:"source_type"`
	SourceID   string `yaml:"source_id"`
	Step       int64  `yaml:"step"`
}

// readOutputs reads a run's outputs/<model id>/meta.yaml files: the
// logged models the run produced, at a step.
func readOutputs(dir string) ([]tracking.ModelOutput, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []tracking.ModelOutput
	for _, e := range ents {
		var o outputMeta
		if err := readYAML(filepath.Join(dir, e.Name(), metaFile), &o); err != nil {
			return nil, err
		}
		id := o.SourceID
		if id == "" {
			id = e.Name()
		}
		out = append(out, tracking.ModelOutput{ModelID: id, Step: o.Step})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ModelID < out[j].ModelID })
	return out, nil
}
