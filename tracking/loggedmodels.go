package tracking

import "context"

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

// LoggedModelData is a logged model's params and metrics.
type LoggedModelData struct {
	Params  []Param  `json:"params,omitempty"`
	Metrics []Metric `json:"metrics,omitempty"`
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
	// empty name is replaced by a generated one by the handler.
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

// LoggedModelQuery is a parsed search-logged-models request. Filter
// clauses are matched with search.MatchLoggedModel.
type LoggedModelQuery struct {
	ExperimentIDs []string
	// Match reports whether a model is selected; nil selects all.
	Match      func(*LoggedModel) bool
	MaxResults int
	PageToken  string
}

// LoggedModelPage is one page of logged models.
type LoggedModelPage struct {
	Models        []*LoggedModel
	NextPageToken string
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
	case "creation_timestamp":
		return "", m.Info.CreationTimestampMs
	case "last_updated_timestamp":
		return "", m.Info.LastUpdatedTimestampMs
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

// Metric returns the latest value of a model metric.
func (m *LoggedModel) Metric(key string) (float64, bool) {
	for _, x := range m.Data.Metrics {
		if x.Key == key {
			return x.Value, true
		}
	}
	return 0, false
}
