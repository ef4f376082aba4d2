package tracking

import (
	"math"
	"strconv"
)

// Lifecycle stages of experiments and runs.
const (
	LifecycleActive  = "active"
	LifecycleDeleted = "deleted"
)

// ViewType selects entities by lifecycle stage in searches.
type ViewType int

// View types, numbered as in MLflow's protos.
const (
	ActiveOnly  ViewType = 1
	DeletedOnly ViewType = 2
	AllViews    ViewType = 3
)

// Includes reports whether an entity in lifecycle stage ls is selected.
func (v ViewType) Includes(ls string) bool {
	switch v {
	case DeletedOnly:
		return ls == LifecycleDeleted
	case AllViews:
		return true
	default:
		return ls == LifecycleActive
	}
}

// Run statuses as MLflow names them on the wire.
const (
	StatusRunning   = "RUNNING"
	StatusScheduled = "SCHEDULED"
	StatusFinished  = "FINISHED"
	StatusFailed    = "FAILED"
	StatusKilled    = "KILLED"
)

// Reserved tag keys the server itself reads or writes.
const (
	TagRunName         = "mlflow.runName"
	TagUser            = "mlflow.user"
	TagLogModelHistory = "mlflow.log-model.history"
	TagParentRunID     = "mlflow.parentRunId"
	InputTagContext    = "mlflow.data.context"
)

// DefaultExperimentID is the id of the experiment every new store has.
const DefaultExperimentID = "0"

// DefaultExperimentName is the name of that experiment.
const DefaultExperimentName = "Default"

// Tag is a key/value pair on an experiment, a run or a dataset input.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Param is a run parameter. Its value is immutable once logged.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Metric is one logged value of a metric. Value may be NaN; infinities are
// clamped to ±math.MaxFloat64 before they are stored, as MLflow's SQL store does.
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// MarshalJSON writes the metric as MLflow does: NaN as the string "NaN" and
// whole numbers with a decimal point.
func (m Metric) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64+len(m.Key))
	b = append(b, `{"key":`...)
	b = strconv.AppendQuote(b, m.Key)
	b = append(b, `,"value":`...)
	b = AppendFloat(b, m.Value)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, m.Timestamp, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, m.Step, 10)
	return append(b, '}'), nil
}

// AppendFloat appends v in MLflow's JSON form: "NaN", "Infinity" and
// "-Infinity" as strings, other values as JSON numbers.
func AppendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Infinity"`...)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e16 {
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
		return append(b, ".0"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// ClampMetricValue turns ±Inf into ±math.MaxFloat64 and -0 into 0, as
// MLflow's SQL store does when it writes a metric. NaN is kept.
func ClampMetricValue(v float64) float64 {
	switch {
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	case v == 0:
		return 0
	}
	return v
}

// MetricNewer reports whether a should replace b as the latest value of a
// metric: MLflow compares (step, timestamp, value) lexicographically, with
// NaN counting as 0.
func MetricNewer(a, b Metric) bool {
	if a.Step != b.Step {
		return a.Step > b.Step
	}
	if a.Timestamp != b.Timestamp {
		return a.Timestamp > b.Timestamp
	}
	av, bv := a.Value, b.Value
	if math.IsNaN(av) {
		av = 0
	}
	if math.IsNaN(bv) {
		bv = 0
	}
	return av > bv
}

// Experiment is an MLflow experiment.
type Experiment struct {
	ExperimentID     string `json:"experiment_id"`
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location"`
	LifecycleStage   string `json:"lifecycle_stage"`
	LastUpdateTime   int64  `json:"last_update_time"`
	CreationTime     int64  `json:"creation_time"`
	Tags             []Tag  `json:"tags,omitempty"`
}

// RunInfo is the metadata of a run.
type RunInfo struct {
	RunUUID        string `json:"run_uuid"`
	ExperimentID   string `json:"experiment_id"`
	RunName        string `json:"run_name"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        int64  `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
	RunID          string `json:"run_id"`
	// DeletedTime is when the run was last soft-deleted (ms); not on the wire.
	DeletedTime int64 `json:"-"`
}

// RunData is what a run has logged: the latest value of each metric, its
// params and its tags.
type RunData struct {
	Metrics []Metric `json:"metrics,omitempty"`
	Params  []Param  `json:"params,omitempty"`
	Tags    []Tag    `json:"tags,omitempty"`
}

// Dataset describes a dataset a run consumed.
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// DatasetInput is a dataset logged as an input of a run, with input tags
// such as mlflow.data.context.
type DatasetInput struct {
	Tags    []Tag   `json:"tags,omitempty"`
	Dataset Dataset `json:"dataset"`
}

// ModelInput is a logged model a run consumed.
type ModelInput struct {
	ModelID string `json:"model_id"`
}

// RunInputs are the inputs of a run.
type RunInputs struct {
	DatasetInputs []DatasetInput `json:"dataset_inputs,omitempty"`
	ModelInputs   []ModelInput   `json:"model_inputs,omitempty"`
}

// RunOutputs are the outputs of a run (MLflow 3): the logged models it
// produced.
type RunOutputs struct {
	ModelOutputs []ModelOutput `json:"model_outputs,omitempty"`
}

// Run is a run with its data, inputs and outputs. Outputs is nil when the
// run has none, and then left out of the JSON (MLflow 2.x has no outputs;
// MLflow 3 clients accept either).
type Run struct {
	Info    RunInfo     `json:"info"`
	Data    RunData     `json:"data"`
	Inputs  RunInputs   `json:"inputs"`
	Outputs *RunOutputs `json:"outputs,omitempty"`
}

// FileInfo is one entry of an artifact listing. FileSize is omitted for
// directories and empty files, as MLflow does.
type FileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size,omitempty"`
}

// ReconcileRunName reconciles a new run's name with its mlflow.runName tag
// (the handler normally did it already): the tag gives the name when name
// is empty, and the tag is added when missing. tags is not modified; the
// returned slice is a new one.
func ReconcileRunName(name string, tags []Tag) (string, []Tag) {
	out := make([]Tag, 0, len(tags)+1)
	hasNameTag := false
	for _, t := range tags {
		if t.Key == TagRunName {
			hasNameTag = true
			if name == "" {
				name = t.Value
			}
		}
		out = append(out, t)
	}
	if !hasNameTag && name != "" {
		out = append(out, Tag{Key: TagRunName, Value: name})
	}
	return name, out
}
