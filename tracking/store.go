package tracking

import (
	"context"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Store is what the MLflow REST handlers need from a backend. It is shaped by
// the API, not by any storage engine: the embedded bbolt store implements it,
// and a networked backend (PostgreSQL) can implement it later without the
// handlers or the search parser changing.
//
// Every method returns *Error for failures a client should see (unknown ids,
// wrong lifecycle state, immutable params, bad page tokens); any other error
// is an internal failure. A nil error from a write means the write is
// durable: committed and synced to stable storage.
//
// Inputs are validated by the handlers (key syntax, lengths, limits) before
// they reach the store; the store enforces what needs the stored state:
// existence, lifecycle, uniqueness and param immutability.
type Store interface {
	// RegistryStore is the model registry.
	RegistryStore
	// TraceStore holds MLflow 2.x trace infos.
	TraceStore
	// SpanStore holds spans ingested over OTLP.
	SpanStore
	// LoggedModelStore holds MLflow 3 logged models.
	LoggedModelStore

	// EnsureDefaultExperiment creates experiment "0" named "Default" with
	// artifact location artifactRoot joined with "0" if it does not exist.
	EnsureDefaultExperiment(ctx context.Context, artifactRoot string) error

	// CreateExperiment creates an experiment and returns its id. An empty
	// ArtifactLocation becomes DefaultArtifactRoot joined with the new id.
	// A name already used (by an active or deleted experiment) is
	// RESOURCE_ALREADY_EXISTS.
	CreateExperiment(ctx context.Context, req CreateExperiment) (string, error)
	// GetExperiment returns an experiment by id, deleted ones included.
	GetExperiment(ctx context.Context, id string) (*Experiment, error)
	// GetExperimentByName returns an experiment by exact name, deleted ones included.
	GetExperimentByName(ctx context.Context, name string) (*Experiment, error)
	// SearchExperiments returns one page of experiments.
	SearchExperiments(ctx context.Context, q ExperimentQuery) (ExperimentPage, error)
	// RenameExperiment renames an active experiment.
	RenameExperiment(ctx context.Context, id, newName string) error
	// DeleteExperiment soft-deletes an active experiment and all its runs.
	DeleteExperiment(ctx context.Context, id string) error
	// RestoreExperiment restores a deleted experiment and all its runs.
	RestoreExperiment(ctx context.Context, id string) error
	// SetExperimentTag upserts a tag on an active experiment.
	SetExperimentTag(ctx context.Context, id string, tag Tag) error
	// DeleteExperimentTag removes a tag; a missing tag is RESOURCE_DOES_NOT_EXIST.
	DeleteExperimentTag(ctx context.Context, id, key string) error

	// CreateRun creates a run in an active experiment. The handler has
	// already reconciled RunName with the mlflow.runName tag (both are set).
	CreateRun(ctx context.Context, req CreateRun) (*Run, error)
	// GetRun returns a run with its latest metrics, params, tags and inputs.
	GetRun(ctx context.Context, runID string) (*Run, error)
	// UpdateRun applies the non-nil fields of req to an active run. A new
	// run name also updates the mlflow.runName tag.
	UpdateRun(ctx context.Context, runID string, req UpdateRun) (*RunInfo, error)
	// DeleteRun soft-deletes a run (idempotent).
	DeleteRun(ctx context.Context, runID string) error
	// RestoreRun restores a soft-deleted run.
	RestoreRun(ctx context.Context, runID string) error
	// LogParam logs one param with MLflow's log-parameter semantics: the
	// same value again is a no-op, a different value is INVALID_PARAMETER_VALUE.
	LogParam(ctx context.Context, runID string, p Param) error
	// LogBatch writes params, then metrics (and model metrics to their
	// existing logged models), then tags to an active run in one
	// transaction. Params already logged with a different value reject the
	// whole batch. Exact duplicate metric points are ignored. A
	// mlflow.runName tag renames the run.
	LogBatch(ctx context.Context, runID string, b Batch) error
	// DeleteTag removes a run tag; a missing tag is RESOURCE_DOES_NOT_EXIST.
	DeleteTag(ctx context.Context, runID, key string) error
	// LogInputs records dataset and model inputs of an active run,
	// de-duplicated by (dataset name, digest).
	LogInputs(ctx context.Context, runID string, datasets []DatasetInput, models []ModelInput) error
	// AppendModelHistory appends modelJSON (one serialized MLmodel dict) to
	// the JSON list in the run's mlflow.log-model.history tag.
	AppendModelHistory(ctx context.Context, runID string, modelJSON []byte) error
	// SearchRuns returns one page of runs of the given experiments. As in
	// MLflow, every full page has a NextPageToken (the page after it may
	// be empty).
	SearchRuns(ctx context.Context, q RunQuery) (RunPage, error)

	// MetricHistory streams every logged value of a metric of a run, ordered
	// by (timestamp, step, value) as MLflow's SQL store answers, calling fn with chunks of at most
	// chunkSize points. Each chunk is read in its own short transaction; no
	// transaction is open while fn runs. An unknown run or key yields no
	// chunks and no error. The slice passed to fn is reused after fn returns.
	MetricHistory(ctx context.Context, runID, key string, chunkSize int, fn func([]Metric) error) error

	// Close releases the store.
	Close() error
}

// CreateExperiment is the input of Store.CreateExperiment.
type CreateExperiment struct {
	Name                string
	ArtifactLocation    string
	DefaultArtifactRoot string
	Tags                []Tag
}

// ExperimentQuery is a parsed search-experiments request.
type ExperimentQuery struct {
	Filter     []search.Clause
	OrderBy    []search.OrderKey
	ViewType   ViewType
	MaxResults int
	PageToken  string
}

// ExperimentPage is one page of experiments.
type ExperimentPage struct {
	Experiments   []*Experiment
	NextPageToken string
}

// CreateRun is the input of Store.CreateRun.
type CreateRun struct {
	ExperimentID string
	UserID       string
	RunName      string
	StartTime    int64
	Tags         []Tag
}

// UpdateRun holds the fields of a runs/update request that were present.
type UpdateRun struct {
	Status  *string
	EndTime *int64
	RunName *string
}

// Batch is the content of a log-batch request (also used for single
// log-metric and set-tag calls).
type Batch struct {
	Metrics []Metric
	Params  []Param
	Tags    []Tag
	// ModelMetrics are the metrics logged with a model_id, recorded on
	// their logged models as well (their RunID is set by the store).
	ModelMetrics []ModelMetric
}

// RunQuery is a parsed search-runs request.
type RunQuery struct {
	ExperimentIDs []string
	Filter        search.RunFilter
	OrderBy       []search.OrderKey
	ViewType      ViewType
	MaxResults    int
	PageToken     string
}

// RunPage is one page of runs.
type RunPage struct {
	Runs          []*Run
	NextPageToken string
}
