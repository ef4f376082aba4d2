package tracking

import (
	"context"
	"encoding/json"
	"math"
	"strconv"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Logged model statuses as MLflow 3 names them on the wire.
const (
	LoggedModelStatusUnspecified  = "LOGGED_MODEL_STATUS_UNSPECIFIED"
	LoggedModelStatusPending      = "LOGGED_MODEL_PENDING"
	LoggedModelStatusReady        = "LOGGED_MODEL_READY"
	LoggedModelStatusUploadFailed = "LOGGED_MODEL_UPLOAD_FAILED"
)

// LoggedModelStatuses lists the statuses by their proto numbers.
var LoggedModelStatuses = []string{
	LoggedModelStatusUnspecified, LoggedModelStatusPending, LoggedModelStatusReady, LoggedModelStatusUploadFailed,
}

// LoggedModelInfo is an MLflow 3 logged model's attributes and tags.
type LoggedModelInfo struct {
	ModelID                string `json:"model_id"`
	ExperimentID           string `json:"experiment_id"`
	Name                   string `json:"name"`
	CreationTimestampMs    int64  `json:"creation_timestamp_ms"`
	LastUpdatedTimestampMs int64  `json:"last_updated_timestamp_ms"`
	ArtifactURI            string `json:"artifact_uri"`
	Status                 string `json:"status"`
	ModelType              string `json:"model_type,omitempty"`
	SourceRunID            string `json:"source_run_id,omitempty"`
	StatusMessage          string `json:"status_message,omitempty"`
	Tags                   []Tag  `json:"tags,omitempty"`
}

// LoggedModelData is a logged model's params and metrics (every logged
// point, as MLflow returns them).
type LoggedModelData struct {
	Params  []Param       `json:"params,omitempty"`
	Metrics []ModelMetric `json:"metrics,omitempty"`
}

// ModelMetric is one value of a logged model's metric: a run metric logged
// with a model_id (and optionally the dataset it was computed on).
type ModelMetric struct {
	Key           string
	Value         float64
	Timestamp     int64
	Step          int64
	DatasetName   string
	DatasetDigest string
	ModelID       string
	RunID         string
}

// MarshalJSON writes the metric as MLflow's Metric message: NaN as "NaN",
// the optional fields only when set.
func (m ModelMetric) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 128)
	b = append(b, `{"key":`...)
	b = strconv.AppendQuote(b, m.Key)
	b = append(b, `,"value":`...)
	b = AppendFloat(b, m.Value)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, m.Timestamp, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, m.Step, 10)
	for _, f := range []struct{ name, v string }{
		{"dataset_name", m.DatasetName}, {"dataset_digest", m.DatasetDigest}, {"model_id", m.ModelID}, {"run_id", m.RunID},
	} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = strconv.AppendQuote(b, f.v)
		}
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes ("NaN", "Infinity" and
// "-Infinity" included).
func (m *ModelMetric) UnmarshalJSON(data []byte) error {
	var in struct {
		Key           string          `json:"key"`
		Value         json.RawMessage `json:"value"`
		Timestamp     int64           `json:"timestamp"`
		Step          int64           `json:"step"`
		DatasetName   string          `json:"dataset_name"`
		DatasetDigest string          `json:"dataset_digest"`
		ModelID       string          `json:"model_id"`
		RunID         string          `json:"run_id"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*m = ModelMetric{Key: in.Key, Timestamp: in.Timestamp, Step: in.Step, DatasetName: in.DatasetName,
		DatasetDigest: in.DatasetDigest, ModelID: in.ModelID, RunID: in.RunID}
	switch string(in.Value) {
	case `"NaN"`:
		m.Value = math.NaN()
	case `"Infinity"`:
		m.Value = math.Inf(1)
	case `"-Infinity"`:
		m.Value = math.Inf(-1)
	case "", "null":
	default:
		return json.Unmarshal(in.Value, &m.Value)
	}
	return nil
}

// LoggedModel is an MLflow 3 logged model as the REST API returns it.
type LoggedModel struct {
	Info LoggedModelInfo `json:"info"`
	Data LoggedModelData `json:"data"`
}

// LoggedModelStore is the MLflow 3 logged model part of a backend.
type LoggedModelStore interface {
	// CreateLoggedModel creates a PENDING model in an active experiment,
	// generating its id (m-<32 hex>) and its artifact URI
	// (<experiment artifact location>/models/<model id>/artifacts). An
	// empty name is replaced by a generated one by the handler. The
	// source run id is stored as given, even if no such run exists (as
	// MLflow does).
	CreateLoggedModel(ctx context.Context, req CreateLoggedModel) (*LoggedModel, error)
	// GetLoggedModel returns a model; a missing one is RESOURCE_DOES_NOT_EXIST.
	GetLoggedModel(ctx context.Context, id string) (*LoggedModel, error)
	// FinalizeLoggedModel sets a model's status.
	FinalizeLoggedModel(ctx context.Context, id, status string) (*LoggedModel, error)
	// DeleteLoggedModel deletes a model (its artifacts are left alone).
	DeleteLoggedModel(ctx context.Context, id string) error
	// SetLoggedModelTags upserts tags.
	SetLoggedModelTags(ctx context.Context, id string, tags []Tag) error
	// DeleteLoggedModelTag removes a tag; a missing tag is RESOURCE_DOES_NOT_EXIST.
	DeleteLoggedModelTag(ctx context.Context, id, key string) error
	// LogLoggedModelParams records params (the same value again is fine,
	// like run params; a different value is INVALID_PARAMETER_VALUE).
	LogLoggedModelParams(ctx context.Context, id string, params []Param) error
	// SearchLoggedModels returns one page of models of the given
	// experiments, newest first.
	SearchLoggedModels(ctx context.Context, q LoggedModelQuery) (LoggedModelPage, error)
	// LogOutputs records logged models as outputs of an active run.
	LogOutputs(ctx context.Context, runID string, outputs []ModelOutput) error
}

// CreateLoggedModel is the input of LoggedModelStore.CreateLoggedModel.
type CreateLoggedModel struct {
	ExperimentID string
	Name         string
	ModelType    string
	SourceRunID  string
	Params       []Param
	Tags         []Tag
}

// ModelOutput is one model output of a run (LogOutputs).
type ModelOutput struct {
	ModelID string `json:"model_id"`
	Step    int64  `json:"step"`
}

// LoggedModelQuery is a parsed search-logged-models request: models of
// the experiments that match Filter (restricted to Datasets, see
// search.MatchLoggedModel), ordered by OrderBy (search.CompareLoggedModels),
// after the position After (a previous page's Next) or from Offset (an
// MLflow offset token), at most MaxResults.
type LoggedModelQuery struct {
	ExperimentIDs []string
	Filter        []search.Clause
	Datasets      []search.DatasetRef
	OrderBy       []search.LoggedModelOrder
	MaxResults    int
	Offset        int
	After         string
}

// LoggedModelPage is one page of logged models. More reports whether
// models follow the page; Next is then the position of its last model,
// for the next query's After.
type LoggedModelPage struct {
	Models []*LoggedModel
	More   bool
	Next   string
}

// LoggedModelAttr returns an attribute of the model for searches.
func (m *LoggedModel) LoggedModelAttr(key string) (string, int64) {
	switch key {
	case "name":
		return m.Info.Name, 0
	case "model_id":
		return m.Info.ModelID, 0
	case "model_type":
		return m.Info.ModelType, 0
	case "status":
		return m.Info.Status, 0
	case "source_run_id":
		return m.Info.SourceRunID, 0
	case "experiment_id":
		return m.Info.ExperimentID, 0
	case "artifact_location":
		return m.Info.ArtifactURI, 0
	case "status_message":
		return m.Info.StatusMessage, 0
	case "creation_timestamp":
		return "", m.Info.CreationTimestampMs
	case "last_updated_timestamp":
		return "", m.Info.LastUpdatedTimestampMs
	case "status_number":
		for i, st := range LoggedModelStatuses {
			if st == m.Info.Status {
				return "", int64(i)
			}
		}
	}
	return "", 0
}

// Tag returns the value of a model tag.
func (m *LoggedModel) Tag(key string) (string, bool) { return lookupTag(m.Info.Tags, key) }

// Param returns the value of a model param.
func (m *LoggedModel) Param(key string) (string, bool) {
	for _, p := range m.Data.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// MetricPoints returns every logged value of a model metric.
func (m *LoggedModel) MetricPoints(key string) []search.MetricPoint {
	var out []search.MetricPoint
	for _, x := range m.Data.Metrics {
		if x.Key == key {
			out = append(out, search.MetricPoint{Value: x.Value, Timestamp: x.Timestamp, Step: x.Step,
				DatasetName: x.DatasetName, DatasetDigest: x.DatasetDigest})
		}
	}
	return out
}

// HasDatasetMetric reports whether the model has a metric computed on one
// of the datasets.
func (m *LoggedModel) HasDatasetMetric(datasets []search.DatasetRef) bool {
	for _, x := range m.Data.Metrics {
		for _, d := range datasets {
			if d.Matches(x.DatasetName, x.DatasetDigest) {
				return true
			}
		}
	}
	return false
}
